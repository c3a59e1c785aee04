"""Where a synthetic patient lies, in one place so that the CT voxels, `plan.roi`, `plan.Points` and the dose
files agree: the patient position, the body's outline on each slice, the legacy Y frame of old Pinnacle
versions, and the dose grid placed around the isocentre. Lengths are Pinnacle centimetres.

Coordinates are Pinnacle's room frame of a recent version (16): x to the patient's left when head-first supine,
y up (anterior when supine), z = the slice's `TablePosition`. The scanner reconstructed a field of view centred
on its axis, so the image centre is DICOM (0, 0). An old version (`LEGACY_VERSION`) writes every y (header
`y_start`, ROI and point coordinates, the dose grid origin) in its legacy frame:
`y_legacy = y - legacy_offset(image)`, the couch height plus the image's half height (design.md, "The demo
generator").
"""

from __future__ import annotations

import math
import random

from rtvault.demo.sites import Site
from rtvault.demo.spec import ImageSetSpec

POSITIONS = ("HFS", "HFP", "FFS", "FFP")
RECENT_VERSION = "16.2"
LEGACY_VERSION = "7.4f"
# The anatomy's (x, y) signs in the room: prone turns the patient over (both flip), feet-first mirrors x.
_FLIPS = {"HFS": (1.0, 1.0), "HFP": (-1.0, -1.0), "FFS": (-1.0, 1.0), "FFP": (1.0, -1.0)}
# Positions of a generated database's patients in order (HFS most often, then each other one), and which of
# them are planned with the old version: six patients already show every position and the legacy frame.
_POSITION_CYCLE = ("HFS", "HFP", "HFS", "FFS", "HFS", "FFP", "HFS", "HFS", "HFS", "HFS")
_LEGACY_SLOTS = (4, 7)
# Those whose scanner slices Pinnacle kept (ImageSet_N.DICOM/): the first six patients' HFP, FFS, legacy HFS, FFP.
_SCANNER_SLOTS = (1, 3, 4, 5)
_POSITION_WEIGHTS = (70, 10, 12, 8)
TEMPLATE_GROUPS = 12  # the body's outline changes every nz / 12 slices (the CT is built from that many templates)
BODY_WOBBLE = 0.06
COUCH_GAP_CM = 0.6  # a mattress between the couch top and the body's posterior skin


def position_and_version(index: int | None, rng: random.Random) -> tuple[str, str]:
    """The position and Pinnacle version of the `index`-th patient of a database (None: a patient admitted later,
    drawn from `rng`)."""
    if index is None:
        position = rng.choices(POSITIONS, weights=_POSITION_WEIGHTS)[0]
        return position, LEGACY_VERSION if rng.random() < 0.1 else RECENT_VERSION
    slot = index % len(_POSITION_CYCLE)
    return _POSITION_CYCLE[slot], LEGACY_VERSION if slot in _LEGACY_SLOTS else RECENT_VERSION


def keeps_scanner_slices(index: int | None, number: int) -> bool:
    """Whether Pinnacle kept the scanner's own slices of the `index`-th patient of a database (None: a patient
    admitted later, every third by number), without drawing from a generator."""
    return number % 3 == 0 if index is None else index % len(_POSITION_CYCLE) in _SCANNER_SLOTS


def flips(position: str) -> tuple[float, float]:
    return _FLIPS[position]


def is_legacy(version: str) -> bool:
    return version != RECENT_VERSION


def legacy_offset(image: ImageSetSpec) -> float:
    """How far (cm) the legacy frame's y origin lies above the recent one's: couch height + half image height."""
    return round(image.couch_height + image.dims[1] * image.pixdim[1] / 2, 4)


def y_shift(version: str, image: ImageSetSpec) -> float:
    """What to add to a recent-frame y to write it in the files of a patient planned with `version`."""
    return -legacy_offset(image) if is_legacy(version) else 0.0


def first_centre(image: ImageSetSpec) -> tuple[float, float]:
    """The recent frame's x of the first column's centre and y of the last (posterior) row's centre (cm): the field
    of view centred on the scanner's axis puts the middle of the image at (0, 0)."""
    (nx, ny, _), (px, py, _) = image.dims, image.pixdim
    return -(nx - 1) * px / 2, -(ny - 1) * py / 2


def template_groups(nz: int) -> int:
    return min(TEMPLATE_GROUPS, nz)


def slice_group(index: int, nz: int) -> int:
    return (index * template_groups(nz)) // nz


def body_outline(site: Site, image: ImageSetSpec, group: int) -> tuple[float, float, float]:
    """The body's ellipse on the slices of template `group`: centre y and half axes (cm), recent frame. It breathes
    along z but always rests on the couch: its posterior skin stays at y = -site.body_radii[1]."""
    groups = template_groups(image.dims[2])
    fraction = (group + 0.5) / groups
    scale = 1.0 + BODY_WOBBLE * math.sin(2 * math.pi * 1.3 * fraction + image.body_phase)
    rx, ry = site.body_radii[0] * scale, site.body_radii[1] * scale
    return ry - site.body_radii[1], rx, ry


def couch_top(site: Site) -> float:
    """The couch top's y (recent frame): under the body's posterior skin, whatever the slice."""
    return -site.body_radii[1] - COUCH_GAP_CM


def slice_z(image: ImageSetSpec, index: int) -> float:
    """The `TablePosition` of slice `index` (cm): the header's z_start plus index slices."""
    return round(-image.dims[2] * image.pixdim[2] / 2 + index * image.pixdim[2], 6)
