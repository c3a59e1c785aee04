"""A DVH computed from the exported DICOM alone (RTSTRUCT + RTDOSE through pydicom and numpy: `kit/dvh.py`), on
demo patients exported with `rtvault export dicom` as a user runs it: the body receives at least the
prescription somewhere, a covered target's D95 lies near its prescription, and at every dose the DICOM DVH agrees
with the viewer's own (`pinnacle/treatment_grid.py`, from the Pinnacle files, in Pinnacle cm) within a few
percent of volume. Independent computations on both sides: coordinates, rasterisation and interpolation differ,
only the files and the physics are shared.

Five patients (seed 3): HFS, HFP, HFS, FFS and an old Pinnacle version (its Y offset), so a contour or a dose
misplaced in any of them shows.

What the demo generator gives: its beams' axes pass through the isocentre and its fields follow the site, so
the prostate, vertebra, lung and rectum targets are covered (D95 94-100 % of the prescription) while the breast
and head-and-neck PTVs (PTV_SEIN, PTV_70) reach past the fields and are covered only in part (D95 55-82 %):
those are checked for what is true of them (a mean of 75-102 % of the prescription, a D95 well under it), not
for a coverage the generator does not make."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest

from kit.cli import rtvault, rtvault_json
from kit.dicom_export import files_by_modality
from kit.dvh import DicomDvh, DoseVolume, dicom_dvh, roi_contours
from kit.vault import Vault
from rtvault.demo import generate_database
from rtvault.pinnacle.treatment import DirectorySource, Treatment, read_treatment
from rtvault.pinnacle.treatment_grid import Dvh, ImageGrid, dvh, roi_mask
from rtvault.pinnacle.treatment_types import Plan
from rtvault.store import Store

pytestmark = pytest.mark.slow

# The generator's targets its beams cover only in part (see the module's docstring and docs/design.md)
PARTLY_COVERED = {"PTV_SEIN", "PTV_70"}
# Percent of volume the DICOM and viewer DVHs may differ by at a dose level: both count the points inside the
# contours, the viewer at the CT's pixel centres and the DICOM side on its own finer sampling, so they differ only
# where the dose falls steeply across a target's edge (the worst, PTV_OS, 3.3 points); the misplaced doses below go
# well past it.
GAP_POINTS = 4.0


@dataclass(frozen=True)
class ExportedPlan:
    """One patient's first plan and its first trial, as exported and as the viewer sees it."""

    path: str  # the patient's path in the database
    plan_name: str
    rtstruct: Path
    dose: DoseVolume
    prescription_gy: float  # the RTPLAN's TargetPrescriptionDose of the target
    target: str  # the RTPLAN's target ROI name (its DoseReferenceDescription, "PTV_... 60Gy")
    viewer: dict[str, Dvh]
    ct_spacing_mm: float


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> list[ExportedPlan]:
    base = tmp_path_factory.mktemp("dvh")
    db = base / "db"
    generate_database(db, patients=5, seed=3, image_mb=8)  # CT pixels of 2 mm
    vault = Vault(db, base / "store", base / "rtvault.toml")
    vault.configure()
    Store.init(vault.store_path)
    rtvault(vault.config_path, "backup")
    found = []
    for number, path in enumerate(sorted(p.path for p in vault.store.manifests()[-1].patients)):
        out = base / f"out{number}"
        treatment = read_treatment(DirectorySource(db / path))
        plan = treatment.plans[0]
        report = rtvault_json(vault.config_path, "export", "dicom", "--patient", path, "--plan", str(plan.id),
                              "--to", out)
        assert report["missing"] == []
        assert all("(Pinnacle before 9)" in p for p in report["problems"]), report["problems"]  # the old version
        files = files_by_modality(out)
        assert len(files["RTSTRUCT"]) == 1
        rtplan = next(pydicom.dcmread(p) for p in files["RTPLAN"]
                      if pydicom.dcmread(p, stop_before_pixels=True).RTPlanLabel == plan.trials[0].name)
        total = next(p for p in files["RTDOSE"] if (d := pydicom.dcmread(p, stop_before_pixels=True))
                     .DoseSummationType == "PLAN"
                     and d.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == rtplan.SOPInstanceUID)
        reference = next(r for r in rtplan.DoseReferenceSequence if "TargetPrescriptionDose" in r)
        found.append(ExportedPlan(path, plan.name, files["RTSTRUCT"][0], DoseVolume.read(total),
                                  float(reference.TargetPrescriptionDose),
                                  str(reference.DoseReferenceDescription).split()[0],
                                  _viewer_dvhs(treatment, plan), _spacing(files["CT"], files["RTSTRUCT"][0])))
    return found


def _spacing(ct: list[Path], rtstruct: Path) -> float:
    """The slice spacing (mm) of the CT series the RTSTRUCT references."""
    series = str(pydicom.dcmread(rtstruct).ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0]
                 .RTReferencedSeriesSequence[0].SeriesInstanceUID)
    zs = sorted(float(d.ImagePositionPatient[2]) for d in (pydicom.dcmread(p, stop_before_pixels=True) for p in ct)
                if d.SeriesInstanceUID == series)
    return float(np.median(np.diff(zs)))


def _viewer_values(viewer: Dvh) -> np.ndarray:
    """Doses standing for the viewer's cumulative DVH (one per 0.1 % of volume), to take its median from."""
    percent, doses = np.asarray(viewer.percent), np.asarray(viewer.dose_gy)
    wanted = np.linspace(0.05, 99.95, 1000)
    return np.array([doses[max(0, int(np.searchsorted(-percent, -w, side="right")) - 1)] for w in wanted])


def _viewer_dvhs(treatment: Treatment, plan: Plan) -> dict[str, Dvh]:
    """The viewer's DVH of each ROI of the plan's first trial, as `jobs/patient_view.py` computes them."""
    trial = plan.trials[0]
    image = treatment.image_set(plan.primary_image_set_id)
    grid = ImageGrid.of(image, plan.frame)
    dose = treatment.trial_dose_gy(trial)
    top = float(dose.max()) * 1.02
    found = {}
    for roi in plan.rois:
        mask = roi_mask(roi, grid) if roi.image_set_id in (None, image.id) else None
        if mask is not None and (made := dvh(mask, grid, dose, trial.dose_grid, top)) is not None:
            found[roi.name] = made
    return found


def _dvh(case: ExportedPlan, name: str) -> DicomDvh:
    contours = roi_contours(case.rtstruct, name)
    assert contours, f"{case.path}: ROI {name} has no closed contour in the RTSTRUCT"
    return dicom_dvh(contours, case.dose)


def test_the_body_receives_the_prescription_and_covered_targets_their_d95(exported: list[ExportedPlan]) -> None:
    covered = 0
    for case in exported:
        names = [str(r.ROIName) for r in pydicom.dcmread(case.rtstruct).StructureSetROISequence]
        assert case.target in names, (case.path, case.target, names)
        body = _dvh(case, "BODY")
        # the prescription point is a dose grid node on a CT slice: sampled exactly, up to the 16-bit dose step
        assert body.max_gy >= case.prescription_gy * (1 - 1e-3), (case.path, body.max_gy, case.prescription_gy)
        assert body.max_gy <= 1.2 * case.prescription_gy, (case.path, body.max_gy)
        target = _dvh(case, case.target)
        mean = float(np.average(target.doses, weights=target.cc_each)) / case.prescription_gy
        d95 = target.d_percent(95) / case.prescription_gy
        if case.target in PARTLY_COVERED:
            assert 0.75 <= mean <= 1.02 and 0.3 <= d95 < 0.9, (case.path, case.target, mean, d95)
        else:
            assert 0.97 <= mean <= 1.05 and 0.93 <= d95 <= 1.02, (case.path, case.target, mean, d95)
            covered += 1
    assert covered >= 3  # the prostate (twice) and vertebra targets: coverage checked, not only its absence


def _every_slice(case: ExportedPlan, name: str) -> bool:
    """Whether the ROI is contoured on every CT slice it spans (the demo draws organs on every few slices)."""
    zs = sorted({round(float(c[0, 2]), 2) for c in roi_contours(case.rtstruct, name)})
    return len(zs) > 1 and float(np.max(np.diff(zs))) <= case.ct_spacing_mm + 0.01


def test_the_dicom_dvh_agrees_with_the_viewers_within_a_few_percent_of_volume(exported: list[ExportedPlan]) -> None:
    """At each of the viewer's 201 dose levels, the percent of volume receiving at least that dose differs by at
    most GAP_POINTS, for every ROI contoured on every slice (the body, the prostate, vertebra and head-and-neck
    targets, the bladder, the parotids...), and the volumes agree within 2 %: both count the points inside the
    contours, the viewer at the CT's pixel centres (about 2 mm), the DICOM side on a finer sampling of its own."""
    compared = set()
    for case in exported:
        for name, viewer in case.viewer.items():
            if not _every_slice(case, name) or viewer.volume_cc < 20:
                continue
            mine = _dvh(case, name)
            assert mine.volume_cc == pytest.approx(viewer.volume_cc, rel=0.02), (case.path, name)
            levels = np.asarray(viewer.dose_gy)
            gaps = np.abs(mine.percent_at_least(levels) - np.asarray(viewer.percent))
            worst = int(np.argmax(gaps))
            assert gaps[worst] <= GAP_POINTS, (case.path, name, float(levels[worst]), float(gaps[worst]))
            assert mine.max_gy == pytest.approx(viewer.max_gy, rel=0.02), (case.path, name)
            assert mine.d_percent(50) == pytest.approx(np.percentile(_viewer_values(viewer), 50), abs=0.03
                                                       * case.prescription_gy), (case.path, name)
            compared.add(name)
    assert {"BODY", "PTV_PROSTATE", "PTV_OS", "PTV_70", "VESSIE", "PAROTIDE_D"} <= compared


def test_the_viewer_counts_the_volume_of_an_roi_contoured_every_few_slices(exported: list[ExportedPlan]) -> None:
    case = exported[0]
    if "RECTUM" not in case.viewer or _every_slice(case, "RECTUM"):
        pytest.fail("the first patient no longer has a RECTUM contoured every few slices: choose another ROI")
    assert _dvh(case, "RECTUM").volume_cc == pytest.approx(case.viewer["RECTUM"].volume_cc, rel=0.07)


def test_the_comparison_sees_a_misplaced_dose(exported: list[ExportedPlan]) -> None:
    """The comparison can fail: the RTDOSE 2 cm off along y (as a wrong Pinnacle-to-DICOM offset would put it)
    moves every target's DVH far past the tolerance, and frame offsets computed with the X voxel size instead of
    Z (pymedphys' error: Z is a quarter larger here) do for most targets."""
    shifted = stretched = 0
    for case in exported:
        viewer = case.viewer[case.target]
        contours = roi_contours(case.rtstruct, case.target)
        wrong_y = DoseVolume(case.dose.gy, case.dose.xs, case.dose.ys + 20.0, case.dose.zs)
        wrong_z = DoseVolume(case.dose.gy, case.dose.xs, case.dose.ys,
                             case.dose.zs[0] + (case.dose.zs - case.dose.zs[0]) * 0.8)
        for wrong in (wrong_y, wrong_z):
            gaps = np.abs(dicom_dvh(contours, wrong).percent_at_least(np.asarray(viewer.dose_gy))
                          - np.asarray(viewer.percent))
            if gaps.max() > GAP_POINTS:
                shifted += wrong is wrong_y
                stretched += wrong is wrong_z
    assert shifted == len(exported) and stretched >= 3, (shifted, stretched)
