"""What the DICOM export tests read back from exported files: the CT as HU planes with their geometry, where an
RTSTRUCT's contour lies against the CT's skin (the body ROI on the skin), and the files of an export by modality.
Everything here reads the DICOM files alone, as another system would."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom

SKIN_HU = -300.0  # the body's edge: air is about -1000 HU, fat -65


@dataclass(frozen=True)
class CtPlane:
    """One CT instance: HU, where pixel (0, 0) is, and the row/column directions and spacings (mm)."""

    sop_instance_uid: str
    hu: np.ndarray  # (rows, columns)
    origin: np.ndarray  # ImagePositionPatient
    row_dir: np.ndarray  # direction of increasing column index
    col_dir: np.ndarray  # direction of increasing row index
    spacing: tuple[float, float]  # (between rows, between columns)


def files_by_modality(directory: Path) -> dict[str, list[Path]]:
    """Every DICOM file under an export's directory (DICOMDIR apart), by Modality, in path order."""
    found: dict[str, list[Path]] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != "DICOMDIR"):
        found.setdefault(str(pydicom.dcmread(path, stop_before_pixels=True).Modality), []).append(path)
    return found


def ct_planes(paths: list[Path]) -> dict[str, CtPlane]:
    planes = {}
    for path in paths:
        ds = pydicom.dcmread(path)
        hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        orientation = np.asarray([float(v) for v in ds.ImageOrientationPatient])
        planes[ds.SOPInstanceUID] = CtPlane(ds.SOPInstanceUID, hu, np.asarray([float(v) for v in
                                                                               ds.ImagePositionPatient]),
                                            orientation[:3], orientation[3:],
                                            (float(ds.PixelSpacing[0]), float(ds.PixelSpacing[1])))
    return planes


def contours_of(rtstruct: Path, roi_name: str) -> list[tuple[str | None, np.ndarray]]:
    """The contours (referenced CT instance UID, N×3 mm) of the ROI named in an RTSTRUCT."""
    ds = pydicom.dcmread(rtstruct)
    number = next(int(r.ROINumber) for r in ds.StructureSetROISequence if r.ROIName == roi_name)
    item = next(c for c in ds.ROIContourSequence if int(c.ReferencedROINumber) == number)
    found = []
    for contour in item.get("ContourSequence", []):
        images = contour.get("ContourImageSequence", [])
        uid = str(images[0].ReferencedSOPInstanceUID) if images else None
        found.append((uid, np.asarray([float(v) for v in contour.ContourData]).reshape(-1, 3)))
    return found


def skin_distances_mm(planes: dict[str, CtPlane], contours: list[tuple[str | None, np.ndarray]]) -> np.ndarray:
    """For each contour point, how far (mm) the CT's skin (where HU first falls below SKIN_HU going outward from
    the contour's centre through the point, between half and one and a half times its radius) lies from it; NaN
    where no crossing is found or the contour references no CT slice."""
    distances = []
    for uid, points in contours:
        if uid is None:
            distances += [float("nan")] * len(points)
            continue
        distances += list(_skin_distances(planes[uid], points))
    return np.asarray(distances)


def _skin_distances(plane: CtPlane, points: np.ndarray) -> np.ndarray:
    centre = points.mean(axis=0)
    radius = np.linalg.norm(points - centre, axis=1)
    fractions = np.linspace(0.5, 1.5, 201)
    samples = centre + (points - centre)[:, None, :] * fractions[None, :, None]  # (points, steps, 3)
    values = _bilinear(plane, samples)
    inside = values >= SKIN_HU
    crossing = inside[:, :-1] & ~inside[:, 1:]
    found = crossing.any(axis=1)
    k = np.where(found, crossing.argmax(axis=1), 0)
    rows = np.arange(len(points))
    a, b = values[rows, k], values[rows, k + 1]
    where = fractions[k] + (a - SKIN_HU) / (a - b) * (fractions[1] - fractions[0])
    return np.where(found, np.abs(where - 1.0) * radius, np.nan)


def _bilinear(plane: CtPlane, points: np.ndarray) -> np.ndarray:
    offset = points - plane.origin
    c = offset @ plane.row_dir / plane.spacing[1]
    r = offset @ plane.col_dir / plane.spacing[0]
    rows, columns = plane.hu.shape
    outside = (r < 0) | (r > rows - 1) | (c < 0) | (c > columns - 1)
    r0 = np.clip(np.floor(r).astype(int), 0, rows - 2)
    c0 = np.clip(np.floor(c).astype(int), 0, columns - 2)
    fr, fc = np.clip(r - r0, 0, 1), np.clip(c - c0, 0, 1)
    hu = plane.hu
    value = ((1 - fr) * ((1 - fc) * hu[r0, c0] + fc * hu[r0, c0 + 1])
             + fr * ((1 - fc) * hu[r0 + 1, c0] + fc * hu[r0 + 1, c0 + 1]))
    return np.where(outside, np.nan, value)
