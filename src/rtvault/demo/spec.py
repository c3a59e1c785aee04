"""What the generator decides before writing: the manifest it returns, so tests compare a reader's findings
with what was written instead of hard-coded values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from rtvault.demo.names import Identity
from rtvault.demo.sites import Site

INSTITUTION_DIR = "Institution_1"
MOUNT = "Mount_0"


@dataclass(frozen=True)
class ImageSetSpec:
    id: int
    modality: str
    series_description: str
    dims: tuple[int, int, int]  # x, y, z voxel counts
    pixdim: tuple[float, float, float]  # cm
    byte_order: int  # 0: little-endian voxels, 1: big-endian
    scanned: datetime
    series_uid: str
    exam_id: str
    position: str = "HFS"  # HFS, HFP, FFS or FFP: the header's patient_position and the plans' PatientSetup
    couch_height: float = 28.1  # cm, the header's couch_height (the legacy Y frame's offset: demo/geometry.py)
    body_phase: float = 0.0  # radians: where along z the body's outline breathes (demo/geometry.body_outline)

    @property
    def name(self) -> str:
        return f"ImageSet_{self.id}"

    @property
    def dimensions(self) -> dict[str, int]:
        x, y, z = self.dims
        return {"x": x, "y": y, "z": z}

    @property
    def img_bytes(self) -> int:
        x, y, z = self.dims
        return x * y * z * 2


@dataclass(frozen=True)
class BeamSpec:
    name: str
    gantry: float
    couch: float
    collimator: float
    jaws: tuple[float, float, float, float]  # left, right, top, bottom (cm)
    weight: float
    monitor_units: float
    energy: str
    arc_stop: float | None = None  # a Conformal Arc from `gantry` to this angle (one control point), None: static
    ccw: bool = False  # the arc turns counter-clockwise (GantryIsCCW)
    wedge: str = ""  # the machine's wedge the beam carries ("45 Wedge", "EDW"), "" for none
    wedge_orientation: str = "NoWedge"  # "WedgeLeftToRight", "WedgeTopToBottom"...
    wedge_angle: str = "No Wedge"  # the WedgeContext Angle: "Fixed" for a physical wedge, "30" for a dynamic one

    @property
    def wedge_degrees(self) -> float:
        """The wedge's angle (0 without one): a dynamic wedge's own (its context's Angle), else the name's number."""
        if not self.wedge:
            return 0.0
        return float(self.wedge_angle if self.wedge_angle.isdigit() else self.wedge.split()[0])

    @property
    def arc_angles(self) -> tuple[float, ...]:
        """The gantry angles the demo's dose model sums for this beam: the static one, or an arc's start to stop
        in its direction every 10° or less (as Pinnacle computes an arc as sub-beams)."""
        if self.arc_stop is None:
            return (self.gantry,)
        span = ((self.gantry - self.arc_stop) if self.ccw else (self.arc_stop - self.gantry)) % 360.0
        steps = max(1, int(-(-span // 10)))
        sign = -1.0 if self.ccw else 1.0
        return tuple((self.gantry + sign * span * k / steps) % 360.0 for k in range(steps + 1))


@dataclass(frozen=True)
class TrialSpec:
    name: str
    prescription: str
    dose_per_fraction: float
    fractions: int
    beams: tuple[BeamSpec, ...]
    dose_dims: tuple[int, int, int]
    dose_voxel: tuple[float, float, float]  # cm per axis: VoxelSize.Z differs from X and Y
    dose_origin: tuple[float, float, float]  # the minimum-corner voxel's centre, recent frame (cm)
    prescription_percent: float = 100.0  # the prescription point receives the prescription ÷ this percent
    prescription_point: tuple[float, float, float] = (0.0, 0.0, 0.0)  # the "iso" POI, recent frame: a grid node

    @property
    def point_dose_cgy(self) -> float:
        """The dose per fraction at the prescription point (cGy): the prescription divided by its percent."""
        return self.dose_per_fraction * 100.0 / self.prescription_percent


@dataclass(frozen=True)
class PlanSpec:
    id: int
    name: str
    physicist: str
    dosimetrist: str
    locked: bool
    comment: str
    image_set_id: int
    isocenter: tuple[float, float, float]
    trials: tuple[TrialSpec, ...]
    created: datetime
    modified: datetime
    autosave: bool = False
    error_log: bool = False
    transcript: bool = False

    @property
    def directory(self) -> str:
        return f"Plan_{self.id}"


@dataclass
class PatientSpec:
    number: int
    identity: Identity
    site: Site
    diagnosis: str
    image_sets: list[ImageSetSpec]
    plans: list[PlanSpec]
    created: datetime
    modified: datetime
    editor_backup: bool = False
    dir_size_mb: float = 0.0
    pinnacle_version: str = "16.2"  # an old one (demo/geometry.LEGACY_VERSION) writes y in its legacy frame
    scanner_slices: bool = False  # Pinnacle kept the scanner's CT slices in ImageSet_N.DICOM/ (demo/scanner.py)

    @property
    def patient_id(self) -> int:
        return self.number

    @property
    def path(self) -> str:
        """Relative to the database root, as in PatientPath: `Institution_1/Mount_0/Patient_N`."""
        return f"{INSTITUTION_DIR}/{MOUNT}/Patient_{self.number}"

    @property
    def finished(self) -> bool:
        return all(plan.locked for plan in self.plans)

    def image_set(self, image_set_id: int) -> ImageSetSpec:
        return next(image for image in self.image_sets if image.id == image_set_id)


@dataclass
class GeneratedDatabase:
    """The result of `generate_database`: where, what, and how much was written."""

    out: Path
    seed: int
    patients: list[PatientSpec] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    duration_s: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "out": str(self.out),
            "patients": len(self.patients),
            "files": self.files,
            "bytes": self.bytes,
            "seed": self.seed,
            "duration_s": round(self.duration_s, 3),
        }
