"""The scanner's own slices kept in `ImageSet_N.DICOM/` read by the treatment model (design.md, "Pinnacle treatment
model and coordinates"): before Pinnacle 9 they give the scanner's frame that the header lacks, so CT, contours and
dose follow the scanner and not a guess; after, a slice that disagrees with the header is a warning naming it; a
damaged or foreign file is named, never an exception."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from rtvault.demo import GeneratedDatabase, generate_database
from rtvault.demo.spec import PatientSpec
from rtvault.pinnacle.coordinates import image_voxel_cm, to_dicom_mm
from rtvault.pinnacle.treatment import DirectorySource, Treatment, read_treatment


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> GeneratedDatabase:
    return generate_database(tmp_path_factory.mktemp("scanner") / "db", patients=6, seed=7, image_mb=0.05)


def _copy(db: GeneratedDatabase, spec: PatientSpec, tmp_path: Path) -> Path:
    return Path(shutil.copytree(db.out / spec.path, tmp_path / "patient"))


def _legacy(db: GeneratedDatabase) -> PatientSpec:
    return next(s for s in db.patients if s.pinnacle_version != "16.2" and (db.out / s.path / "ImageSet_0.DICOM")
                .is_dir())


def _recent(db: GeneratedDatabase) -> PatientSpec:
    return next(s for s in db.patients if s.pinnacle_version == "16.2" and (db.out / s.path / "ImageSet_0.DICOM")
                .is_dir())


def _shift_slices(patient: Path, image: str, dx_mm: float) -> None:
    """Move every slice the scanner wrote of `image` by `dx_mm` along DICOM x, as another scanner centring would."""
    for path in (patient / f"{image}.DICOM").iterdir():
        ds = pydicom.dcmread(path)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [f"{x + dx_mm:.4f}", f"{y:.4f}", f"{z:.4f}"]
        ds.save_as(path)


def _first_position(treatment: Treatment, k: int = 0) -> tuple[float, float, float]:
    plan = treatment.plans[0]
    image = next(i for i in treatment.image_sets if i.id == plan.primary_image_set_id)
    assert plan.frame is not None
    return to_dicom_mm(image_voxel_cm(image, plan.frame, 0, 0, k), plan.frame)


def test_an_old_header_takes_the_scanner_frame_from_its_kept_slices(generated: GeneratedDatabase,
                                                                   tmp_path: Path) -> None:
    spec = _legacy(generated)
    patient = _copy(generated, spec, tmp_path)
    before = read_treatment(DirectorySource(patient))
    assert not [p for p in before.problems if "may differ" in p.message]  # the scanner's slices are there
    image = f"ImageSet_{spec.plans[0].image_set_id}"
    _shift_slices(patient, image, 2.5)
    after = read_treatment(DirectorySource(patient))
    assert np.subtract(_first_position(after), _first_position(before)) == pytest.approx((2.5, 0.0, 0.0), abs=1e-4)
    # contours and points move with the CT: the plan's frame offset is the scanner's, not a guess
    assert after.plans[0].frame.offset_cm[0] - before.plans[0].frame.offset_cm[0] == pytest.approx(
        0.25 * (1 if spec.image_set(spec.plans[0].image_set_id).position in ("HFS", "FFP") else -1), abs=1e-6)
    assert after.plans[0].frame.decided
    scanner = pydicom.dcmread(patient / f"{image}.DICOM" / after.image_sets[0].slices[3].dicom_file)
    assert _first_position(after, 3) == pytest.approx([float(v) for v in scanner.ImagePositionPatient], abs=0.01)


def test_without_the_kept_slices_an_old_header_is_centred_with_a_warning(generated: GeneratedDatabase,
                                                                        tmp_path: Path) -> None:
    spec = _legacy(generated)
    patient = _copy(generated, spec, tmp_path)
    for folder in patient.glob("ImageSet_*.DICOM"):
        shutil.rmtree(folder)
    treatment = read_treatment(DirectorySource(patient))
    assert [p for p in treatment.problems if "may differ" in p.message]


def test_a_recent_header_disagreeing_with_the_scanner_slice_is_a_warning(generated: GeneratedDatabase,
                                                                        tmp_path: Path) -> None:
    spec = _recent(generated)
    patient = _copy(generated, spec, tmp_path)
    before = read_treatment(DirectorySource(patient))
    assert not [p for p in before.problems if ".DICOM/" in p.file]
    image = f"ImageSet_{spec.plans[0].image_set_id}"
    _shift_slices(patient, image, 1.0)
    after = read_treatment(DirectorySource(patient))
    assert _first_position(after) == pytest.approx(_first_position(before), abs=1e-6)  # the header's start kept
    [problem] = [p for p in after.problems if p.file.startswith(f"{image}.DICOM/")]
    assert "x_start_dicom" in problem.message and "1.0" in problem.message


@pytest.mark.parametrize("damage", [b"", b"\0" * 132, b"\0" * 128 + b"DICM" + b"\xff" * 40, b"not dicom at all"])
def test_a_damaged_scanner_slice_is_named_and_the_rest_read(generated: GeneratedDatabase, tmp_path: Path,
                                                           damage: bytes) -> None:
    spec = _legacy(generated)
    patient = _copy(generated, spec, tmp_path)
    for path in (patient / "ImageSet_0.DICOM").iterdir():
        path.write_bytes(damage)
    treatment = read_treatment(DirectorySource(patient))
    named = [p for p in treatment.problems if p.file.startswith("ImageSet_0.DICOM/")]
    assert len(named) == 1 and "not read" in named[0].message, treatment.problems
    assert [p for p in treatment.problems if "may differ" in p.message]  # back to the centred guess, said so
    assert treatment.plans and treatment.plans[0].frame is not None


def test_a_slice_of_another_image_is_not_taken_for_this_one(generated: GeneratedDatabase, tmp_path: Path) -> None:
    spec = _legacy(generated)
    patient = _copy(generated, spec, tmp_path)
    for path in (patient / "ImageSet_0.DICOM").iterdir():
        ds = pydicom.dcmread(path)
        ds.SOPInstanceUID = "1.2.3." + ds.SOPInstanceUID.rsplit(".", 1)[1]
        ds.save_as(path)
    treatment = read_treatment(DirectorySource(patient))
    named = [p for p in treatment.problems if p.file.startswith("ImageSet_0.DICOM/")]
    assert len(named) == 1 and "SOPInstanceUID" in named[0].message


def test_slices_imageinfo_does_not_name_are_said_unused(generated: GeneratedDatabase, tmp_path: Path) -> None:
    spec = _legacy(generated)
    patient = _copy(generated, spec, tmp_path)
    for path in (patient / "ImageSet_0.DICOM").iterdir():
        path.rename(path.with_name("IM" + path.name))
    treatment = read_treatment(DirectorySource(patient))
    named = [p for p in treatment.problems if p.file == "ImageSet_0.DICOM"]
    assert len(named) == 1 and "DICOMFileName" in named[0].message
    assert len(treatment.image_sets[0].dicom_files) == spec.image_sets[0].dims[2]  # still listed
