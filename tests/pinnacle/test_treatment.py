"""The treatment model read from real and synthetic Pinnacle files, and from hostile ones: what a physicist would
check (geometry, prescriptions, beams, control points, dose per MU at the isocentre), every missing or damaged
file reported by name, never an exception."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from rtvault.demo import generate_database
from rtvault.demo.spec import ImageSetSpec, TrialSpec
from rtvault.pinnacle.coordinates import points_to_dicom_mm
from rtvault.pinnacle.treatment import DirectorySource, ImageSet, Treatment, Trial, read_treatment
from rtvault.pinnacle.treatment_bulk import dose_at_point

PATIENT = "Institution_1/Mount_0/Patient_1"
CLINAC_6X_DOSE_PER_MU = 0.8074  # plan.Pinnacle.Machines, Clinac iX 6X (the fixture's beams name it "RogueOne")


def messages(treatment: Treatment) -> list[str]:
    return [str(p) for p in treatment.problems]


def one_problem(treatment: Treatment, file: str, words: str) -> None:
    assert any(p.file == file and words in p.message for p in treatment.problems), messages(treatment)


@pytest.fixture
def sample(pinnacle_sample: Path) -> Treatment:
    return read_treatment(DirectorySource(pinnacle_sample / PATIENT))


def test_sample_identity_and_image_set(sample: Treatment) -> None:
    assert (sample.identity.last_name, sample.identity.first_name, sample.identity.mrn) == ("LAST", "FIRST", "000000")
    assert sample.identity.birth_date == "2020-01-01"
    [image] = sample.image_sets
    assert (image.modality, image.patient_position, image.dims) == ("CT", "HFS", (512, 512, 101))
    assert image.voxel_size_cm == (0.097656, 0.097656, 0.25)
    assert image.start_cm == (-25.0, -74.902321, -8.75) and image.start_dicom_cm == (-25.0, -24.902321)
    assert len(image.slices) == 101 and image.slices[0].table_position_cm == -8.75
    assert image.slices[-1].table_position_cm == pytest.approx(16.25)
    assert image.slices[0].instance_uid.endswith(".3.1") and image.frame_uid.endswith(".2")
    # The sample has no .img: said so, and everything else is still there.
    assert image.voxel_file is None and sample.voxels(image) is None
    one_problem(sample, "ImageSet_0.img", "missing")


def test_only_the_plans_asked_for_are_read(pinnacle_sample: Path) -> None:
    assert read_treatment(DirectorySource(pinnacle_sample / PATIENT), plan_ids=[]).plans == ()
    assert [p.id for p in read_treatment(DirectorySource(pinnacle_sample / PATIENT), plan_ids=[0]).plans] == [0]


def test_sample_rois_points_and_frame(sample: Treatment) -> None:
    [plan] = sample.plans
    assert (plan.name, plan.patient_position) == ("BRAIN", "HFS")
    assert [(r.name, r.color, len(r.curves)) for r in plan.rois][:2] == [("bb", "red", 8), ("ROI_1", "green", 2)]
    assert all(r.image_set_id == 0 and r.interpreted_type == "ORGAN" for r in plan.rois)
    assert [(p.name, p.position_cm) for p in plan.points] == [("iso", (-1.20199, 1.89459, 2.0))]
    # Pinnacle 16 draws against x_start_dicom/y_start_dicom: no offset, and every contour lies on the CT.
    assert plan.frame is not None and plan.frame.image_start == "dicom" and plan.frame.decided
    assert plan.frame.offset_cm == (0.0, 0.0, 0.0)
    points = np.array([p for roi in plan.rois for c in roi.curves for p in c.points_cm])
    dicom = points_to_dicom_mm(points, plan.frame)
    image = sample.image_sets[0]
    x0, y_top = 10 * image.start_dicom_cm[0], -10 * (image.start_dicom_cm[1] + 511 * 0.097656)
    assert (dicom[:, 0] >= x0).all() and (dicom[:, 0] <= x0 + 500).all()
    assert (dicom[:, 1] >= y_top).all() and (dicom[:, 1] <= y_top + 500).all()
    slices_z = sorted(-10 * s.table_position_cm for s in image.slices)
    assert all(min(abs(z - s) for s in slices_z) < 1e-6 for z in dicom[:, 2])


def test_sample_trial_beams_and_control_points(sample: Treatment) -> None:
    trial = sample.plans[0].trials[0]
    [prescription] = trial.prescriptions
    assert (prescription.dose_cgy, prescription.percent, prescription.fractions) == (250.0, 99.0, 12)
    assert prescription.dose_at_point_cgy == pytest.approx(250 / 0.99)
    assert trial.dose_grid is not None
    assert trial.dose_grid.voxel_size_cm == (0.3, 0.3, 0.3) and trial.dose_grid.dims == (93, 110, 89)
    assert trial.dose_grid.origin_cm == (-14.9044, -17.5729, -10.7747)
    first, second = trial.beams
    assert (first.name, first.energy_name, first.machine_name, first.field_id) == ("02 Lao Brain", "6X", "RogueOne",
                                                                                   "02")
    assert first.beam_type == "Step & Shoot MLC" and first.isocenter_cm == (-1.20199, 1.89459, 2.0)
    assert [(c.gantry_deg, c.couch_deg, c.weight) for c in first.control_points] == [(79, 355, 0.95), (79, 355, 0.05)]
    assert second.control_points[0].gantry_deg == 270
    cp = first.control_points[0]
    assert cp.jaws is not None and (cp.jaws.left, cp.jaws.right, cp.jaws.top, cp.jaws.bottom) == (10, 10, 11, 6)
    assert len(cp.mlc_cm) == 60 and cp.mlc_cm[9] == (10.0, 10.0) and cp.mlc_cm[23] == (9.9, 10.0)
    # The fixture's beams name a machine plan.Pinnacle.Machines lacks: MU unknown, said so, never negative.
    assert first.monitor_units is None
    one_problem(sample, "Plan_0/plan.Trial", "machine 'RogueOne' energy '6X' has no DosePerMuAtCalibration")
    assert first.dose_file == "Plan_0/plan.Trial.binary.008" and second.dose_file is None
    one_problem(sample, "Plan_0/plan.Trial.binary.025", "missing")


def test_sample_dose_per_mu_at_the_isocentre_gives_the_prescription(sample: Treatment) -> None:
    """Dose = MU × ND × OFc × TTF × (D/MU)cal: the beam's dose per MU at the isocentre, read with row 0 at the
    grid's highest y and Z spaced by VoxelSize.Z, is what the beam's MonitorUnitInfo implies."""
    trial = sample.plans[0].trials[0]
    beam = trial.beams[0]
    dose = sample.beam_dose(trial, beam)
    assert dose is not None and dose.shape == (89, 110, 93) and dose.dtype == np.float32
    mu = beam.prescription_dose_cgy / (beam.normalized_dose * 1.02155 * 1.0 * CLINAC_6X_DOSE_PER_MU)
    assert dose_at_point(trial.dose_grid, dose, beam.isocenter_cm) == pytest.approx(
        beam.prescription_dose_cgy / mu, rel=1e-4)
    assert dose_at_point(trial.dose_grid, dose, (100.0, 0.0, 0.0)) is None


def check_image(treatment: Treatment, image: ImageSet, wanted: ImageSetSpec) -> None:
    assert (image.id, image.dims, image.byte_order) == (wanted.id, wanted.dims, wanted.byte_order)
    assert image.voxel_size_cm == pytest.approx(wanted.pixdim)
    voxels = treatment.voxels(image)
    assert voxels is not None and voxels.shape == wanted.dims[::-1]
    assert voxels.dtype == np.dtype(">i2" if wanted.byte_order else "<i2")
    nx, ny, _ = wanted.dims
    centre = voxels[:, ny // 2 - 1: ny // 2 + 2, nx // 2 - 1: nx // 2 + 2].astype(float) + image.rescale_intercept
    assert -100 < float(np.median(centre)) < 150  # soft tissue in HU


def check_trial(treatment: Treatment, trial: Trial, wanted: TrialSpec) -> None:
    assert trial.dose_grid is not None and trial.dose_grid.dims == wanted.dose_dims
    assert trial.dose_grid.voxel_size_cm == tuple(wanted.dose_voxel)  # Z its own (VoxelSize.Z)
    assert trial.prescriptions[0].fractions == wanted.fractions
    for beam, wanted_beam in zip(trial.beams, wanted.beams, strict=True):
        assert beam.name == wanted_beam.name and beam.energy_name == wanted_beam.energy
        cp = beam.control_points[0]
        assert (cp.gantry_deg, cp.couch_deg, cp.collimator_deg) == (
            wanted_beam.gantry, wanted_beam.couch, wanted_beam.collimator)
        assert cp.jaws is not None and (cp.jaws.left, cp.jaws.right, cp.jaws.top, cp.jaws.bottom) == wanted_beam.jaws
        assert beam.dose_file is not None and treatment.beam_dose(trial, beam) is not None
        assert beam.monitor_units == pytest.approx(wanted_beam.monitor_units, rel=1e-4)  # the machine's calibration


def test_demo_patients_match_their_specs(tmp_path: Path) -> None:
    database = generate_database(tmp_path / "db", 3, 7, image_mb=0.3)
    for spec in database.patients:
        treatment = read_treatment(DirectorySource(tmp_path / "db" / spec.path))
        assert treatment.identity.mrn == spec.identity.mrn
        for image, wanted in zip(treatment.image_sets, spec.image_sets, strict=True):
            check_image(treatment, image, wanted)
        for plan, wanted_plan in zip(treatment.plans, spec.plans, strict=True):
            assert plan.patient_position == spec.image_sets[0].position
            assert [r.name for r in plan.rois] == [r.name for r in spec.site.rois]
            assert plan.points[0].name == "iso"
            for trial, wanted_trial in zip(plan.trials, wanted_plan.trials, strict=True):
                check_trial(treatment, trial, wanted_trial)


@pytest.fixture
def copy(pinnacle_sample: Path, tmp_path: Path) -> Path:
    target = tmp_path / "Patient_1"
    shutil.copytree(pinnacle_sample / PATIENT, target)
    return target


def read(directory: Path) -> Treatment:
    return read_treatment(DirectorySource(directory))


def test_a_truncated_trial_keeps_what_was_read(copy: Path) -> None:
    trial = copy / "Plan_0/plan.Trial"
    data = trial.read_bytes()
    trial.write_bytes(data[: data.index(b"MonitorUnitInfo")])  # cut inside the first beam, before its dose
    treatment = read(copy)
    one_problem(treatment, "Plan_0/plan.Trial", "file ends inside")
    [trial_read] = treatment.plans[0].trials
    assert trial_read.prescriptions[0].fractions == 12 and trial_read.dose_grid is not None
    [beam] = trial_read.beams
    assert beam.name == "02 Lao Brain" and len(beam.control_points) == 2 and beam.dose_file is None
    one_problem(treatment, "Plan_0/plan.Trial", "beam '02 Lao Brain': no DoseVolume reference")
    one_problem(treatment, "Plan_0/plan.Trial", "beam '02 Lao Brain': MonitorUnitInfo lacks")


def test_files_of_the_wrong_size_are_not_read(copy: Path) -> None:
    dose = copy / "Plan_0/plan.Trial.binary.008"
    dose.write_bytes(dose.read_bytes()[:-4])
    (copy / "ImageSet_0.img").write_bytes(b"\0" * 1000)
    treatment = read(copy)
    one_problem(treatment, "ImageSet_0.img", "1000 bytes where the header announces 52953088")
    one_problem(treatment, "Plan_0/plan.Trial.binary.008", "3641876 bytes where the dose grid needs 3641880")
    assert treatment.image_sets[0].voxel_file is None and treatment.voxels(treatment.image_sets[0]) is None
    trial = treatment.plans[0].trials[0]
    assert trial.beams[0].dose_file is None and treatment.beam_dose(trial, trial.beams[0]) is None


def test_missing_and_garbage_files_leave_the_rest(copy: Path) -> None:
    (copy / "Plan_0/plan.Points").unlink()
    (copy / "Plan_0/plan.Pinnacle.Machines").unlink()
    (copy / "Patient").write_bytes(b"\xff\xfe garbage {{{ ;;; \x00")
    header = copy / "ImageSet_0.header"
    header.write_bytes(header.read_bytes().replace(b"x_dim = 512;", b"x_dim = -3;").replace(b"HFS", b"XYZ"))
    treatment = read(copy)
    one_problem(treatment, "Plan_0/plan.Points", "missing")
    one_problem(treatment, "Plan_0/plan.Pinnacle.Machines", "missing")
    one_problem(treatment, "ImageSet_0.header", "not a usable image size")
    one_problem(treatment, "ImageSet_0.header", "'XYZ' is not HFS, HFP, FFS or FFP")
    assert treatment.identity.last_name == ""
    [plan] = treatment.plans  # not in any PlanList any more, still on disk: read, and said so
    one_problem(treatment, "Patient", "Plan_0 is on disk but not in PlanList")
    assert plan.points == () and plan.patient_position == "HFS"  # plan.PatientSetup still says supine head first
    assert plan.trials[0].beams[0].isocenter_cm is None and plan.trials[0].beams[0].monitor_units is None


def test_hostile_dose_grid_and_references(copy: Path) -> None:
    trial = copy / "Plan_0/plan.Trial"
    text = trial.read_bytes()
    text = text.replace(b"DoseGrid .Dimension .X = 93;", b"DoseGrid .Dimension .X = 99999999;", 1)
    text = text.replace(b"DoseVolume = \\XDR:8\\;", b"DoseVolume = \\XDR:../../etc\\;", 1)
    trial.write_bytes(text)
    treatment = read(copy)
    first = treatment.plans[0].trials[0]
    assert first.dose_grid is None
    one_problem(treatment, "Plan_0/plan.Trial", "DoseGrid of (99999999, 110, 89) voxels")
    one_problem(treatment, "Plan_0/plan.Trial", "beam '02 Lao Brain': no DoseVolume reference")
    assert treatment.beam_dose(first, first.beams[0]) is None and treatment.trial_dose_gy(first) is None


def test_directory_source_stays_inside_and_skips_links(copy: Path, tmp_path: Path) -> None:
    (tmp_path / "outside").write_bytes(b"secret")
    (copy / "link").symlink_to(tmp_path / "outside")
    source = DirectorySource(copy)
    assert "link" not in source.names() and source.size("link") is None
    for name in ("../outside", "/etc/passwd", "Plan_0/../../outside", ""):
        assert source.size(name) is None
        with pytest.raises(OSError):
            source.read(name)


def test_an_empty_directory_is_an_empty_treatment(tmp_path: Path) -> None:
    treatment = read(tmp_path)
    assert treatment.image_sets == () and treatment.plans == ()
    one_problem(treatment, "Patient", "missing")


def test_damaged_text_files_never_raise(copy: Path) -> None:
    """Each text file cut short at several places, or with bytes overwritten: a model and named problems, always."""
    rng = random.Random(15)
    originals = {name: (copy / name).read_bytes() for name in (
        "Patient", "ImageSet_0.header", "ImageSet_0.ImageInfo", "Plan_0/plan.roi", "Plan_0/plan.Points",
        "Plan_0/plan.PatientSetup", "Plan_0/plan.Trial")}
    for name, data in originals.items():
        for _ in range(3):
            damaged = bytearray(data[: rng.randrange(len(data))])
            for _ in range(20):
                if damaged:
                    damaged[rng.randrange(len(damaged))] = rng.choice(b"{};=\\\"#\x00\xff 0123456789.-e")
            (copy / name).write_bytes(bytes(damaged))
            treatment = read(copy)
            assert all(p.file and p.message for p in treatment.problems)
        (copy / name).write_bytes(data)


def test_the_scanner_slices_pinnacle_kept_are_listed(copy: Path) -> None:
    kept = copy / "ImageSet_0.DICOM"
    kept.mkdir()
    (kept / "CT_1.2.840.113619.2.55.3.3535481354.111.3513513585.3.1.dcm").write_bytes(b"\0" * 132)
    image = read(copy).image_sets[0]
    assert image.dicom_files == ("ImageSet_0.DICOM/CT_1.2.840.113619.2.55.3.3535481354.111.3513513585.3.1.dcm",)
    assert f"ImageSet_0.DICOM/{image.slices[0].dicom_file}" == image.dicom_files[0]
