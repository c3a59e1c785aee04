"""Pinnacle patient coordinates (cm) to DICOM patient coordinates (mm), and the version-dependent image start.

Pinnacle's axes for a head-first supine patient: x towards the patient's left, y towards the anterior, z towards
the head; lengths in cm. DICOM's: x left, y posterior, z head; in mm. Per patient position, with p the Pinnacle
point plus the frame's offset:

    HFS: ( 10·x, -10·y, -10·z)     HFP: (-10·x,  10·y, -10·z)
    FFS: (-10·x, -10·y,  10·z)     FFP: ( 10·x,  10·y,  10·z)

(z is negated head first because Pinnacle's TablePosition grows towards the feet there: a slice's DICOM z is
-10 × TablePosition.) The offset comes from which header start the plan's objects were drawn against: Pinnacle 9
and later write `x_start_dicom`/`y_start_dicom` in the header and draw in that (the scanner's) frame; older
versions drew against `x_start`/`y_start`, which are shifted by the couch height and the image centre. The rule
is decided from the files in `decide_frame` (docs/design.md, "Pinnacle treatment model and coordinates").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rtvault.pinnacle.treatment_types import CoordinateFrame, DoseGrid, ImageSet, PatientPosition, Point3

POSITIONS = ("HFS", "HFP", "FFS", "FFP")
# The sign of each axis from Pinnacle to DICOM, per patient position; then × 10 (cm → mm).
AXIS_SIGNS: dict[str, tuple[int, int, int]] = {
    "HFS": (1, -1, -1),
    "HFP": (-1, 1, -1),
    "FFS": (-1, -1, 1),
    "FFP": (1, 1, 1),
}
FIRST_DICOM_VERSION = 9  # the first Pinnacle version whose headers carry x_start_dicom and draw in that frame
_VERSION_RE = re.compile(r"(\d+)(?:\.(\d+))?")


def to_dicom_mm(point_cm: Sequence[float], frame: CoordinateFrame) -> tuple[float, float, float]:
    """One Pinnacle point (cm) as DICOM patient coordinates (mm)."""
    sx, sy, sz = AXIS_SIGNS[frame.position]
    ox, oy, oz = frame.offset_cm
    x, y, z = point_cm
    return (sx * 10.0 * (x + ox), sy * 10.0 * (y + oy), sz * 10.0 * (z + oz))


def points_to_dicom_mm(points_cm: np.ndarray | Iterable[Sequence[float]], frame: CoordinateFrame) -> np.ndarray:
    """Many Pinnacle points (N×3, cm) as DICOM patient coordinates (N×3 float64, mm)."""
    array = np.asarray(points_cm, dtype=np.float64).reshape(-1, 3)
    signs = np.asarray(AXIS_SIGNS[frame.position], dtype=np.float64) * 10.0
    return (array + np.asarray(frame.offset_cm, dtype=np.float64)) * signs


def couch_iec(couch_deg: float) -> float:
    """Pinnacle's couch angle as IEC 61217 (DICOM PatientSupportAngle): Pinnacle turns the other way, so 10°
    is 350°; 0 stays 0."""
    return (360.0 - couch_deg) % 360.0


def major_version(text: str) -> int | None:
    """The major version in `Pinnacle v16.0`, `16.2`, `Launch Pad: 9.10`, `Pinnacle Treatment Planning System
    Version 7.4f`; None when there is none."""
    if not text:
        return None
    match = _VERSION_RE.search(text.strip())
    return int(match.group(1)) if match else None


def image_start(image: ImageSet, which: str) -> tuple[float, float] | None:
    """The image's first voxel (x, y) in cm in the frame named: "dicom" (x_start_dicom) or "pinnacle" (x_start)."""
    if which == "dicom":
        return image.start_dicom_cm
    return None if image.start_cm is None else (image.start_cm[0], image.start_cm[1])


def image_extent(image: ImageSet, which: str) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """(x min, x max), (y min, y max) in cm of the image's voxel centres in the frame named."""
    start = image_start(image, which)
    if start is None or image.dims is None or image.voxel_size_cm is None:
        return None
    (nx, ny, _), (px, py, _) = image.dims, image.voxel_size_cm
    return (start[0], start[0] + (nx - 1) * px), (start[1], start[1] + (ny - 1) * py)


def inside_fraction(points: np.ndarray, extent: tuple[tuple[float, float], tuple[float, float]]) -> float:
    """The fraction of (N×3, cm) points whose x and y lie within an image extent (with a 1 cm margin)."""
    if len(points) == 0:
        return 0.0
    (x0, x1), (y0, y1) = extent
    x, y = points[:, 0], points[:, 1]
    inside = (x >= x0 - 1) & (x <= x1 + 1) & (y >= y0 - 1) & (y <= y1 + 1)
    return float(np.count_nonzero(inside)) / len(points)


def offset_for(image: ImageSet, which: str) -> Point3:
    """The offset (cm) that takes a point drawn against the `which` start into the scanner's (DICOM) frame:
    none for "dicom"; for "pinnacle", the difference of the two starts when the header has both, else that of the
    start and the scanner's own (a slice it wrote, kept in ImageSet_N.DICOM/), else the shift that centres the
    image on the axis (what the scanner's frame was for a centred field of view)."""
    if which == "dicom" or image.start_cm is None:
        return (0.0, 0.0, 0.0)
    scanner = image.start_dicom_cm or image.scanner_start_cm
    if scanner is not None:
        return (scanner[0] - image.start_cm[0], scanner[1] - image.start_cm[1], 0.0)
    if image.dims is None or image.voxel_size_cm is None:
        return (0.0, 0.0, 0.0)
    (nx, ny, _), (px, py, _) = image.dims, image.voxel_size_cm
    return (-(image.start_cm[0] + (nx - 1) * px / 2), -(image.start_cm[1] + (ny - 1) * py / 2), 0.0)


def position_of(text: str) -> PatientPosition | None:
    """HFS/HFP/FFS/FFP from a header's `patient_position` or the words of plan.PatientSetup."""
    upper = text.strip().upper()
    if upper in POSITIONS:
        return upper  # type: ignore[return-value]
    return None


def position_from_setup(position: str, orientation: str) -> PatientPosition | None:
    """`Position = "On back (supine)"` and `Orientation = "Head First Into Scanner"` → HFS; None when unclear."""
    pos, ori = position.lower(), orientation.lower()
    lying = "S" if "supine" in pos or "back" in pos else "P" if "prone" in pos or "front" in pos else None
    first = "HF" if "head first" in ori else "FF" if "feet first" in ori or "foot first" in ori else None
    return f"{first}{lying}" if lying and first else None  # type: ignore[return-value]


def image_voxel_cm(image: ImageSet, frame: CoordinateFrame, column: int, row: int, frame_index: int) -> Point3:
    """The Pinnacle position (cm) of a voxel's centre of an image set, against the start the plan's frame uses
    (row 0 is the highest y; z is the slice's TablePosition, else start_z + k·pixdim_z). With `to_dicom_mm`, the
    DICOM ImagePositionPatient of slice k is `image_voxel_cm(image, frame, 0, 0, k)`."""
    start = image_start(image, frame.image_start) or image_start(image, "pinnacle") or image_start(image, "dicom")
    if start is None or image.dims is None or image.voxel_size_cm is None:
        raise ValueError(f"{image.name}: its header gives no geometry")
    (_, ny, _), (px, py, pz) = image.dims, image.voxel_size_cm
    table = image.slices[frame_index].table_position_cm if frame_index < len(image.slices) else None
    z = table if table is not None else (image.start_cm[2] if image.start_cm else 0.0) + frame_index * pz
    return (start[0] + column * px, start[1] + (ny - 1 - row) * py, z)


def dose_voxel_cm(grid: DoseGrid, column: int, row: int, slice_index: int) -> Point3:
    """The Pinnacle position (cm) of a dose voxel's centre: row 0 is the grid's highest y, slices go up from
    Origin.Z by VoxelSize.Z."""
    (ox, oy, oz), (vx, vy, vz), (_, ny, _) = grid.origin_cm, grid.voxel_size_cm, grid.dims
    return (ox + column * vx, oy + (ny - 1 - row) * vy, oz + slice_index * vz)
