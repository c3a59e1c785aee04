"""Binary volumes: CT voxels (`ImageSet_N.img`) and beam doses (`plan.Trial.binary.NNN`).

CT voxels are unsigned 16-bit CT numbers offset by 1000 (air about 0, water 1000, bone 1400-1800) in the
byte order the header announces. They compress like real scans: air with a little noise, a circular
reconstruction field padded with exact zeros, an elliptical body of noisy soft tissue, fat, lungs and bone, on a
couch; the skin is where `plan.roi`'s EXTERNAL ROI says (demo/geometry.py). Doses are big-endian float32 beam
doses (cGy per MU): smooth, zero outside the body, so they compress too, and they give each prescription point
its prescribed dose.
"""

from __future__ import annotations

import math

import numpy as np

from rtvault.demo import geometry
from rtvault.demo.sites import Site
from rtvault.demo.spec import BeamSpec, ImageSetSpec, TrialSpec

MB = 1_000_000
_SIDES = (512, 256, 128, 64, 32, 16)
_MIN_SLICES = 16
_CHUNK_SLICES = 16
_AIR, _FAT = 8.0, 935.0  # CT numbers (+1000) of air and of the subcutaneous fat under the skin


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


def _inside_fraction(x: np.ndarray, y: np.ndarray, outline: tuple[float, float, float], voxel: float) -> np.ndarray:
    """How much of each voxel the body fills: 1 inside, 0 outside, a linear ramp two voxels wide across the skin
    (the partial volume and blur a scanner sees), so that the skin is where the CT number is halfway between air and
    fat, and interpolating linearly between two neighbouring voxels finds it whatever the voxel size."""
    centre_y, rx, ry = outline
    radial = np.sqrt(x**2 + (y - centre_y) ** 2)
    level = np.sqrt(_ellipse(x, y, (0.0, centre_y), (rx, ry)))
    outside_by = radial - np.divide(radial, level, out=np.zeros_like(radial), where=level > 0)
    return np.clip(0.5 - outside_by / (2 * voxel), 0.0, 1.0)


def _axial_template(
    site: Site, x: np.ndarray, y: np.ndarray, outline: tuple[float, float, float], z_fraction: float, position: str,
    voxel: float,
) -> np.ndarray:
    """One noiseless axial slice of the phantom: the body's `outline` (centre y, half axes) in the room, its organs
    where the patient `position` puts them, the couch under it."""
    centre_y, rx, ry = outline
    sx, sy = geometry.flips(position)
    ax, ay = x * sx, (y - centre_y) * sy  # the anatomy's own axes
    body = _ellipse(ax, ay, (0.0, 0.0), (rx, ry))
    filled = _inside_fraction(x, y, outline, voxel)
    out = (_AIR + (_FAT - _AIR) * filled).astype(np.float32)
    out[body <= 0.8] = 1045.0  # soft tissue under the subcutaneous fat
    if site.key == "cerveau":
        out[(body > 0.72) & (body <= 0.84)] = 1800.0  # skull, under the skin's partial volume
    if site.lungs and 0.12 < z_fraction < 0.88:
        for side in (-1.0, 1.0):
            lung = _ellipse(ax, ay, (side * 0.4 * rx, 0.08 * ry), (0.3 * rx, 0.55 * ry))
            out[lung <= 1.0] = 240.0
    if not site.lungs and not site.head:
        for side in (-1.0, 1.0):
            out[_ellipse(ax, ay, (side * 0.55 * rx, -0.05 * ry), (2.2, 2.2)) <= 1.0] = 1500.0  # femoral heads
    spine = (0.0, -0.55 * site.body_radii[1] - centre_y * sy)  # where the MOELLE ROI is
    out[_ellipse(ax, ay, spine, (1.5, 1.4)) <= 1.0] = 1450.0
    out[_ellipse(ax, ay, spine, (0.6, 0.6)) <= 1.0] = 1030.0  # spinal canal
    top = geometry.couch_top(site)
    couch_rows = ((y < top) & (y > top - 1.8))[:, 0]
    out[couch_rows, :] = 120.0
    skins = couch_rows & (((y > top - 0.3) | (y < top - 1.5))[:, 0])
    out[skins, :] = 1250.0  # carbon fibre skins of the couch
    return out


def ct_volume(rng: np.random.Generator, site: Site, image: ImageSetSpec) -> bytes:
    """The bytes of `ImageSet_N.img`: z slices of y rows (the first row anterior: the largest y) of x voxels,
    voxel (i, j) centred at x = x_start + i·px, y = y_start + (ny − 1 − j)·py (`geometry.first_centre`: the image's
    middle on the scanner's axis); built a few slices at a time so that memory stays near the size of the file."""
    (nx, ny, nz), pixdim = image.dims, image.pixdim
    x = ((np.arange(nx, dtype=np.float32) - (nx - 1) / 2) * pixdim[0])[None, :]
    y = ((ny - 1) / 2 - np.arange(ny, dtype=np.float32))[:, None] * pixdim[1]
    groups = geometry.template_groups(nz)
    templates = []
    for group in range(groups):
        outline = geometry.body_outline(site, image, group)
        templates.append(_axial_template(site, x, y, outline, (group + 0.5) / groups, image.position, pixdim[0]))
    stacked = np.stack(templates)
    sigma = np.where(stacked > 100.0, np.float32(14.0), np.float32(7.0))
    outside = (x**2 + y**2) > (nx * pixdim[0] / 2) ** 2
    index = np.array([geometry.slice_group(k, nz) for k in range(nz)])
    dtype = "<u2" if image.byte_order == 0 else ">u2"
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


def dose_dims(
    image_mb: float, body_radii: tuple[float, float], length_cm: float
) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    """Dose grid dimensions and voxel sizes (cm) covering the body wherever the isocentre lies, about image_mb/16
    MB per beam; the Z voxel is a quarter larger than X and Y, as a grid that follows the slices can be."""
    voxels = max(64.0, image_mb * MB / 16 / 4)
    width, height = 2 * body_radii[0] + 10.0, 2 * body_radii[1] + 10.0
    voxel = max(0.1, round((width * height * length_cm / 1.25 / voxels) ** (1 / 3), 2))
    voxel_z = round(voxel * 1.25, 2)
    dims = (max(3, math.ceil(width / voxel)), max(3, math.ceil(height / voxel)), max(3, math.ceil(length_cm / voxel_z)))
    return dims, (voxel, voxel, voxel_z)


def grid_axes(trial: TrialSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The x, y, z (cm, recent frame) of the dose grid's voxel centres, shaped to broadcast as (z, y, x)."""
    nx, ny, nz = trial.dose_dims
    (ox, oy, oz), (vx, vy, vz) = trial.dose_origin, trial.dose_voxel
    x = (ox + np.arange(nx, dtype=np.float64) * vx)[None, None, :]
    y = (oy + np.arange(ny, dtype=np.float64) * vy)[None, :, None]
    z = (oz + np.arange(nz, dtype=np.float64) * vz)[:, None, None]
    return x, y, z


# A wedge's direction in the beam's eye view (across the field, along z): the dose falls off along it.
_WEDGE_DIRECTIONS = {"WedgeTopToBottom": (0, -1), "WedgeLeftToRight": (1, 0), "WedgeBottomToTop": (0, 1),
                     "WedgeRightToLeft": (-1, 0)}


def _beam_shape(trial: TrialSpec, body_radii: tuple[float, float], gantry: float, beam: BeamSpec) -> np.ndarray:
    """A static field's relative dose on the grid: depth attenuation and build-up from the skin, penumbra, a wedge's
    gradient, zero outside the body; the beam's axis passes through the isocentre (the prescription point)."""
    x, y, z = grid_axes(trial)
    iso = trial.prescription_point
    half_field = (beam.jaws[0] + beam.jaws[1]) / 2
    angle = math.radians(gantry)
    ux, uy = math.sin(angle), -math.cos(angle)
    dx, dy, dz = x - iso[0], y - iso[1], z - iso[2]
    depth = np.clip(dx * ux + dy * uy + body_radii[1], 0.0, None)
    across = -dx * uy + dy * ux
    lateral = np.abs(across)
    dose = np.exp(-0.045 * depth) * (1.0 - np.exp(-depth / 1.2))
    dose = dose / (1.0 + np.exp((lateral - half_field) / 0.35)) / (1.0 + np.exp((np.abs(dz) - half_field) / 0.35))
    if beam.wedge:
        bx, by = _WEDGE_DIRECTIONS.get(beam.wedge_orientation, (0, 0))
        dose = dose * np.exp(-0.0003 * beam.wedge_degrees * (bx * across + by * dz))
    inside = _ellipse(x, y, (0.0, 0.0), body_radii) <= 1.0
    return np.where(inside & (dose > dose.max() * 1e-3), dose, 0.0)


def beam_dose(trial: TrialSpec, beam: BeamSpec, body_radii: tuple[float, float]) -> bytes:
    """A beam's dose file (`plan.Trial.binary.NNN`): big-endian float32 cGy per MU, x fastest, rows from the
    highest y down (as Pinnacle writes them). An arc is its static fields every 10° or less, averaged; a wedge
    tilts the field along its direction (the dose model's approximations, docs/design.md). At the prescription
    point, a node of the grid, it is the beam's share (by weight) of the point dose, per MU: summed over the
    beams, dose x MU x fractions / 100 is the prescription in Gy divided by its percent."""
    shape = sum(_beam_shape(trial, body_radii, gantry, beam) for gantry in beam.arc_angles) / len(beam.arc_angles)
    node = tuple(round((p - o) / v) for p, o, v in zip(trial.prescription_point, trial.dose_origin,
                                                         trial.dose_voxel, strict=True))  # fmt: skip
    at_point = float(shape[node[2], node[1], node[0]])
    share = beam.weight / sum(b.weight for b in trial.beams)
    wanted = trial.point_dose_cgy * share / beam.monitor_units  # cGy per MU at the point
    # Row 0 of a Pinnacle dose file is the grid's highest y (checked on a real plan): the rows written downwards.
    return np.ascontiguousarray((shape * (wanted / at_point))[:, ::-1, :], dtype=">f4").tobytes()
