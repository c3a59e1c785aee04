"""A cumulative dose-volume histogram computed from exported DICOM files alone (RTSTRUCT + RTDOSE read with
pydicom), as another system would, independently of rtvault's own DVH (`pinnacle/treatment_grid.py`): each ROI's
contours rasterised on their planes (even-odd point-in-polygon at sample points finer than the dose grid's
pixels, aligned with them), the dose linearly interpolated between the dose grid's frames to each contour plane
and bilinearly in the plane, each plane a slab as thick as the spacing between the ROI's contour planes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom


@dataclass(frozen=True)
class DoseVolume:
    """An RT Dose's grid in Gy, (frames, rows, columns), with where its voxel centres lie (DICOM mm): axial
    grids only, rows and columns along ±x and ±y (every patient position)."""

    gy: np.ndarray
    xs: np.ndarray  # column centres
    ys: np.ndarray  # row centres
    zs: np.ndarray  # frame centres, increasing

    @classmethod
    def read(cls, path: Path) -> DoseVolume:
        ds = pydicom.dcmread(path)
        row, col = (np.array([round(float(v), 6) for v in ds.ImageOrientationPatient[k:k + 3]]) for k in (0, 3))
        if abs(row[0]) != 1.0 or abs(col[1]) != 1.0:
            raise ValueError(f"{path}: RT Dose orientation {row}, {col} is not axial: not handled here")
        normal = np.cross(row, col)
        origin = [float(v) for v in ds.ImagePositionPatient]
        row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
        gy = ds.pixel_array.astype(np.float64) * float(ds.DoseGridScaling)
        if gy.ndim == 2:
            gy = gy[np.newaxis]
        zs = origin[2] + np.array([float(v) for v in ds.GridFrameOffsetVector]) * normal[2]
        order = np.argsort(zs)
        return cls(gy[order], origin[0] + np.arange(gy.shape[2]) * col_spacing * row[0],
                   origin[1] + np.arange(gy.shape[1]) * row_spacing * col[1], zs[order])

    def plane_at(self, z: float) -> np.ndarray | None:
        """The dose on the plane z (mm), linear between the two nearest frames; None outside the grid."""
        if len(self.zs) == 1:
            return self.gy[0] if abs(z - self.zs[0]) < 1e-3 else None
        if not self.zs[0] - 1e-3 <= z <= self.zs[-1] + 1e-3:
            return None
        k = int(np.clip(np.searchsorted(self.zs, z) - 1, 0, len(self.zs) - 2))
        t = float(np.clip((z - self.zs[k]) / (self.zs[k + 1] - self.zs[k]), 0.0, 1.0))
        return (1 - t) * self.gy[k] + t * self.gy[k + 1]

    def bilinear(self, plane: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The plane's dose at points (x, y) mm; 0 outside the grid."""
        c = (x - self.xs[0]) / (self.xs[1] - self.xs[0])
        r = (y - self.ys[0]) / (self.ys[1] - self.ys[0])
        rows, columns = plane.shape
        outside = (c < -1e-6) | (c > columns - 1 + 1e-6) | (r < -1e-6) | (r > rows - 1 + 1e-6)
        c0 = np.clip(np.floor(c).astype(int), 0, columns - 2)
        r0 = np.clip(np.floor(r).astype(int), 0, rows - 2)
        fc, fr = np.clip(c - c0, 0, 1), np.clip(r - r0, 0, 1)
        value = ((1 - fr) * ((1 - fc) * plane[r0, c0] + fc * plane[r0, c0 + 1])
                 + fr * ((1 - fc) * plane[r0 + 1, c0] + fc * plane[r0 + 1, c0 + 1]))
        return np.where(outside, 0.0, value)


def roi_contours(rtstruct: Path, roi_name: str) -> list[np.ndarray]:
    """The closed planar contours (N×3 mm) of the ROI named in an RTSTRUCT."""
    ds = pydicom.dcmread(rtstruct)
    number = next(int(r.ROINumber) for r in ds.StructureSetROISequence if r.ROIName == roi_name)
    item = next(c for c in ds.ROIContourSequence if int(c.ReferencedROINumber) == number)
    return [np.asarray([float(v) for v in c.ContourData]).reshape(-1, 3) for c in item.get("ContourSequence", [])
            if str(c.ContourGeometricType) == "CLOSED_PLANAR"]


def inside_polygon(x: np.ndarray, y: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd ray casting: whether each point (x, y) lies inside the polygon (M×2, implicitly closed)."""
    inside = np.zeros(x.shape, dtype=bool)
    px, py = polygon[:, 0], polygon[:, 1]
    qx, qy = np.roll(px, 1), np.roll(py, 1)
    for ax, ay, bx, by in zip(px, py, qx, qy, strict=True):
        if ay == by:
            continue
        spans = (ay > y) != (by > y)
        crossing = ax + (y - ay) * (bx - ax) / (by - ay)
        inside ^= spans & (x < crossing)
    return inside


@dataclass(frozen=True)
class DicomDvh:
    """The doses (Gy) of an ROI's sample points and the volume (cc) each stands for."""

    doses: np.ndarray
    cc_each: np.ndarray

    @property
    def volume_cc(self) -> float:
        return float(self.cc_each.sum())

    @property
    def max_gy(self) -> float:
        return float(self.doses.max())

    def percent_at_least(self, levels_gy: np.ndarray) -> np.ndarray:
        """Cumulative DVH: the percent of the ROI's volume receiving at least each dose level."""
        order = np.argsort(self.doses)
        doses, weights = self.doses[order], self.cc_each[order]
        above = np.concatenate((np.cumsum(weights[::-1])[::-1], [0.0]))
        return above[np.searchsorted(doses, levels_gy, side="left")] * 100.0 / self.volume_cc

    def d_percent(self, percent: float) -> float:
        """The dose `percent` of the volume receives at least (D95 for 95)."""
        order = np.argsort(self.doses)[::-1]
        covered = np.cumsum(self.cc_each[order]) * 100.0 / self.volume_cc
        return float(self.doses[order][min(int(np.searchsorted(covered, percent)), len(order) - 1)])


def dicom_dvh(contours: list[np.ndarray], dose: DoseVolume, subdivisions: int = 4) -> DicomDvh:
    """The ROI's DVH: each contour plane sampled at `subdivisions`² points per dose-grid pixel (aligned with the
    dose grid, so the sampling is the dose grid's, finer), the points inside the plane's contours (even-odd:
    a contour inside another is a hole) given the plane's interpolated dose; a plane outside the dose grid
    receives 0 Gy. Each plane is a slab as thick as the median spacing of the ROI's planes."""
    by_plane: dict[float, list[np.ndarray]] = {}
    for contour in contours:
        by_plane.setdefault(round(float(np.median(contour[:, 2])), 2), []).append(contour)
    planes = sorted(by_plane)
    thickness = float(np.median(np.diff(planes))) if len(planes) > 1 else 1.0
    dx = (dose.xs[1] - dose.xs[0]) / subdivisions
    dy = (dose.ys[1] - dose.ys[0]) / subdivisions
    doses, weights = [], []
    for z in planes:
        polygons = by_plane[z]
        points = np.concatenate(polygons)
        # sample columns/rows aligned with the dose grid, covering the contours' bounding box
        x, y = np.meshgrid(_samples(points[:, 0], dose.xs[0], dx), _samples(points[:, 1], dose.ys[0], dy))
        inside = np.zeros(x.shape, dtype=bool)
        for polygon in polygons:
            inside ^= inside_polygon(x, y, polygon[:, :2])
        plane = dose.plane_at(z)
        values = np.zeros(int(inside.sum())) if plane is None else dose.bilinear(plane, x[inside], y[inside])
        doses.append(values)
        weights.append(np.full(values.shape, abs(dx * dy) * thickness / 1000.0))
    return DicomDvh(np.concatenate(doses), np.concatenate(weights))


def _samples(values: np.ndarray, start: float, step: float) -> np.ndarray:
    """Positions start + n·step covering the values' span with one step to spare each side."""
    ends = (values.min() - start) / step, (values.max() - start) / step
    return start + np.arange(np.floor(min(ends)) - 1, np.ceil(max(ends)) + 2) * step
