"""The scanner's own CT slices, as Pinnacle keeps them in `ImageSet_N.DICOM/` for some patients: one CT Image file
per `.ImageInfo` entry, named by its `DICOMFileName`, with the UIDs that entry lists (SOP instance, series, study,
frame of reference) and the `.img` frame's voxels. The geometry is the scanner's, worked out here from the room
(demo/geometry.py) and DICOM's patient axes, not from the treatment model, so that a test comparing the two checks
something: x to the patient's left, y to the posterior, z to the head, in mm.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.uid import ExplicitVRLittleEndian

from rtvault.demo import geometry
from rtvault.demo.spec import ImageSetSpec, PatientSpec

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
_IMPLEMENTATION = "2.25.90210431337104452063142385419171020211"  # a made-up scanner's implementation class
STUDY_SUFFIX, FRAME_SUFFIX = ".1", ".2"  # ImageInfo's StudyInstanceUID and FrameUID: the series UID and these


def instance_uid(image: ImageSetSpec, index: int) -> str:
    return f"{image.series_uid}.3.{index + 1}"


def file_name(image: ImageSetSpec, index: int) -> str:
    """ImageInfo's `DICOMFileName` of slice `index`: the file's name in `ImageSet_N.DICOM/`."""
    return f"CT_{instance_uid(image, index)}.dcm"


def scanner_geometry(image: ImageSetSpec, index: int) -> tuple[tuple[float, float, float], tuple[int, ...]]:
    """ImagePositionPatient (mm) of slice `index` and ImageOrientationPatient. The scanner sees the room: its
    DICOM x is the patient's left, so the room's x times the anatomy's x flip (mirrored feet first and prone),
    its y the posterior, so minus the room's y (up) times the y flip (prone turns the patient over); z towards the
    head, against the table's travel head first. The first pixel is the first column's centre on the top row."""
    fx, fy = geometry.flips(image.position)
    x0, y_last = geometry.first_centre(image)
    y_top = y_last + (image.dims[1] - 1) * image.pixdim[1]
    towards_head = -1.0 if image.position.startswith("HF") else 1.0
    position = (10.0 * fx * x0, -10.0 * fy * y_top, 10.0 * towards_head * geometry.slice_z(image, index))
    return position, (int(fx), 0, 0, 0, int(fy), 0)


def _ds(number: float) -> str:
    """A decimal string as a scanner writes it: at most 16 characters, never "-0"."""
    text = f"{number:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text[:16]


def _common(ds: Dataset, spec: PatientSpec, image: ImageSetSpec) -> None:
    who = spec.identity
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = f"{who.last_name}^{who.first_name}"
    ds.PatientID = who.mrn
    ds.PatientBirthDate = who.birth_date.replace("-", "") if who.birth_date else ""
    ds.PatientSex = {"Male": "M", "Female": "F"}.get(who.gender, "O")
    ds.StudyInstanceUID = image.series_uid + STUDY_SUFFIX
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = image.scanned.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = image.scanned.strftime("%H%M%S")
    ds.ReferringPhysicianName = who.referring_physician.replace(" ", "^")
    ds.StudyID = str(spec.number)[:16]
    ds.AccessionNumber = image.exam_id[:16]
    ds.Modality = "CT"
    ds.Laterality = ""  # Type 2C: the body part may be paired
    ds.SeriesInstanceUID = image.series_uid
    ds.SeriesNumber = str(image.id + 2)
    ds.SeriesDescription = image.series_description[:64]
    ds.PatientPosition = image.position
    ds.FrameOfReferenceUID = image.series_uid + FRAME_SUFFIX
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = "Philips"
    ds.ManufacturerModelName = "Brilliance Big Bore"
    ds.StationName = "ctrt"


def slice_dataset(spec: PatientSpec, image: ImageSetSpec, index: int, voxels: np.ndarray) -> Dataset:
    """The CT Image the scanner wrote for slice `index`: `voxels` is its frame (rows × columns) of CT numbers."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE
    meta.MediaStorageSOPInstanceUID = instance_uid(image, index)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = _IMPLEMENTATION
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CT_IMAGE, instance_uid(image, index)
    _common(ds, spec, image)
    position, orientation = scanner_geometry(image, index)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceNumber = str(index + 1)
    ds.AcquisitionNumber = "1"
    ds.KVP = "120"
    ds.ImagePositionPatient = [_ds(v) for v in position]
    ds.ImageOrientationPatient = [str(v) for v in orientation]
    ds.PixelSpacing = [_ds(10.0 * image.pixdim[1]), _ds(10.0 * image.pixdim[0])]
    ds.SliceThickness = _ds(10.0 * image.pixdim[2])
    ds.SliceLocation = _ds(position[2])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = voxels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1000", "1", "HU"
    ds.PixelData = np.ascontiguousarray(voxels, dtype="<u2").tobytes()
    return ds


def slice_files(spec: PatientSpec, image: ImageSetSpec, volume: bytes) -> Iterator[tuple[str, bytes]]:
    """Each slice's name in `ImageSet_N.DICOM/` and its bytes (a DICOM file: preamble, meta, dataset), from the
    bytes of `ImageSet_N.img`."""
    nx, ny, nz = image.dims
    frames = np.frombuffer(volume, dtype="<u2" if image.byte_order == 0 else ">u2").reshape(nz, ny, nx)
    for index in range(nz):
        buffer = DicomBytesIO()
        slice_dataset(spec, image, index, frames[index]).save_as(buffer, enforce_file_format=True)
        yield file_name(image, index), buffer.getvalue()
