"""Pinnacle → DICOM coordinates: the axes per patient position, IEC couch angles, and the version-dependent
image start decided from the files (the Y offset that puts contours a metre off the CT when chosen wrong)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from rtvault.errors import Problem
from rtvault.pinnacle.coordinates import (
    couch_iec,
    dose_voxel_cm,
    image_voxel_cm,
    major_version,
    points_to_dicom_mm,
    position_from_setup,
    to_dicom_mm,
)
from rtvault.pinnacle.treatment import CoordinateFrame, DirectorySource, ImageSet, Poi, read_treatment
from rtvault.pinnacle.treatment_plan import decide_frame

PATIENT = "Institution_1/Mount_0/Patient_1"


@pytest.mark.parametrize(("position", "expected"), [
    ("HFS", (10.0, -20.0, -30.0)), ("HFP", (-10.0, 20.0, -30.0)),
    ("FFS", (-10.0, -20.0, 30.0)), ("FFP", (10.0, 20.0, 30.0)),
])
def test_axes_per_patient_position(position: str, expected: tuple[float, float, float]) -> None:
    frame = CoordinateFrame(position, (0.0, 0.0, 0.0), "dicom", True, "")  # type: ignore[arg-type]
    assert to_dicom_mm((1.0, 2.0, 3.0), frame) == pytest.approx(expected)
    assert points_to_dicom_mm([(1.0, 2.0, 3.0), (0, 0, 0)], frame).tolist() == [list(expected), [0.0, 0.0, 0.0]]


def test_the_offset_is_added_before_the_axes_turn() -> None:
    frame = CoordinateFrame("HFS", (0.0, 50.0, 0.0), "pinnacle", True, "")
    assert to_dicom_mm((0.0, -74.9, 1.0), frame) == pytest.approx((0.0, 249.0, -10.0))


def test_couch_angles_become_iec() -> None:
    assert [couch_iec(a) for a in (0.0, 10.0, 355.0, 90.0, 360.0)] == [0.0, 350.0, 5.0, 270.0, 0.0]


def test_versions_and_setups_are_read() -> None:
    assert [major_version(v) for v in ("Pinnacle v16.0", "16.2", "Launch Pad: 9.10", "7.4f", "", "none")] == [
        16, 16, 9, 7, None, None]
    assert position_from_setup("On back (supine)", "Head First Into Scanner") == "HFS"
    assert position_from_setup("On front (prone)", "Feet First Into Scanner") == "FFP"
    assert position_from_setup("Decubitus", "Head First Into Scanner") is None


def image(start: tuple[float, float, float] | None, start_dicom: tuple[float, float] | None) -> ImageSet:
    return ImageSet(0, "ImageSet_0", "CT", "", "HFS", (100, 100, 10), (0.5, 0.5, 0.3), start, start_dicom, 0, 2,
                    "", 28.1, "V", "", "", "", None, "", "", (), None, (), -1000.0, 1.0)


POINTS_IN_DICOM_FRAME = (Poi("iso", (1.0, 2.0, 0.0), "red", "ISOCENTER", "CT", "V"),)


def test_an_old_plan_drawn_against_x_start_is_shifted_to_the_scanner_frame() -> None:
    """Pinnacle 7.4: contours lie in the x_start/y_start frame (couch height in it), 50 cm below the scanner's."""
    old = image((-25.0, -74.75, 0.0), (-25.0, -24.75))
    problems: list[Problem] = []
    points = (Poi("iso", (1.0, -48.0, 0.0), "red", "ISOCENTER", "CT", "V"),)
    frame = decide_frame(old, "HFS", "Pinnacle v7.4f", (), points, "Plan_0", problems)
    assert frame is not None and frame.image_start == "pinnacle" and frame.decided and problems == []
    assert frame.offset_cm == (0.0, 50.0, 0.0)
    assert to_dicom_mm(points[0].position_cm, frame) == pytest.approx((10.0, -20.0, -0.0))


def test_a_recent_plan_is_not_shifted() -> None:
    problems: list[Problem] = []
    frame = decide_frame(image((-25.0, -74.75, 0.0), (-25.0, -24.75)), "HFS", "Pinnacle v16.0", (),
                         POINTS_IN_DICOM_FRAME, "Plan_0", problems)
    assert frame is not None and (frame.image_start, frame.offset_cm, frame.decided) == ("dicom", (0, 0, 0), True)
    assert problems == []


def test_version_and_geometry_disagreeing_is_a_warning() -> None:
    problems: list[Problem] = []
    frame = decide_frame(image((-25.0, -74.75, 0.0), (-25.0, -24.75)), "HFS", "Pinnacle v8.0", (),
                         POINTS_IN_DICOM_FRAME, "Plan_0", problems)
    assert frame is not None and frame.image_start == "dicom" and not frame.decided  # where the contours lie
    assert len(problems) == 1 and "cannot be decided" in problems[0].message and problems[0].file == "Plan_0"


def test_nothing_to_decide_on_is_a_warning() -> None:
    problems: list[Problem] = []
    frame = decide_frame(image((-25.0, -74.75, 0.0), (-25.0, -24.75)), "HFS", "", (), (), "Plan_0", problems)
    assert frame is not None and not frame.decided and "cannot be decided" in problems[0].message


def test_a_header_without_dicom_start_centres_the_image() -> None:
    problems: list[Problem] = []
    frame = decide_frame(image((-20.0, -60.0, 0.0), None), "HFS", "Pinnacle v7.4", (), (), "Plan_0", problems)
    assert frame is not None and frame.decided and frame.offset_cm == pytest.approx((20 - 24.75, 60 - 24.75, 0))
    assert "Pinnacle before 9" in problems[0].message
    problems.clear()
    frame = decide_frame(image((-20.0, -60.0, 0.0), None), "HFS", "Pinnacle v16.0", (), (), "Plan_0", problems)
    assert frame is not None and not frame.decided and "cannot be decided" in problems[0].message


def test_the_sample_read_as_an_old_version_would_put_contours_off_the_ct(pinnacle_sample: Path,
                                                                       tmp_path: Path) -> None:
    """The same sample with its version strings set to 7.4: the contours still decide, and they stay on the CT
    (a warning names the disagreement)."""
    target = tmp_path / "Patient_1"
    shutil.copytree(pinnacle_sample / PATIENT, target)
    for name in ("Plan_0/plan.Trial", "Plan_0/plan.PatientSetup"):
        path = target / name
        path.write_bytes(path.read_bytes().replace(b"Pinnacle v16.0", b"Pinnacle v7.4"))
    treatment = read_treatment(DirectorySource(target))
    plan = treatment.plans[0]
    assert plan.frame is not None and plan.frame.image_start == "dicom" and not plan.frame.decided
    assert any("cannot be decided" in p.message for p in treatment.problems)
    ct = treatment.image_sets[0]
    wrong = dataclasses.replace(plan.frame, offset_cm=(0.0, ct.start_dicom_cm[1] - ct.start_cm[1], 0.0))
    body = np.array(plan.rois[0].curves[0].points_cm)
    assert abs(points_to_dicom_mm(body, wrong)[:, 1] - points_to_dicom_mm(body, plan.frame)[:, 1]).min() == (
        pytest.approx(500.0, abs=0.01))


def test_the_sample_ct_and_dose_grid_in_dicom(pinnacle_sample: Path) -> None:
    """Slice k's first voxel and the dose grid's corners, in DICOM mm, for the real Pinnacle 16 sample (HFS)."""
    treatment = read_treatment(DirectorySource(pinnacle_sample / PATIENT))
    plan, ct = treatment.plans[0], treatment.image_sets[0]
    assert plan.frame is not None
    first = to_dicom_mm(image_voxel_cm(ct, plan.frame, 0, 0, 0), plan.frame)
    assert first == pytest.approx((-250.0, -250.0, 87.5), abs=0.01)  # row 0 the most anterior, z = −10·TablePosition
    last = to_dicom_mm(image_voxel_cm(ct, plan.frame, 511, 511, 100), plan.frame)
    assert last == pytest.approx((-250 + 511 * 0.97656, -250 + 511 * 0.97656, -162.5), abs=0.01)
    grid = plan.trials[0].dose_grid
    assert grid is not None
    corner = to_dicom_mm(dose_voxel_cm(grid, 0, 0, 0), plan.frame)
    assert corner == pytest.approx((-149.044, -10 * (-17.5729 + 109 * 0.3), 107.747), abs=1e-3)
    assert to_dicom_mm(dose_voxel_cm(grid, 0, 0, 1), plan.frame)[2] == pytest.approx(107.747 - 3.0)  # VoxelSize.Z
