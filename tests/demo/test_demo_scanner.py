"""The scanner's own CT slices some generated patients keep in `ImageSet_N.DICOM/`, as real Pinnacle does
(design.md, "The demo generator"): valid CT Image objects with the `.img`'s voxels, the UIDs ImageInfo lists, and
ImagePositionPatient where the scanner put each slice; the treatment model (header starts read as voxel centres)
puts every slice at the same place, for every patient position and the legacy frame."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from kit.dicom import dciodvfy_errors
from rtvault.demo import GeneratedDatabase
from rtvault.demo.spec import PatientSpec
from rtvault.jobs.dicom_export import image_frame
from rtvault.pinnacle.coordinates import image_voxel_cm, to_dicom_mm
from rtvault.pinnacle.grammar import parse_bytes
from rtvault.pinnacle.treatment import DirectorySource, read_treatment

KEEPING = (1, 3, 4, 5)  # the patients of a generated database (by rank) whose scanner slices Pinnacle kept


def _kept(db: GeneratedDatabase) -> list[PatientSpec]:
    return [db.patients[index] for index in KEEPING]


def _scanner_slices(db: GeneratedDatabase, spec: PatientSpec, image: str) -> list[pydicom.Dataset]:
    """The scanner's files of an image set in ImageInfo order, read by the names ImageInfo gives them."""
    info = parse_bytes((db.out / spec.path / f"{image}.ImageInfo").read_bytes(), "ImageInfo").root
    return [pydicom.dcmread(db.out / spec.path / f"{image}.DICOM" / entry.get("DICOMFileName"))
            for entry in info.get_all("ImageInfo")]


def test_some_patients_keep_the_scanner_slices_with_the_uids_imageinfo_lists(small_db: GeneratedDatabase) -> None:
    for index, spec in enumerate(small_db.patients):
        folders = sorted(p.name for p in (small_db.out / spec.path).glob("ImageSet_*.DICOM"))
        assert folders == ([f"{i.name}.DICOM" for i in spec.image_sets] if index in KEEPING else []), index
    kept = _kept(small_db)
    assert {i.position for spec in kept for i in spec.image_sets} == {"HFS", "HFP", "FFS", "FFP"}
    assert any(spec.pinnacle_version != "16.2" for spec in kept)  # the legacy frame too
    for spec in kept:
        for image in spec.image_sets:
            info = parse_bytes((small_db.out / spec.path / f"{image.name}.ImageInfo").read_bytes(), "i").root
            entries = info.get_all("ImageInfo")
            slices = _scanner_slices(small_db, spec, image.name)
            assert len(list((small_db.out / spec.path / f"{image.name}.DICOM").iterdir())) == len(entries)
            voxels = np.fromfile(small_db.out / spec.path / f"{image.name}.img",
                                 dtype=">u2" if image.byte_order else "<u2").reshape(image.dims[::-1])
            for k, (entry, ds) in enumerate(zip(entries, slices, strict=True)):
                assert ds.SOPInstanceUID == entry.get("InstanceUID") == ds.file_meta.MediaStorageSOPInstanceUID
                assert ds.SeriesInstanceUID == entry.get("SeriesUID")
                assert ds.StudyInstanceUID == entry.get("StudyInstanceUID")
                assert ds.FrameOfReferenceUID == entry.get("FrameUID")
                assert ds.SOPClassUID == entry.get("ClassUID") == "1.2.840.10008.5.1.4.1.1.2"
                assert ds.PatientPosition == image.position and ds.PatientID == spec.identity.mrn
                hu = ds.pixel_array.astype(np.int32) * int(ds.RescaleSlope) + int(ds.RescaleIntercept)
                assert np.array_equal(hu, voxels[k].astype(np.int32) - 1000)


def test_the_scanner_slices_are_valid_ct_images(small_db: GeneratedDatabase) -> None:
    for spec in _kept(small_db):
        image = spec.image_sets[0]
        folder = small_db.out / spec.path / f"{image.name}.DICOM"
        first = sorted(folder.iterdir())[0]
        assert dciodvfy_errors(first) == [], first


def test_the_header_starts_are_voxel_centres_of_an_image_centred_on_the_scanner_axis(
    small_db: GeneratedDatabase,
) -> None:
    for spec in small_db.patients:
        treatment = read_treatment(DirectorySource(small_db.out / spec.path))
        for image in treatment.image_sets:
            frame = image_frame(image, list(treatment.plans))
            assert frame is not None
            nx, ny, _ = image.dims
            first = to_dicom_mm(image_voxel_cm(image, frame, 0, 0, 0), frame)
            last = to_dicom_mm(image_voxel_cm(image, frame, nx - 1, ny - 1, 0), frame)
            assert (first[0] + last[0]) / 2 == pytest.approx(0.0, abs=1e-3), spec.path
            assert (first[1] + last[1]) / 2 == pytest.approx(0.0, abs=1e-3), spec.path


def test_the_model_puts_every_slice_where_the_scanner_did(small_db: GeneratedDatabase) -> None:
    checked = set()
    for spec in _kept(small_db):
        treatment = read_treatment(DirectorySource(small_db.out / spec.path))
        assert not [p for p in treatment.problems if "may differ" in p.message]  # the scanner's slices say
        for image in treatment.image_sets:
            frame = image_frame(image, list(treatment.plans))
            assert frame is not None
            for k, ds in enumerate(_scanner_slices(small_db, spec, image.name)):
                model = to_dicom_mm(image_voxel_cm(image, frame, 0, 0, k), frame)
                assert np.abs(np.subtract(model, [float(v) for v in ds.ImagePositionPatient])).max() < 0.01
            checked.add((image.patient_position, spec.pinnacle_version))
    assert {position for position, _ in checked} == {"HFS", "HFP", "FFS", "FFP"}


def test_the_directory_size_counts_the_scanner_slices(small_db: GeneratedDatabase) -> None:
    """The scanner's slices are about as large as the `.img`: the directory size in the Patient file counts them."""
    for spec in _kept(small_db):
        on_disk = sum(p.stat().st_size for p in (small_db.out / spec.path).rglob("*") if p.is_file()
                      and p.name != "Patient")
        assert spec.dir_size_mb * 1024 * 1024 == pytest.approx(on_disk, rel=1e-6)
        images = sum(i.img_bytes for i in spec.image_sets)
        slices = sum(p.stat().st_size for p in (small_db.out / spec.path).rglob("*.dcm"))
        assert images <= slices < 1.2 * images + 4000 * sum(i.dims[2] for i in spec.image_sets)
