"""RT Plan and RT Dose of demo patients and of the real sample, read back as a physicist would: dciodvfy finds no
error, the dose at each prescription point (trilinear in DICOM mm) is the prescription ÷ PrescriptionPercent for
every patient position and the old Pinnacle version, each beam keeps its own control points, the couch is IEC,
the same export gives the same bytes, and what is missing is named, never silently summed."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from kit.dicom import dciodvfy_errors
from rtvault.demo import generate_database
from rtvault.dicom.common import Export, write_dataset
from rtvault.dicom.ct import plan_series
from rtvault.dicom.rtdose import build_rtdoses
from rtvault.dicom.rtplan import build_rtplan
from rtvault.dicom.rtstruct import rtstruct_dataset
from rtvault.dicom.uids import Ids
from rtvault.pinnacle.treatment import DirectorySource, Treatment, read_treatment
from rtvault.pinnacle.treatment_bulk import dose_at_point
from rtvault.pinnacle.treatment_machines import machine_geometry

SAMPLE = "Institution_1/Mount_0/Patient_1"


def export_patient(directory: Path, out: Path, version: str = "tree-1") -> tuple[Treatment, list[Path], list[str]]:
    """Every trial of every plan as RTPLAN + RTDOSE files (and the plan's RTSTRUCT), with the problems named."""
    treatment = read_treatment(DirectorySource(directory))
    export = Export(Ids("2.25", directory.name, version), treatment.identity, "2024-01-02T10:00:00Z",
                    "2024-03-04T05:06:07Z")
    paths, problems = [], []
    for plan in treatment.plans:
        structure_uid = None
        if plan.frame is not None:
            ct = {i.id: plan_series(export, i, plan.frame) for i in treatment.image_sets if i.dims}
            structure = rtstruct_dataset(export, plan, ct).dataset
            structure_uid = structure.SOPInstanceUID
            paths.append(out / f"{plan.directory}-RS.dcm")
            write_dataset(structure, paths[-1])
        for index in range(len(plan.trials)):
            built = build_rtplan(export, treatment, plan, index, structure_set_uid=structure_uid)
            paths.append(out / f"{plan.directory}-{index}-RP.dcm")
            write_dataset(built.dataset, paths[-1])
            doses = build_rtdoses(export, treatment, plan, index, built)
            for dose in doses.doses:
                paths.append(out / f"{plan.directory}-{index}-RD-{dose.summation}{dose.beam_number or ''}.dcm")
                write_dataset(dose.dataset, paths[-1])
            problems += [str(p) for p in built.problems + doses.problems]
    return treatment, paths, problems


def dose_at_mm(ds: pydicom.Dataset, point_mm: np.ndarray) -> float:
    """The dose (Gy) of an RT Dose at a DICOM point, trilinear between voxel centres, from its own attributes."""
    row, col = (np.array([float(v) for v in ds.ImageOrientationPatient[k:k + 3]]) for k in (0, 3))
    normal = np.cross(row, col)
    origin = np.array([float(v) for v in ds.ImagePositionPatient])
    row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
    offsets = np.array([float(v) for v in ds.GridFrameOffsetVector])
    grid = ds.pixel_array.astype(np.float64) * float(ds.DoseGridScaling)
    if grid.ndim == 2:
        grid = grid[np.newaxis]
    v = point_mm - origin
    where = (np.interp(v @ normal, offsets, np.arange(len(offsets))), v @ col / row_spacing, v @ row / col_spacing)
    total = 0.0
    lows = [min(int(np.floor(f)), n - 2) for f, n in zip(where, grid.shape, strict=True)]
    for corner in np.ndindex(2, 2, 2):
        weight = 1.0
        index = []
        for f, low, c in zip(where, lows, corner, strict=True):
            weight *= (f - low) if c else (1 - (f - low))
            index.append(low + c)
        total += weight * grid[tuple(index)]
    return total


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    generate_database(root / "db", patients=6, seed=15, image_mb=0.3)
    return root


@pytest.fixture(scope="module")
def exported(demo: Path) -> dict[str, tuple[Treatment, list[Path], list[str]]]:
    return {patient.name: export_patient(patient, demo / "out" / patient.name)
            for patient in sorted((demo / "db").glob("Institution_*/Mount_*/Patient_*"))}


def test_every_object_passes_dciodvfy(exported: dict) -> None:
    for _, paths, problems in exported.values():
        assert problems == []
        for path in paths:
            assert dciodvfy_errors(path) == [], path


def test_the_dose_at_each_prescription_point_is_the_prescription(exported: dict) -> None:
    """For each position and the old version: the PLAN dose at the RTPLAN's point is TargetPrescriptionDose ÷
    PrescriptionPercent within 0.5 %."""
    seen = set()
    for treatment, paths, _ in exported.values():
        for plan in treatment.plans:
            old = plan.pinnacle_version.startswith("Pinnacle v7")
            seen.add((plan.patient_position, old))
            for index, trial in enumerate(plan.trials):
                rtplan = pydicom.dcmread(next(p for p in paths if p.name == f"{plan.directory}-{index}-RP.dcm"))
                dose = pydicom.dcmread(next(p for p in paths if p.name == f"{plan.directory}-{index}-RD-PLAN.dcm"))
                assert dose.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == rtplan.SOPInstanceUID
                for reference, prescription in zip(rtplan.DoseReferenceSequence, trial.prescriptions, strict=True):
                    point = np.array([float(v) for v in reference.DoseReferencePointCoordinates])
                    wanted = float(reference.TargetPrescriptionDose) / ((prescription.percent or 100) / 100)
                    assert dose_at_mm(dose, point) == pytest.approx(wanted, rel=0.005), (plan.directory, trial.name)
    assert {p for p, _ in seen} == {"HFS", "HFP", "FFS", "FFP"} and (True in {o for _, o in seen})


def test_the_exported_dose_is_the_model_dose_at_each_prescription_point(exported: dict) -> None:
    """For each position and the old version: the PLAN dose read back at the RTPLAN's point (DICOM mm) is the
    model's trial dose at the Pinnacle point (cm): grid origin, axes, VoxelSize.Z and the Y offset all agree."""
    seen = set()
    for treatment, paths, _ in exported.values():
        for plan in treatment.plans:
            seen.add((plan.patient_position, plan.pinnacle_version.startswith("Pinnacle v7")))
            points = {p.name: p.position_cm for p in plan.points}
            for index, trial in enumerate(plan.trials):
                rtplan = pydicom.dcmread(next(p for p in paths if p.name == f"{plan.directory}-{index}-RP.dcm"))
                dose = pydicom.dcmread(next(p for p in paths if p.name == f"{plan.directory}-{index}-RD-PLAN.dcm"))
                total = treatment.trial_dose_gy(trial)
                for reference, prescription in zip(rtplan.DoseReferenceSequence, trial.prescriptions, strict=True):
                    point = np.array([float(v) for v in reference.DoseReferencePointCoordinates])
                    wanted = dose_at_point(trial.dose_grid, total, points[prescription.point_name])
                    assert wanted > 1 and dose_at_mm(dose, point) == pytest.approx(wanted, rel=1e-3)
    assert {p for p, _ in seen} == {"HFS", "HFP", "FFS", "FFP"} and (True in {o for _, o in seen})


def test_beam_doses_add_up_to_the_plan_and_reference_their_beam(exported: dict) -> None:
    treatment, paths, _ = next(iter(exported.values()))
    plan_dose = pydicom.dcmread(next(p for p in paths if p.name.endswith("-0-RD-PLAN.dcm")))
    beams = [pydicom.dcmread(p) for p in paths if "Plan_0-0-RD-BEAM" in p.name]
    assert len(beams) == len(treatment.plans[0].trials[0].beams) and plan_dose.DoseSummationType == "PLAN"
    total = sum(b.pixel_array.astype(np.float64) * float(b.DoseGridScaling) for b in beams)
    summed = plan_dose.pixel_array.astype(np.float64) * float(plan_dose.DoseGridScaling)
    assert np.abs(total - summed).max() < 1e-4 * summed.max()  # 16-bit steps of each beam
    for number, beam in enumerate(beams, 1):
        assert beam.DoseSummationType == "BEAM" and beam.DoseUnits == "GY"
        group = beam.ReferencedRTPlanSequence[0].ReferencedFractionGroupSequence[0]
        assert int(group.ReferencedBeamSequence[0].ReferencedBeamNumber) == number
    grid = treatment.plans[0].trials[0].dose_grid
    offsets = [float(v) for v in plan_dose.GridFrameOffsetVector]
    assert offsets[1] - offsets[0] == pytest.approx(10 * grid.voxel_size_cm[2])  # VoxelSize.Z, not X
    assert grid.voxel_size_cm[2] != grid.voxel_size_cm[0]


def test_same_export_same_bytes_and_another_version_other_uids(demo: Path, exported: dict) -> None:
    patient = sorted((demo / "db").glob("Institution_*/Mount_*/Patient_*"))[0]
    _, again, _ = export_patient(patient, demo / "again")
    first = exported[patient.name][1]
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in first]
    _, other, _ = export_patient(patient, demo / "other", version="tree-2")
    assert {pydicom.dcmread(p).SOPInstanceUID for p in other}.isdisjoint(
        {pydicom.dcmread(p).SOPInstanceUID for p in first})


@pytest.fixture
def patient_copy(demo: Path, tmp_path: Path) -> Path:
    source = sorted((demo / "db").glob("Institution_*/Mount_*/Patient_*"))[0]
    return Path(shutil.copytree(source, tmp_path / source.name))


def test_each_beam_keeps_its_own_control_points_and_the_couch_is_iec(patient_copy: Path, tmp_path: Path) -> None:
    """Segment weights made different per beam, one couch at Pinnacle's 10°: the RTPLAN follows the model."""
    trial_file = patient_copy / "Plan_0/plan.Trial"
    text = trial_file.read_text(encoding="latin-1")
    weights = iter([0.9, 0.1, 0.3, 0.7, 0.6, 0.4] * 10)
    text = re.sub(r"(\n\s*)Weight = 0\.5;", lambda m: f"{m.group(1)}Weight = {next(weights)};", text)
    text = text.replace("Couch = 0;", "Couch = 10;", 2)  # both segments of the first beam
    trial_file.write_text(text, encoding="latin-1")
    treatment, paths, problems = export_patient(patient_copy, tmp_path / "out")
    assert problems == []
    rtplan = pydicom.dcmread(next(p for p in paths if p.name == "Plan_0-0-RP.dcm"))
    model = treatment.plans[0].trials[0]
    geometry = machine_geometry(treatment.source, "Plan_0")
    seen_weights = []
    for item, beam in zip(rtplan.BeamSequence, model.beams, strict=True):
        cps = item.ControlPointSequence
        assert int(item.NumberOfControlPoints) == len(cps) == 2 * len(beam.control_points)
        cumulative = [float(cp.CumulativeMetersetWeight) for cp in cps]
        total = sum(cp.weight for cp in beam.control_points)
        expected = []
        running = 0.0
        for cp in beam.control_points:
            expected += [running / total, (running + cp.weight) / total]
            running += cp.weight
        assert cumulative == pytest.approx(expected) and cumulative[-1] == 1.0
        seen_weights.append(tuple(cumulative))
        rows = sorted(range(len(beam.control_points[0].mlc_cm)),
                      key=lambda k: geometry[beam.machine_name].leaf_y_cm[k])
        for k, cp in enumerate(beam.control_points):
            for dicom_cp in (cps[2 * k], cps[2 * k + 1]):
                devices = {d.RTBeamLimitingDeviceType: [float(v) for v in d.LeafJawPositions]
                           for d in dicom_cp.BeamLimitingDevicePositionSequence}
                assert devices["ASYMX"] == pytest.approx([-10 * cp.jaws.left, 10 * cp.jaws.right])
                assert devices["ASYMY"] == pytest.approx([-10 * cp.jaws.bottom, 10 * cp.jaws.top])
                assert devices["MLCX"] == pytest.approx([-10 * cp.mlc_cm[r][0] for r in rows]
                                                        + [10 * cp.mlc_cm[r][1] for r in rows])
        assert float(cps[0].GantryAngle) == beam.control_points[0].gantry_deg
        meterset = next(r for g in rtplan.FractionGroupSequence for r in g.ReferencedBeamSequence
                        if int(r.ReferencedBeamNumber) == int(item.BeamNumber)).BeamMeterset
        assert float(meterset) == pytest.approx(beam.monitor_units) and float(meterset) > 0
        assert item.TreatmentMachineName == beam.machine_name and item.RadiationType == "PHOTON"
        assert float(cps[0].NominalBeamEnergy) > 0
        assert int(rtplan.FractionGroupSequence[0].NumberOfFractionsPlanned) == model.prescriptions[0].fractions
    assert len(set(seen_weights)) > 1  # beams differ: no beam takes the first beam's weights
    def mlc(cp: pydicom.Dataset) -> list[str]:
        return next(d for d in cp.BeamLimitingDevicePositionSequence
                    if d.RTBeamLimitingDeviceType == "MLCX").LeafJawPositions
    mlc_first, mlc_last = (mlc(rtplan.BeamSequence[0].ControlPointSequence[k]) for k in (0, -1))
    assert list(mlc_first) != list(mlc_last)  # each segment its own leaves, not the last one's for all
    assert float(rtplan.BeamSequence[0].ControlPointSequence[0].PatientSupportAngle) == 350.0
    assert float(rtplan.BeamSequence[1].ControlPointSequence[0].PatientSupportAngle) == 0.0
    assert rtplan.PatientSetupSequence[0].PatientPosition == treatment.plans[0].patient_position
    for path in paths:
        assert dciodvfy_errors(path) == [], path


def test_a_beam_without_its_dose_file_is_named_and_no_sum_is_written(patient_copy: Path, tmp_path: Path) -> None:
    treatment = read_treatment(DirectorySource(patient_copy))
    lost = treatment.plans[0].trials[0].beams[1]
    (patient_copy / lost.dose_file).unlink()
    _, paths, problems = export_patient(patient_copy, tmp_path / "out")
    names = {p.name for p in paths}
    assert "Plan_0-0-RD-PLAN.dcm" not in names and "Plan_0-0-RD-BEAM2.dcm" not in names
    assert {"Plan_0-0-RP.dcm", "Plan_0-0-RD-BEAM1.dcm", "Plan_0-0-RD-BEAM3.dcm"} <= names
    assert any(f"beam {lost.name!r}: its dose file is missing" in p for p in problems), problems
    assert any("the PLAN dose is not written: a beam's dose is missing" in p for p in problems), problems
    rtplan = pydicom.dcmread(tmp_path / "out/Plan_0-0-RP.dcm")
    assert len(rtplan.BeamSequence) == len(treatment.plans[0].trials[0].beams)  # the plan itself is whole


def test_the_real_sample_names_what_it_cannot_write(pinnacle_sample: Path, tmp_path: Path) -> None:
    """The sample's beams name a machine plan.Pinnacle.Machines lacks: no MU, no leaf boundaries, hence no dose;
    each named, never a negative MU; what is known (angles, jaws, weights 0.95/0.05, couch 355° → 5°) written."""
    _, paths, problems = export_patient(pinnacle_sample / SAMPLE, tmp_path)
    rtplan = pydicom.dcmread(tmp_path / "Plan_0-0-RP.dcm")
    first = rtplan.BeamSequence[0]
    assert [float(cp.CumulativeMetersetWeight) for cp in first.ControlPointSequence] == pytest.approx(
        [0, 0.95, 0.95, 1.0])
    assert float(first.ControlPointSequence[0].PatientSupportAngle) == 5.0
    positions = first.ControlPointSequence[0].BeamLimitingDevicePositionSequence
    assert [float(v) for v in positions[0].LeafJawPositions] == [-100.0, 100.0]
    assert [float(v) for v in positions[1].LeafJawPositions] == [-60.0, 110.0]
    assert all("BeamMeterset" not in r for g in rtplan.FractionGroupSequence for r in g.ReferencedBeamSequence)
    assert any("MU unknown" in p and "BeamMeterset left out" in p for p in problems)
    assert any("machine 'RogueOne' has no leaf pairs" in p for p in problems)
    assert any("the PLAN dose is not written" in p for p in problems)
    assert not any("RD-" in p.name for p in paths)
    for path in paths:
        assert dciodvfy_errors(path) == [], path
