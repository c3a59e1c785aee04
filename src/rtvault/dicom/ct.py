"""CT Image instances from a Pinnacle image set's voxels (docs/design.md, "DICOM export"): one instance per
frame of `ImageSet_N.img`, in frame (ImageInfo) order, InstanceNumber = frame + 1.

Positions come from the treatment model's coordinates (`image_voxel_cm` then `to_dicom_mm` with the image set's
frame), so CT, contours, points and dose share one rule. The stored values are Pinnacle's CT numbers (HU + 1000),
written unchanged as signed 16-bit with the model's rescale (intercept −1000, slope 1, type HU). Every UID is
derived (`Ids`): the scanner's own UIDs kept in ImageInfo are not reused, since these instances are re-encoded
from Pinnacle's copy (another object than the scanner's) and two exported versions must never share a UID.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from rtvault.dicom.common import (
    CT_IMAGE,
    Export,
    equipment,
    format_ds,
    format_ds_list,
    format_is,
    frame_of_reference,
    new_dataset,
    series,
)
from rtvault.pinnacle.coordinates import image_voxel_cm, to_dicom_mm
from rtvault.pinnacle.treatment_types import CoordinateFrame, ImageSet

WINDOW = (40.0, 400.0)  # a soft-tissue window, centre and width (HU)


@dataclass(frozen=True)
class CtSlice:
    """What other objects need of one exported CT instance: its UID and where it lies (DICOM z, mm)."""

    index: int  # the frame of the .img
    sop_instance_uid: str
    z_mm: float


@dataclass(frozen=True)
class CtSeries:
    """An exported image set: the series and frame-of-reference UIDs and each slice, in frame order."""

    image_set: str  # "ImageSet_N"
    series_uid: str
    frame_uid: str
    slices: tuple[CtSlice, ...]

    def slice_at(self, z_mm: float, tolerance_mm: float) -> CtSlice | None:
        """The slice whose plane is nearest DICOM z `z_mm`, None when none is within `tolerance_mm`."""
        if not self.slices:
            return None
        best = min(self.slices, key=lambda s: abs(s.z_mm - z_mm))
        return best if abs(best.z_mm - z_mm) <= tolerance_mm else None


def plan_series(export: Export, image: ImageSet, frame: CoordinateFrame) -> CtSeries:
    """The UIDs and slice positions of an image set's CT series, without its voxels (RTSTRUCT references them
    whether or not the voxels could be read)."""
    slices = tuple(
        CtSlice(k, export.ids.of("ct", image.name, "slice", str(k)), _position_mm(image, frame, k)[2])
        for k in range(_frames(image)))
    return CtSeries(image.name, export.ids.of("ct", image.name, "series"),
                    export.ids.frame_of_reference(image.name), slices)


def ct_datasets(export: Export, image: ImageSet, frame: CoordinateFrame, voxels: np.ndarray) -> Iterator[Dataset]:
    """One CT Image dataset per frame of `voxels` ((z, y, x) int16 as `Treatment.voxels` gives them)."""
    planned = plan_series(export, image, frame)
    orientation = _orientation(image, frame)
    assert image.voxel_size_cm is not None  # plan_series needed the geometry
    px, py, pz = (10.0 * v for v in image.voxel_size_cm)
    for cut in planned.slices:
        ds = new_dataset(export, CT_IMAGE, cut.sop_instance_uid)
        series(ds, "CT", planned.series_uid, 1 + image.id, image.series_description or image.name)
        ds.Laterality = ""  # Type 2C: dciodvfy cannot tell whether the body part is paired
        ds.PatientPosition = frame.position
        frame_of_reference(ds, planned.frame_uid)
        equipment(ds, image.manufacturer, image.model)
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        ds.InstanceNumber = format_is(cut.index + 1)
        ds.AcquisitionNumber = ""
        ds.KVP = ""
        ds.ImagePositionPatient = format_ds_list(_position_mm(image, frame, cut.index))
        ds.ImageOrientationPatient = format_ds_list(orientation)
        ds.PixelSpacing = format_ds_list((py, px))  # row spacing (between rows: y), then column spacing
        ds.SliceThickness = format_ds(pz)
        ds.SliceLocation = format_ds(cut.z_mm)
        _pixels(ds, voxels[cut.index])
        ds.RescaleIntercept = format_ds(image.rescale_intercept)
        ds.RescaleSlope = format_ds(image.rescale_slope)
        ds.RescaleType = "HU"
        ds.WindowCenter, ds.WindowWidth = (format_ds(w) for w in WINDOW)
        yield ds


def _frames(image: ImageSet) -> int:
    """How many slices the image set has a place for: none when its header gives no geometry."""
    if image.dims is None or image.voxel_size_cm is None or (image.start_cm is None and image.start_dicom_cm is None):
        return 0
    return image.dims[2]


def _position_mm(image: ImageSet, frame: CoordinateFrame, k: int) -> tuple[float, float, float]:
    return to_dicom_mm(image_voxel_cm(image, frame, 0, 0, k), frame)


def _orientation(image: ImageSet, frame: CoordinateFrame) -> tuple[float, ...]:
    """Row and column direction cosines: where column 1 and row 1 of a frame lie from its first voxel."""
    origin = np.asarray(_voxel_mm(image, frame, 0, 0))
    along_row = np.asarray(_voxel_mm(image, frame, 1, 0)) - origin
    along_column = np.asarray(_voxel_mm(image, frame, 0, 1)) - origin
    cosines = np.concatenate([along_row / np.linalg.norm(along_row), along_column / np.linalg.norm(along_column)])
    return tuple(float(round(c)) for c in cosines)  # axis-aligned: exactly ±1 and 0


def _voxel_mm(image: ImageSet, frame: CoordinateFrame, column: int, row: int) -> tuple[float, float, float]:
    return to_dicom_mm(image_voxel_cm(image, frame, column, row, 0), frame)


def _pixels(ds: Dataset, plane: np.ndarray) -> None:
    rows, columns = plane.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1
    ds.PixelData = np.ascontiguousarray(plane, dtype="<i2").tobytes()
