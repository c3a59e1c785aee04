"""Binary volumes: CT voxels (`ImageSet_N.img`) and beam doses (`plan.Trial.binary.NNN`).

CT voxels are unsigned 16-bit CT numbers offset by 1000 (air about 0, water 1000, bone 1400-1800) in the
byte order the header announces. They compress like real scans: air with a little noise, a circular
reconstruction field padded with exact zeros, an elliptical body of noisy soft tissue, fat, lungs and bone.
Doses are big-endian float32 beam doses (cGy): smooth, zero outside the body, so they compress too.
"""

from __future__ import annotations

import math

import numpy as np

from rtvault.demo.sites import Site

MB = 1_000_000
_SIDES = (512, 256, 128, 64, 32, 16)
_MIN_SLICES = 16
_TEMPLATE_GROUPS = 12
_CHUNK_SLICES = 16


def image_dims(image_mb: float, jitter: float) -> tuple[int, int, int]:
    """x, y, z voxel counts of a CT of about `image_mb` MB (1 MB = 10^6 bytes); `jitter` in [-1, 1]
    varies the slice count by up to 8%."""
    voxels = image_mb * MB / 2
    side = next((s for s in _SIDES if voxels / (s * s) >= _MIN_SLICES), _SIDES[-1])
    slices = max(1, round(voxels / (side * side) * (1 + 0.08 * jitter)))
    return side, side, slices


def field_of_view_cm(site: Site) -> float:
    return 30.0 if site.head else 50.0


def _ellipse(x: np.ndarray, y: np.ndarray, center: tuple[float, float], radii: tuple[float, float]) -> np.ndarray:
    return ((x - center[0]) / radii[0]) ** 2 + ((y - center[1]) / radii[1]) ** 2


def _axial_template(site: Site, x: np.ndarray, y: np.ndarray, scale: float, z_fraction: float) -> np.ndarray:
    """One noiseless axial slice of the phantom at a given body scale and position along the scan."""
    rx, ry = site.body_radii[0] * scale, site.body_radii[1] * scale
    body = _ellipse(x, y, (0.0, 0.0), (rx, ry))
    out = np.full(body.shape, 8.0, dtype=np.float32)
    out[body <= 1.0] = 1045.0
    out[(body > 0.8) & (body <= 1.0)] = 935.0  # subcutaneous fat
    if site.key == "cerveau":
        out[(body > 0.78) & (body <= 0.9)] = 1800.0  # skull
    if site.lungs and 0.12 < z_fraction < 0.88:
        for side in (-1.0, 1.0):
            lung = _ellipse(x, y, (side * 0.4 * rx, 0.08 * ry), (0.3 * rx, 0.55 * ry))
            out[lung <= 1.0] = 240.0
    if not site.lungs and not site.head:
        for side in (-1.0, 1.0):
            out[_ellipse(x, y, (side * 0.55 * rx, -0.05 * ry), (2.2, 2.2)) <= 1.0] = 1500.0  # femoral heads
    spine_y = -0.62 * ry
    out[_ellipse(x, y, (0.0, spine_y), (1.5, 1.4)) <= 1.0] = 1450.0
    out[_ellipse(x, y, (0.0, spine_y), (0.55, 0.55)) <= 1.0] = 1030.0  # spinal canal
    couch_rows = ((y < -ry - 0.6) & (y > -ry - 2.4))[:, 0]
    out[couch_rows, :] = 120.0
    skins = couch_rows & (((y > -ry - 0.9) | (y < -ry - 2.1))[:, 0])
    out[skins, :] = 1250.0  # carbon fibre skins of the couch
    return out


def ct_volume(
    rng: np.random.Generator,
    site: Site,
    dims: tuple[int, int, int],
    pixdim: tuple[float, float, float],
    byte_order: int,
) -> bytes:
    """The bytes of `ImageSet_N.img`: z slices of y rows of x voxels, built a few slices at a time so that
    memory stays near the size of the file."""
    nx, ny, nz = dims
    x = ((np.arange(nx, dtype=np.float32) - (nx - 1) / 2) * pixdim[0])[None, :]
    y = ((ny - 1) / 2 - np.arange(ny, dtype=np.float32))[:, None] * pixdim[1]
    phase = float(rng.uniform(0, 2 * math.pi))
    groups = min(_TEMPLATE_GROUPS, nz)
    templates = []
    for group in range(groups):
        fraction = (group + 0.5) / groups
        scale = 1.0 + 0.06 * math.sin(2 * math.pi * 1.3 * fraction + phase)
        templates.append(_axial_template(site, x, y, scale, fraction))
    stacked = np.stack(templates)
    sigma = np.where(stacked > 100.0, np.float32(14.0), np.float32(7.0))
    outside = (x**2 + y**2) > (nx * pixdim[0] / 2) ** 2
    index = (np.arange(nz) * groups) // nz
    dtype = "<u2" if byte_order == 0 else ">u2"
    out = np.empty((nz, ny, nx), dtype=dtype)
    for first in range(0, nz, _CHUNK_SLICES):
        chunk = index[first : first + _CHUNK_SLICES]
        slab = rng.standard_normal((len(chunk), ny, nx), dtype=np.float32)
        slab *= sigma[chunk]
        slab += stacked[chunk]
        slab[:, outside] = 0.0
        np.clip(slab, 0.0, 4095.0, out=slab)
        out[first : first + len(chunk)] = slab
    return out.tobytes()


def dose_dims(image_mb: float, body_radii: tuple[float, float], length_cm: float) -> tuple[tuple[int, int, int], float]:
    """Dose grid dimensions and voxel size (cm) covering the body, about image_mb/16 MB per beam."""
    voxels = max(64.0, image_mb * MB / 16 / 4)
    width, height = 2 * body_radii[0] + 4.0, 2 * body_radii[1] + 4.0
    voxel = max(0.1, round((width * height * length_cm / voxels) ** (1 / 3), 2))
    dims = (max(2, math.ceil(width / voxel)), max(2, math.ceil(height / voxel)), max(2, math.ceil(length_cm / voxel)))
    return dims, voxel


def beam_dose(
    dims: tuple[int, int, int],
    voxel: float,
    body_radii: tuple[float, float],
    gantry: float,
    half_field: float,
    peak_cgy: float,
) -> bytes:
    """A beam's dose on the grid, centred on the isocentre: depth attenuation, build-up, penumbra, zero
    outside the body. Big-endian float32, like every `plan.Trial.binary.NNN` dose file."""
    nx, ny, nz = dims
    x = ((np.arange(nx, dtype=np.float32) - (nx - 1) / 2) * voxel)[None, None, :]
    y = ((np.arange(ny, dtype=np.float32) - (ny - 1) / 2) * voxel)[None, :, None]
    z = ((np.arange(nz, dtype=np.float32) - (nz - 1) / 2) * voxel)[:, None, None]
    angle = math.radians(gantry)
    ux, uy = math.sin(angle), -math.cos(angle)
    depth = x * ux + y * uy + body_radii[1]
    lateral = np.abs(-x * uy + y * ux)
    dose = np.exp(-0.045 * np.clip(depth, 0.0, None)) * (1.0 - np.exp(-np.clip(depth, 0.0, None) / 1.2))
    dose = dose * (1.0 / (1.0 + np.exp((lateral - half_field) / 0.35)))
    dose = dose * (1.0 / (1.0 + np.exp((np.abs(z) - half_field) / 0.35)))
    dose = dose * np.float32(peak_cgy / max(float(dose.max()), 1e-6))
    inside = _ellipse(x, y, (0.0, 0.0), body_radii) <= 1.0
    dose = np.where(inside & (dose > peak_cgy * 1e-3), dose, 0.0)
    return np.ascontiguousarray(dose, dtype=">f4").tobytes()
