"""A treatment on its image set's voxel grid: where each voxel lies (in the plan's Pinnacle frame, cm), the dose
interpolated at any voxel or plane, each ROI as a voxel mask, and its cumulative dose-volume histogram.

All positions are Pinnacle cm in the frame a plan's objects were drawn in (`CoordinateFrame.image_start`): the CT,
the contours and the dose grid share it, so nothing is converted to DICOM here (`coordinates.py` does that).
Pure numpy; nothing here reads a file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtvault.pinnacle.coordinates import image_voxel_cm
from rtvault.pinnacle.treatment_types import CoordinateFrame, DoseGrid, ImageSet, Roi

DVH_BINS = 200


@dataclass(frozen=True)
class ImageGrid:
    """The centres of an image set's voxels: column i at xs[i], row j at ys[j] (row 0 the highest y), frame k at
    zs[k] (its TablePosition), in cm."""

    xs: np.ndarray
    ys: np.ndarray
    zs: np.ndarray

    @classmethod
    def of(cls, image: ImageSet, frame: CoordinateFrame) -> ImageGrid:
        """ValueError when the header gives no geometry."""
        if image.dims is None or image.voxel_size_cm is None:
            raise ValueError(f"{image.name}: its header gives no geometry")
        nx, ny, nz = image.dims
        x0, y_top, _ = image_voxel_cm(image, frame, 0, 0, 0)
        px, py, _ = image.voxel_size_cm
        zs = np.array([image_voxel_cm(image, frame, 0, 0, k)[2] for k in range(nz)])
        return cls(x0 + np.arange(nx) * px, y_top - np.arange(ny) * py, zs)

    @property
    def spacing_cm(self) -> tuple[float, float, float]:
        """Column, row and slice spacing (cm, positive); a single slice is 1 cm thick."""
        dz = float(np.median(np.abs(np.diff(self.zs)))) if len(self.zs) > 1 else 1.0
        return abs(float(self.xs[1] - self.xs[0])) if len(self.xs) > 1 else 1.0, \
            abs(float(self.ys[1] - self.ys[0])) if len(self.ys) > 1 else 1.0, dz or 1.0

    @property
    def voxel_cc(self) -> float:
        dx, dy, dz = self.spacing_cm
        return dx * dy * dz


def _axis(positions: np.ndarray, start: float, step: float, count: int, flipped: bool = False
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each position: the lower and upper neighbours' indices on one axis of a grid, the upper's weight, and
    whether it lies on the grid at all."""
    fraction = (np.asarray(positions, dtype=np.float64) - start) / step
    if flipped:
        fraction = (count - 1) - fraction
    inside = (fraction >= -1e-6) & (fraction <= count - 1 + 1e-6)
    low = np.clip(np.floor(fraction), 0, max(count - 2, 0)).astype(np.intp)
    weight = np.clip(fraction - low, 0.0, 1.0) if count > 1 else np.zeros_like(fraction)
    return low, np.minimum(low + 1, count - 1), weight.astype(np.float32), inside


def resample(dose: np.ndarray, grid: DoseGrid, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray) -> np.ndarray:
    """A (z, y, x) dose on `grid` trilinearly interpolated at every (zs[k], ys[j], xs[i]): shape (len(zs),
    len(ys), len(xs)), 0 outside the grid. Separable: one axis at a time."""
    (ox, oy, oz), (vx, vy, vz), (nx, ny, nz) = grid.origin_cm, grid.voxel_size_cm, grid.dims
    out = dose
    for axis, (positions, start, step, count, flipped) in enumerate(
            ((zs, oz, vz, nz, False), (ys, oy, vy, ny, True), (xs, ox, vx, nx, False))):
        low, high, weight, inside = _axis(positions, start, step, count, flipped)
        shape = [1, 1, 1]
        shape[axis] = len(weight)
        w = (weight * inside).reshape(shape)
        out = out.take(low, axis=axis) * ((1 - weight) * inside).reshape(shape) + out.take(high, axis=axis) * w
    return out.astype(np.float32, copy=False)


@dataclass(frozen=True)
class Mask:
    """An ROI on the image grid: `inside[k, j, i]` for the voxels of frames k0.., rows j0.., columns i0.. ."""

    k0: int
    j0: int
    i0: int
    inside: np.ndarray  # bool (z, y, x), the ROI's bounding box

    def plane(self, axis: int, index: int, shape: tuple[int, int, int]) -> np.ndarray | None:
        """The mask across the whole plane `index` of `axis` (0 axial, 1 coronal, 2 sagittal); None when the ROI
        does not reach it."""
        start = (self.k0, self.j0, self.i0)[axis]
        if not start <= index < start + self.inside.shape[axis]:
            return None
        full = np.zeros([n for a, n in enumerate(shape) if a != axis], dtype=bool)
        part = self.inside.take(index - start, axis=axis)
        offsets = [o for a, o in enumerate((self.k0, self.j0, self.i0)) if a != axis]
        full[offsets[0]:offsets[0] + part.shape[0], offsets[1]:offsets[1] + part.shape[1]] = part
        return full


def curve_frame(grid: ImageGrid, z_cm: float) -> int | None:
    """The frame a curve at `z_cm` lies on: the nearest one within half a slice; None when none is."""
    k = int(np.argmin(np.abs(grid.zs - z_cm)))
    return k if abs(grid.zs[k] - z_cm) <= grid.spacing_cm[2] / 2 + 1e-3 else None


def to_pixels(grid: ImageGrid, points_cm: np.ndarray) -> np.ndarray:
    """(N×3, cm) points as fractional (column, row) of the grid (N×2)."""
    dx, dy, _ = grid.spacing_cm
    return np.column_stack(((points_cm[:, 0] - grid.xs[0]) / dx, (grid.ys[0] - points_cm[:, 1]) / dy))


def centres_inside(polygon: np.ndarray, width: int, height: int) -> np.ndarray:
    """The pixels of a height×width image whose centre (column c, row r at integer coordinates) lies inside the
    closed polygon (N×2 fractional (column, row)): a scanline fill, even-odd, half-open (a centre exactly on a left
    or upper edge is outside, on a right or lower one inside), so two curves sharing an edge never both own a pixel.
    A DICOM reader counting an RTSTRUCT's volume counts the same pixels."""
    x0, y0 = polygon[:, 0], polygon[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    low, high = np.minimum(y0, y1), np.maximum(y0, y1)
    toggles = np.zeros((height, width + 1), dtype=np.int32)
    for e in np.flatnonzero(high > low):  # horizontal edges cross no row
        rows = np.arange(max(0, int(np.ceil(low[e]))), min(height, int(np.ceil(high[e]))))
        if rows.size:
            xs = x0[e] + (rows - y0[e]) * (x1[e] - x0[e]) / (y1[e] - y0[e])
            np.add.at(toggles, (rows, np.clip(np.floor(xs).astype(np.int64) + 1, 0, width)), 1)
    return (np.cumsum(toggles, axis=1)[:, :width] % 2).astype(bool)


def roi_mask(roi: Roi, grid: ImageGrid) -> Mask | None:
    """The voxels inside the ROI's curves (several curves on one slice: even-odd, so a curve inside another is a
    hole; a slice between contoured ones as the nearest contoured one); None when no curve lies on the image."""
    by_frame: dict[int, list[np.ndarray]] = {}
    for curve in roi.curves:
        if len(curve.points_cm) < 3:
            continue
        points = np.asarray(curve.points_cm, dtype=np.float64)
        k = curve_frame(grid, float(np.median(points[:, 2])))
        if k is not None:
            by_frame.setdefault(k, []).append(to_pixels(grid, points))
    if not by_frame:
        return None
    nx, ny = len(grid.xs), len(grid.ys)
    everything = np.concatenate([p for polys in by_frame.values() for p in polys])
    i0, j0 = (max(0, int(np.floor(v)) - 1) for v in everything.min(axis=0))
    i1, j1 = (min(n, int(np.ceil(v)) + 2) for v, n in zip(everything.max(axis=0), (nx, ny), strict=True))
    if i1 <= i0 or j1 <= j0:
        return None
    k0, k1 = min(by_frame), max(by_frame) + 1
    inside = np.zeros((k1 - k0, j1 - j0, i1 - i0), dtype=bool)
    for k, polygons in by_frame.items():
        for polygon in polygons:
            inside[k - k0] ^= centres_inside(polygon - (i0, j0), i1 - i0, j1 - j0)
    # A slice between two contoured ones takes the nearest one's outline (an ROI is often drawn every 2nd or 3rd
    # slice): its volume is the contours' slabs, as a DICOM reader of the RTSTRUCT counts it.
    drawn = np.array(sorted(by_frame)) - k0
    for k in range(k1 - k0):
        if k + k0 not in by_frame:
            inside[k] = inside[drawn[np.argmin(np.abs(drawn - k))]]
    return Mask(k0, j0, i0, inside)


@dataclass(frozen=True)
class Dvh:
    """An ROI's cumulative dose-volume histogram: `percent[n]` of its volume receives at least `dose_gy[n]`."""

    volume_cc: float
    min_gy: float
    mean_gy: float
    max_gy: float
    d95_gy: float  # the dose 95 % of the volume receives at least
    dose_gy: tuple[float, ...]
    percent: tuple[float, ...]

    def to_json(self) -> dict[str, object]:
        return {"volume_cc": round(self.volume_cc, 3), "min_gy": round(self.min_gy, 3),
                "mean_gy": round(self.mean_gy, 3), "max_gy": round(self.max_gy, 3), "d95_gy": round(self.d95_gy, 3),
                "dose_gy": [round(d, 4) for d in self.dose_gy], "percent": [round(p, 3) for p in self.percent]}


def dvh(mask: Mask, grid: ImageGrid, dose: np.ndarray, dose_grid: DoseGrid, top_gy: float) -> Dvh | None:
    """The DVH of an ROI from the dose (Gy) interpolated at each of its voxels' centres, in DVH_BINS steps up
    to `top_gy`; None when the mask holds no voxel."""
    k, j, i = mask.inside.shape
    values = resample(dose, dose_grid, grid.xs[mask.i0:mask.i0 + i], grid.ys[mask.j0:mask.j0 + j],
                      grid.zs[mask.k0:mask.k0 + k])[mask.inside]
    if values.size == 0:
        return None
    edges = np.linspace(0.0, max(top_gy, float(values.max()), 1e-6), DVH_BINS + 1)
    counts = np.histogram(values, bins=edges)[0]
    at_least = np.concatenate((np.cumsum(counts[::-1])[::-1], [0])) * 100.0 / values.size
    return Dvh(values.size * grid.voxel_cc, float(values.min()), float(values.mean()), float(values.max()),
               float(np.percentile(values, 5)), tuple(float(e) for e in edges), tuple(float(p) for p in at_least))
