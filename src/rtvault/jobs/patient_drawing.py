"""One plane of a patient's CT drawn as a picture (axial, coronal or sagittal), windowed, with its ROI contours in
their colours and the dose as a colour wash or isodose lines, as a PNG (numpy and Pillow; no GUI), from a `Scene`
of `jobs/patient_view.py`. The web viewer (`web/viewer.py`) shows these images and keeps them; the patient access
bundle (`jobs/bundle.py`) prints them in its summary.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from rtvault.jobs.patient_view import Scene
from rtvault.pinnacle.colours import rgb
from rtvault.pinnacle.treatment_grid import curve_frame, resample, to_pixels

# window presets: (width, level) in HU
WINDOWS: dict[str, tuple[int, int]] = {"soft": (400, 40), "lung": (1500, -600), "bone": (1800, 400)}
DOSE_MODES = ("wash", "lines", "none")
# isodose levels (% of the prescription's dose at its point) and their colours
ISODOSES: tuple[tuple[int, str], ...] = ((107, "#ff00c8"), (100, "#ff0000"), (95, "#ff8000"), (90, "#ffd700"),
                                         (80, "#00e000"), (70, "#00d0ff"), (50, "#3070ff"), (30, "#8000ff"))
SIZE = 512  # pixels on an image's longest side
WASH_ALPHA = 0.4
AXES = {"axial": 0, "coronal": 1, "sagittal": 2}


@dataclass(frozen=True)
class Drawing:
    """What one image shows: a plane, its slice (1-based, in the page's order), a window and a dose mode."""

    plane: str
    slice: int
    window: str
    dose: str


def _rgb_of(hex_colour: str) -> tuple[int, int, int]:
    return int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16)


def _positions(native: np.ndarray, pixels: int) -> np.ndarray:
    """The positions (cm) of `pixels` display pixels' centres spread over the `native` voxel positions."""
    fraction = (np.arange(pixels) + 0.5) * len(native) / pixels - 0.5
    return np.interp(fraction, np.arange(len(native)), native)


def _plane(scene: Scene, drawing: Drawing) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """The plane's HU (rows top to bottom), the positions of its rows and columns (cm), the fixed position (as a
    one-element array), and the index of the voxel plane in the volume's own axis."""
    grid, hu, order = scene.grid, scene.hu, scene.order
    n = drawing.slice - 1
    if drawing.plane == "axial":
        k = int(order[n])
        return hu[k], grid.ys, grid.xs, grid.zs[k:k + 1], k
    if drawing.plane == "coronal":
        return hu[order, n, :], grid.zs[order], grid.xs, grid.ys[n:n + 1], n
    return hu[order, :, n], grid.zs[order], grid.ys, grid.xs[n:n + 1], n


def _size(rows: np.ndarray, columns: np.ndarray, spacing: tuple[float, float]) -> tuple[int, int]:
    height, width = len(rows) * spacing[0], len(columns) * spacing[1]
    scale = SIZE / max(height, width)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _edges(mask: np.ndarray) -> np.ndarray:
    """The pixels of a mask with a neighbour outside it (its outline, one pixel wide)."""
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return mask & ~inner


def _spacing(scene: Scene, plane: str) -> tuple[float, float]:
    dx, dy, dz = scene.grid.spacing_cm
    return {"axial": (dy, dx), "coronal": (dz, dx), "sagittal": (dz, dy)}[plane]


def render(scene: Scene, drawing: Drawing) -> bytes:
    """The PNG of one plane of a scene (which has a CT: the caller checked), contours and dose drawn over it."""
    ct, rows, columns, fixed, index = _plane(scene, drawing)
    width, height = _size(rows, columns, _spacing(scene, drawing.plane))
    window, level = WINDOWS[drawing.window]
    grey = np.clip((ct.astype(np.float32) - (level - window / 2)) * (255.0 / window), 0, 255).astype(np.uint8)
    picture = np.asarray(Image.fromarray(grey, "L").resize((width, height), Image.Resampling.BILINEAR)
                         .convert("RGB"), dtype=np.float32)
    if drawing.dose != "none" and scene.dose_gy is not None:
        _draw_dose(scene, drawing, picture, _positions(rows, height), _positions(columns, width), fixed)
    picture = np.clip(picture, 0, 255).astype(np.uint8)
    _draw_mask_outlines(scene, drawing, picture, index)
    image = Image.fromarray(picture, "RGB")
    if drawing.plane == "axial":
        _draw_curves(scene, image, index)
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


def _dose_plane(scene: Scene, plane: str, rows: np.ndarray, columns: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    dose, grid = scene.dose_gy, scene.trial.dose_grid
    if plane == "axial":
        return resample(dose, grid, columns, rows, fixed)[0]
    if plane == "coronal":
        return resample(dose, grid, columns, fixed, rows)[:, 0, :]
    return resample(dose, grid, fixed, columns, rows)[:, :, 0]


def isodose_levels(scene: Scene) -> list[tuple[int, str, float]]:
    """Each isodose: its percentage, colour and dose in Gy (of the prescription, else of the maximum dose)."""
    reference = scene.reference_gy
    if reference is None and scene.dose_gy is not None:
        reference = float(scene.dose_gy.max())
    return [(percent, colour, percent * (reference or 0.0) / 100) for percent, colour in ISODOSES]


def _draw_dose(scene: Scene, drawing: Drawing, picture: np.ndarray, rows: np.ndarray, columns: np.ndarray,
               fixed: np.ndarray) -> None:
    dose = _dose_plane(scene, drawing.plane, rows, columns, fixed)
    levels = sorted(isodose_levels(scene), key=lambda level: level[2])
    if drawing.dose == "wash":
        colour = np.zeros_like(picture)
        covered = np.zeros(dose.shape, dtype=bool)
        for _percent, hex_colour, gy in levels:
            above = dose >= gy
            colour[above] = _rgb_of(hex_colour)
            covered |= above
        picture[covered] = picture[covered] * (1 - WASH_ALPHA) + colour[covered] * WASH_ALPHA
        return
    for _percent, hex_colour, gy in levels:
        picture[_edges(dose >= gy)] = _rgb_of(hex_colour)


def _draw_mask_outlines(scene: Scene, drawing: Drawing, picture: np.ndarray, index: int) -> None:
    """Coronal and sagittal planes: each ROI's outline where its voxels cross the plane."""
    if drawing.plane == "axial":
        return
    axis, height, width = AXES[drawing.plane], picture.shape[0], picture.shape[1]
    shape = scene.hu.shape
    for roi in scene.rois:
        mask = scene.masks.get(roi.number)
        across = None if mask is None else mask.plane(axis, index, shape)
        if across is None or not across.any():
            continue
        across = across[scene.order]
        big = np.asarray(Image.fromarray(across).resize((width, height), Image.Resampling.NEAREST), dtype=bool)
        picture[_edges(big)] = rgb(roi.color)


def _draw_curves(scene: Scene, image: Image.Image, frame: int) -> None:
    """The axial plane: each ROI's polygons of this slice, as drawn in Pinnacle."""
    grid, draw = scene.grid, ImageDraw.Draw(image)
    sx, sy = image.width / len(grid.xs), image.height / len(grid.ys)
    for roi in scene.rois:
        for curve in roi.curves:
            points = np.asarray(curve.points_cm, dtype=np.float64)
            if len(points) < 2 or curve_frame(grid, float(np.median(points[:, 2]))) != frame:
                continue
            pixels = [((c + 0.5) * sx, (r + 0.5) * sy) for c, r in to_pixels(grid, points)]
            draw.line([*pixels, pixels[0]], fill=rgb(roi.color), width=2)
