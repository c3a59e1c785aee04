"""CT, RTSTRUCT and DICOMDIR exported from a store, read back as another system would: dciodvfy, pydicom, the CT
against the demo generator's spec for each patient position, the body ROI on the CT's skin, identical bytes for
the same version, no UID shared by two versions, and what cannot be exported named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from kit.dicom import dciodvfy_errors
from kit.dicom_export import contours_of, ct_planes, files_by_modality, skin_distances_mm
from kit.files import set_field
from kit.vault import Vault
from rtvault.demo import generate_database
from rtvault.jobs.dicom_export import DicomExport, export_dicom
from rtvault.pinnacle.treatment import DirectorySource, read_treatment
from rtvault.store import Store

ORIENTATIONS = {"HFS": [1, 0, 0, 0, 1, 0], "HFP": [-1, 0, 0, 0, -1, 0], "FFS": [-1, 0, 0, 0, 1, 0],
                "FFP": [1, 0, 0, 0, -1, 0]}


class Site:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.db = base / "db"
        generate_database(self.db, patients=6, seed=7, image_mb=3)  # ~1.2-2.3 mm voxels
        self.vault = Vault(self.db, base / "store", base / "rtvault.toml")
        self.vault.configure()
        Store.init(self.vault.store_path)
        self.vault.backup()
        self.paths = sorted(p.path for p in self.vault.store.manifests()[-1].patients)
        self.exports: dict[str, tuple[DicomExport, Path]] = {p: self.export(p, f"x-{p.replace('/', '_')}")
                                                             for p in self.paths}

    def export(self, key: str, name: str, **options: object) -> tuple[DicomExport, Path]:
        out = self.base / name
        report = export_dicom(self.vault.config, self.vault.store, key, out, **options)  # type: ignore[arg-type]
        return report, out


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return Site(tmp_path_factory.mktemp("dicomct"))


def test_the_export_writes_every_object_and_a_dicomdir_naming_every_file(site: Site) -> None:
    for path, (report, out) in site.exports.items():
        found = files_by_modality(out)
        counts = report.counts()
        trials = sum(len(p.trials) for p in read_treatment(DirectorySource(site.db / path)).plans)
        assert counts["RTPLAN"] == len(found["RTPLAN"]) == trials, path
        assert counts["RTDOSE"] == len(found["RTDOSE"]) > trials, path  # per beam and the sum
        assert counts["CT"] == len(found["CT"]) > 0, path
        assert counts["RTSTRUCT"] == len(found["RTSTRUCT"]) == len(read_treatment(
            DirectorySource(site.db / path)).plans), path
        assert report.missing == [], path
        listed = {Path(*r.ReferencedFileID).as_posix() for r in pydicom.dcmread(out / "DICOMDIR")
                  .DirectoryRecordSequence if "ReferencedFileID" in r}
        assert listed == {p.relative_to(out).as_posix() for files in found.values() for p in files}


def test_dciodvfy_finds_no_error_in_any_object(site: Site) -> None:
    _, out = site.exports[site.paths[4]]  # the old-version patient: two image sets
    files = files_by_modality(out)
    checked = [*files["CT"][:2], *files["CT"][-2:], *files["RTSTRUCT"], out / "DICOMDIR"]
    for _, (_, other) in site.exports.items():
        found = files_by_modality(other)
        checked += [found["CT"][0], *found["RTSTRUCT"], *found.get("RTPLAN", [])[:1], *found.get("RTDOSE", [])[:1]]
    for path in checked:
        assert dciodvfy_errors(path) == [], path


@pytest.mark.parametrize("index", range(6))
def test_ct_positions_orientation_and_hu_follow_the_patient_position(site: Site, index: int) -> None:
    path = site.paths[index]
    treatment = read_treatment(DirectorySource(site.db / path))
    _, out = site.exports[path]
    by_series: dict[str, list[pydicom.Dataset]] = {}
    for file in files_by_modality(out)["CT"]:
        ds = pydicom.dcmread(file)
        by_series.setdefault(ds.SeriesDescription, []).append(ds)
    for image in treatment.image_sets:
        slices = sorted(by_series[image.series_description or image.name], key=lambda d: int(d.InstanceNumber))
        assert len(slices) == image.dims[2]
        position = image.patient_position
        voxels = np.fromfile(site.db / path / f"{image.name}.img", dtype=">i2" if image.byte_order else "<i2")
        voxels = voxels.reshape(image.dims[2], image.dims[1], image.dims[0])
        for k, ds in enumerate(slices):
            assert [float(v) for v in ds.ImageOrientationPatient] == ORIENTATIONS[position]
            table_cm = image.slices[k].table_position_cm
            z = float(ds.ImagePositionPatient[2])
            assert z == pytest.approx(10 * table_cm * (-1 if position.startswith("HF") else 1), abs=1e-4)
            first = np.asarray([float(v) for v in ds.ImagePositionPatient[:2]])
            last = first + np.asarray(ORIENTATIONS[position][:2]) * (ds.Columns - 1) * float(ds.PixelSpacing[1]) \
                + np.asarray(ORIENTATIONS[position][3:5]) * (ds.Rows - 1) * float(ds.PixelSpacing[0])
            # the demo's scanner field of view is centred on DICOM (0, 0): its header's starts are voxel centres
            assert np.abs((first + last) / 2).max() <= 1e-3
            hu = ds.pixel_array.astype(np.int32) * int(ds.RescaleSlope) + int(ds.RescaleIntercept)
            assert np.array_equal(hu, voxels[k].astype(np.int32) - 1000)
        assert hu[0, 0] < -900  # air in the corner


def test_ct_slice_positions_equal_the_scanner_original_slices_where_pinnacle_kept_them(site: Site) -> None:
    """Issue 15, item 3: each exported slice's ImagePositionPatient is that of the scanner's slice at the same z,
    read from ImageSet_N.DICOM/ with pydicom alone, for every patient position and the legacy frame."""
    seen = set()
    for path in site.paths:
        scanner: dict[tuple[str, float], tuple[np.ndarray, str]] = {}
        for file in (site.db / path).glob("ImageSet_*.DICOM/*.dcm"):
            ds = pydicom.dcmread(file, stop_before_pixels=True)
            position = np.asarray([float(v) for v in ds.ImagePositionPatient])
            scanner[(ds.SeriesDescription, round(position[2], 2))] = (position, ds.PatientPosition)
        if not scanner:
            continue
        _, out = site.exports[path]
        exported = [pydicom.dcmread(f, stop_before_pixels=True) for f in files_by_modality(out)["CT"]]
        assert len(exported) == len(scanner), path
        for ds in exported:
            position = np.asarray([float(v) for v in ds.ImagePositionPatient])
            original, patient_position = scanner[(ds.SeriesDescription, round(position[2], 2))]
            assert np.abs(position - original).max() < 0.01, (path, ds.InstanceNumber)
            seen.add(patient_position)
    assert seen == {"HFS", "HFP", "FFS", "FFP"}


@pytest.mark.parametrize("index", range(6))
def test_the_body_roi_lies_on_the_ct_skin(site: Site, index: int) -> None:
    _, out = site.exports[site.paths[index]]
    files = files_by_modality(out)
    planes = ct_planes(files["CT"])
    for rtstruct in files["RTSTRUCT"]:
        contours = contours_of(rtstruct, "BODY")
        assert contours and all(uid in planes for uid, _ in contours)  # every contour references its CT slice
        distances = skin_distances_mm(planes, contours)
        assert np.isnan(distances).mean() < 0.05
        assert np.nanmedian(distances) < 2.0, rtstruct


def test_rois_are_written_once_with_colour_type_and_points(site: Site) -> None:
    path = site.paths[0]
    plan = read_treatment(DirectorySource(site.db / path)).plans[0]
    _, out = site.exports[path]
    ds = next(d for d in map(pydicom.dcmread, files_by_modality(out)["RTSTRUCT"])
              if d.StructureSetLabel == plan.name[:16])
    names = [r.ROIName for r in ds.StructureSetROISequence]
    assert names == [r.name for r in plan.rois] + [p.name for p in plan.points]
    body = next(c for c in ds.ROIContourSequence if int(c.ReferencedROINumber) == 1)
    assert [int(v) for v in body.ROIDisplayColor] == [135, 206, 235]  # skyblue
    assert {c.ContourGeometricType for c in body.ContourSequence} == {"CLOSED_PLANAR"}
    kinds = {o.ROIObservationLabel: o.RTROIInterpretedType for o in ds.RTROIObservationsSequence}
    assert kinds["BODY"] == "EXTERNAL"
    iso = next(c for c in ds.ROIContourSequence if int(c.ReferencedROINumber) == names.index("iso") + 1)
    assert iso.ContourSequence[0].ContourGeometricType == "POINT"


def test_the_same_version_twice_gives_the_same_bytes(site: Site) -> None:
    path = site.paths[4]
    _, first = site.exports[path]
    _, again = site.export(path, "again")
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((first / f).read_bytes() == (again / f).read_bytes() for f in files)


def test_two_versions_share_no_uid_and_one_plan_alone_is_exported(site: Site) -> None:
    path = site.paths[1]
    set_field(site.db / path / "Patient", "LastName", "AUTRE")
    site.vault.backup()
    treatment = read_treatment(DirectorySource(site.db / path))
    report, out = site.export(path, "newer", plan=str(treatment.plans[-1].id))
    assert report.plans == [f"{treatment.plans[-1].directory} ({treatment.plans[-1].name})"]
    assert report.counts()["RTSTRUCT"] == 1
    _, older = site.exports[path]
    assert not _uids(out) & _uids(older)


def test_an_image_set_without_voxels_is_named_and_the_structures_still_written(site: Site) -> None:
    path = site.paths[2]
    (site.db / path / "ImageSet_0.img").unlink()
    site.vault.backup()
    report, out = site.export(path, "no-voxels")
    assert report.verdict().code == 9
    assert any(m.startswith("ImageSet_0: no voxels") for m in report.missing)
    files = files_by_modality(out)
    assert "CT" not in files and files["RTSTRUCT"]
    for rtstruct in files["RTSTRUCT"]:
        assert dciodvfy_errors(rtstruct) == []



def _uids(directory: Path) -> set[str]:
    found: set[str] = set()
    for path in directory.rglob("*"):
        if path.is_file() and path.name != "DICOMDIR":
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            found |= {str(ds.SOPInstanceUID), str(ds.SeriesInstanceUID), str(ds.StudyInstanceUID)}
            found |= {str(ds.FrameOfReferenceUID)} if "FrameOfReferenceUID" in ds else set()
    return found
