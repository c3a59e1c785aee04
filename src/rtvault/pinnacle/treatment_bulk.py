"""The bulk data of a treatment, read when asked: CT voxels (`ImageSet_N.img`, 16-bit in the header's byte order)
and beam doses (`plan.Trial.binary.NNN`, big-endian float32 in cGy per MU, x fastest, one per beam)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from rtvault.errors import PartialResult

if TYPE_CHECKING:
    from rtvault.pinnacle.treatment_source import PatientFiles
    from rtvault.pinnacle.treatment_types import Beam, DoseGrid, ImageSet, Trial


def load_voxels(source: PatientFiles, image: ImageSet) -> np.ndarray | None:
    """The `.img` as int16 (z, y, x) in the header's byte order; None when the model found no usable `.img`
    (a problem already says why); PartialResult when the file can no longer be read."""
    if image.voxel_file is None or image.dims is None:
        return None
    dtype = np.dtype(">i2" if image.byte_order == 1 else "<i2")
    return _array(source, image.voxel_file, image.dims, dtype, "the image set's voxels are left out")


def load_beam_dose(source: PatientFiles, trial: Trial, beam: Beam) -> np.ndarray | None:
    """A beam's dose (cGy/MU, float32 native order, shape (z, y, x)); None when the model found no usable file
    (a problem already says why); PartialResult when the file can no longer be read."""
    if beam.dose_file is None or trial.dose_grid is None:
        return None
    dose = _array(source, beam.dose_file, trial.dose_grid.dims, np.dtype(">f4"), f"beam {beam.name!r} has no dose")
    return dose.astype(np.float32)


def _array(source: PatientFiles, name: str, dims: tuple[int, int, int], dtype: np.dtype, lost: str) -> np.ndarray:
    """File `name` as a (z, y, x) array of `dims` (x, y, z); PartialResult, ending with `lost`, when it cannot be
    read or its size is not the grid's."""
    nx, ny, nz = dims
    try:
        data = source.read(name)
    except OSError as error:
        raise PartialResult(f"{name}: cannot be read ({error.strerror or error}): {lost}; check the source and run "
                            "again.") from error
    if len(data) != nx * ny * nz * dtype.itemsize:
        raise PartialResult(f"{name}: {len(data)} bytes where the grid needs {nx * ny * nz * dtype.itemsize}: "
                            f"{lost}.")
    return np.frombuffer(data, dtype=dtype).reshape(nz, ny, nx)


def fractions_of(trial: Trial, beam: Beam) -> int | None:
    prescription = next((p for p in trial.prescriptions if p.name == beam.prescription_name), None)
    return prescription.fractions if prescription is not None else None


def trial_dose_gy(source: PatientFiles, trial: Trial) -> np.ndarray | None:
    """Σ over beams of dose (cGy/MU) × MU × fractions / 100: the trial's total dose in Gy (float32, (z, y, x));
    beams without their file, MU or fractions are left out (the model's problems name them); None when none is
    left."""
    total: np.ndarray | None = None
    for beam in trial.beams:
        fractions = fractions_of(trial, beam)
        if beam.monitor_units is None or not fractions:
            continue
        dose = load_beam_dose(source, trial, beam)
        if dose is None:
            continue
        scaled = dose * np.float32(beam.monitor_units * fractions / 100.0)
        total = scaled if total is None else total + scaled
    return total


def dose_at_point(grid: DoseGrid, dose: np.ndarray, point_cm: Sequence[float]) -> float | None:
    """The dose of a (z, y, x) array on `grid` at a Pinnacle point (cm), trilinearly interpolated; None outside
    the grid. Row j of the grid lies at y = origin_y + (rows-1-j)·voxel_y."""
    (ox, oy, oz), (vx, vy, vz), (nx, ny, nz) = grid.origin_cm, grid.voxel_size_cm, grid.dims
    where = ((point_cm[2] - oz) / vz, (ny - 1) - (point_cm[1] - oy) / vy, (point_cm[0] - ox) / vx)  # z, y, x
    axes = []
    for f, n in zip(where, (nz, ny, nx), strict=True):
        if not -1e-6 <= f <= n - 1 + 1e-6:
            return None
        low = min(max(int(np.floor(f)), 0), max(n - 2, 0))
        t = min(max(f - low, 0.0), 1.0) if n > 1 else 0.0
        axes.append(((low, 1.0 - t), (min(low + 1, n - 1), t)))
    total = 0.0
    for (z, wz), (y, wy), (x, wx) in itertools.product(*axes):
        total += wz * wy * wx * float(dose[z, y, x])
    return total
