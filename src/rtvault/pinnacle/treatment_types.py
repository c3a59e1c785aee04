"""The types of a Pinnacle treatment as its files describe it: the patient, image sets, ROIs, points, trials with
beams and control points, dose grids and per-beam dose files, machines. Read-only, Latin-1, never raising on bad
content: what cannot be read is a `Problem` in `Treatment.problems` and the rest is still modelled.

Units are Pinnacle's own: lengths in centimetres in Pinnacle patient coordinates (see `coordinates.py` and
docs/design.md, "Pinnacle treatment model and coordinates"), angles in degrees as Pinnacle states them (the
couch in Pinnacle's convention: `coordinates.couch_iec` converts it), doses in cGy. Bulk data (CT voxels, beam
doses) are loaded lazily from the same source with `Treatment.voxels` and `Treatment.beam_dose`.

They are read by `treatment.read_treatment(source)`, where `source` is any `PatientFiles` (a patient directory
through `DirectorySource`, a store's tree or an archive's members through adapters of `jobs/`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from rtvault.errors import Problem
from rtvault.pinnacle.physics import Machine
from rtvault.pinnacle.treatment_bulk import load_beam_dose, load_voxels, trial_dose_gy
from rtvault.pinnacle.treatment_source import PatientFiles

if TYPE_CHECKING:
    import numpy as np

PatientPosition = Literal["HFS", "HFP", "FFS", "FFP"]
Point3 = tuple[float, float, float]  # x, y, z in Pinnacle patient coordinates (cm)
Dims3 = tuple[int, int, int]  # x, y, z counts


@dataclass(frozen=True)
class PatientIdentity:
    """Who the patient is, from the `Patient` file."""

    patient_id: int | None  # PatientID, Pinnacle's internal number
    last_name: str
    first_name: str
    middle_name: str
    mrn: str  # MedicalRecordNumber
    birth_date: str | None  # ISO 8601 date, None when empty or unreadable
    gender: str  # as written: "Male", "Female", "Unknown", ...
    radiation_oncologist: str
    referring_physician: str


@dataclass(frozen=True)
class ImageSlice:
    """One entry of `ImageSet_N.ImageInfo`: a frame of the `.img`, in the same order."""

    index: int  # 0-based frame number in the .img (ImageInfo order)
    slice_number: int | None  # SliceNumber as written (1-based)
    table_position_cm: float | None  # TablePosition: the slice's Pinnacle z (cm)
    couch_position_cm: float | None  # CouchPos as written (cm)
    instance_uid: str  # the scanner's SOPInstanceUID of this slice ("" when absent)
    class_uid: str  # the scanner's SOPClassUID ("" when absent)
    series_uid: str
    study_uid: str
    frame_uid: str  # FrameOfReferenceUID
    dicom_file: str  # DICOMFileName: the slice's file in ImageSet_N.DICOM/ ("" when not named)


@dataclass(frozen=True)
class ImageSet:
    """An image set: its `.header`, `.ImageInfo` and where its voxels are. Voxel (i, j, k) is column i, row j,
    frame k of the `.img`; its centre lies at Pinnacle x = start_x + i·voxel_x, y = start_y + (rows-1-j)·voxel_y
    (row 0 is the most anterior for a supine patient), z = the frame's TablePosition (or start_z + k·voxel_z)."""

    id: int  # N of ImageSet_N
    name: str  # "ImageSet_N"
    modality: str  # CT, MR, PT... (header `modality`, else the Patient file's)
    series_description: str
    patient_position: PatientPosition | None  # header `patient_position`; None when absent or not one of the four
    dims: Dims3 | None  # x_dim, y_dim, z_dim (voxels)
    voxel_size_cm: Point3 | None  # x_pixdim, y_pixdim, z_pixdim (cm)
    start_cm: Point3 | None  # x_start, y_start, z_start (cm): the first voxel in Pinnacle's image frame
    start_dicom_cm: tuple[float, float] | None  # x_start_dicom, y_start_dicom (cm): Pinnacle >= 9 headers only
    byte_order: int | None  # 0: little-endian voxels, 1: big-endian
    bytes_per_voxel: int | None  # bytes_pix (2 for CT)
    version: str  # header `Version` ("16.0"); "" in older headers
    couch_height_cm: float | None  # couch_height (cm)
    volume_name: str  # header db_name: the name plan.roi and plan.Points use for this image set
    series_uid: str  # the scanner's SeriesInstanceUID (ImageInfo, else the header's series_UID)
    study_uid: str  # StudyInstanceUID (ImageInfo)
    frame_uid: str  # FrameOfReferenceUID (ImageInfo)
    scan_datetime: str | None  # ISO 8601 (header SeriesDateTime, else the Patient file's ScanTimeFromScanner)
    manufacturer: str
    model: str
    slices: tuple[ImageSlice, ...]
    voxel_file: str | None  # "ImageSet_N.img" when present with the size the header announces, else None
    dicom_files: tuple[str, ...]  # names (relative to the patient) of the scanner's slices kept in ImageSet_N.DICOM/
    rescale_intercept: float  # HU = stored value + rescale_intercept (Pinnacle stores CT numbers = HU + 1000)
    rescale_slope: float  # 1.0
    # the first voxel's (x, y) in the scanner's frame (cm), from a slice kept in ImageSet_N.DICOM/ (None: none kept)
    scanner_start_cm: tuple[float, float] | None = None


@dataclass(frozen=True)
class Curve:
    """One contour of an ROI: a closed polygon on one slice."""

    points_cm: tuple[Point3, ...]  # Pinnacle coordinates (cm), in file order; the last point may repeat the first


@dataclass(frozen=True)
class Roi:
    """A region of interest of `plan.roi`."""

    number: int  # 1-based order in plan.roi
    name: str
    color: str  # Pinnacle colour name ("red", "skyblue"...)
    interpreted_type: str  # roiinterpretedtype as written: ORGAN, EXTERNAL, PTV, CTV, GTV, MARKER...
    volume_name: str  # the image set's volume name it was drawn on
    image_set_id: int | None  # the image set it belongs to (by volume name, else the plan's primary CT)
    uid: str  # the ROI's UID line, "" when absent
    volume_cc: float | None  # `volume` as Pinnacle computed it (cm³)
    curves: tuple[Curve, ...]


@dataclass(frozen=True)
class Poi:
    """A point of interest of `plan.Points`."""

    name: str
    position_cm: Point3  # XCoord, YCoord, ZCoord (cm), Pinnacle coordinates
    color: str
    interpreted_type: str  # PoiInterpretedType: MARKER, ISOCENTER, ...
    coord_sys: str  # CoordSys ("CT")
    volume_name: str


@dataclass(frozen=True)
class Prescription:
    """A prescription of a trial's `PrescriptionList`."""

    name: str
    dose_cgy: float | None  # PrescriptionDose (cGy), per PrescriptionPeriod
    percent: float | None  # PrescriptionPercent: the isodose (%) the dose is prescribed to (100 when absent)
    fractions: int | None  # NumberOfFractions
    point_name: str  # PrescriptionPoint: the POI name ("" when none)
    method: str  # Method: "Prescribe", "Set Monitor Units"...
    normalization_method: str  # NormalizationMethod: "Point Dose", "ROI Mean"...
    period: str  # PrescriptionPeriod: "Per Fraction" or "Overall"
    weights_proportional_to: str  # WeightsProportionalTo
    requested_mu_per_fraction: float | None  # RequestedMonitorUnitsPerFraction

    @property
    def dose_at_point_cgy(self) -> float | None:
        """The dose per fraction (cGy) the prescription puts at its point: dose ÷ (percent / 100)."""
        if self.dose_cgy is None:
            return None
        return self.dose_cgy / ((self.percent or 100.0) / 100.0)


@dataclass(frozen=True)
class Jaws:
    """Jaw positions of a control point (cm at the isocentre plane, as Pinnacle states them: each a distance
    from the central axis, positive when open past it)."""

    left: float  # LeftJawPosition (X1 side)
    right: float  # RightJawPosition (X2 side)
    top: float  # TopJawPosition (Y2 side)
    bottom: float  # BottomJawPosition (Y1 side)


@dataclass(frozen=True)
class ControlPoint:
    """One control point (segment) of a beam's CPManager, its own angles, jaws, leaves and weight."""

    index: int  # 0-based, as the `#N` of ControlPointList
    gantry_deg: float | None  # Gantry (degrees, IEC 61217 like DICOM): on an arc, where this control point starts
    couch_deg: float | None  # Couch (degrees, Pinnacle's convention: `coordinates.couch_iec` for DICOM)
    collimator_deg: float | None  # Collimator (degrees)
    weight: float | None  # Weight: the fraction of the beam's MU delivered in this segment (on an arc: this sector)
    jaws: Jaws | None
    mlc_cm: tuple[tuple[float, float], ...]  # per leaf pair, (X1 "B" bank, X2 "A" bank) positions (cm), file order
    wedge_name: str  # WedgeContext WedgeName ("No Wedge" when none)
    wedge_orientation: str = ""  # WedgeContext Orientation: "WedgeLeftToRight", ..., "NoWedge"
    wedge_angle: str = ""  # WedgeContext Angle as written: "Fixed" (physical), "30" (a dynamic wedge's), "No Wedge"
    gantry_stop_deg: float | None = None  # StopAngle: where an arc's sector from this control point ends (degrees)


@dataclass(frozen=True)
class Beam:
    """A beam of a trial's `BeamList`."""

    number: int  # 1-based order in the trial
    name: str
    field_id: str  # FieldID ("" when absent)
    isocenter_name: str  # IsocenterName: the POI at the isocentre
    isocenter_cm: Point3 | None  # that POI's position (cm), None when not found
    prescription_name: str  # PrescriptionName
    machine_name: str  # MachineNameAndVersion before the colon
    machine_version: str  # MachineNameAndVersion after the colon: the machine's VersionTimestamp
    energy_name: str  # MachineEnergyName: "6X", "9E"...
    modality: str  # Modality: "Photons", "Electrons"...
    beam_type: str  # SetBeamType: "Static", "Step & Shoot MLC", "Dynamic Arc", "Conformal Arc"...
    computation_version: str  # ComputationVersion: "Pinnacle v16.0"
    gantry_is_ccw: bool  # CPManagerObject GantryIsCCW: an arc turns counter-clockwise (IEC 61217), else clockwise
    ssd_cm: float | None  # SSD (cm)
    weight: float | None  # Weight: the beam's relative weight in the trial (%)
    monitor_units: float | None  # MU per fraction, None when it cannot be computed (`mu_problem` says why)
    normalized_dose: float | None  # MonitorUnitInfo NormalizedDose (cGy/MU at the prescription point, relative)
    prescription_dose_cgy: float | None  # MonitorUnitInfo PrescriptionDose (cGy per fraction from this beam)
    dose_per_mu_at_calibration: float | None  # the machine energy's DosePerMuAtCalibration (cGy/MU)
    control_points: tuple[ControlPoint, ...]
    dose_xdr: int | None  # n of `DoseVolume = \\XDR:n\\`
    dose_file: str | None  # "Plan_K/plan.Trial.binary.NNN" when present with the grid's size, else None

    @property
    def is_arc(self) -> bool:
        """An arc beam ("Conformal Arc", "Dynamic Arc", SmartArc's "...Arc"): the gantry turns while it delivers."""
        return "arc" in self.beam_type.lower()

    def arc_path(self) -> tuple[tuple[float, str], ...] | None:
        """An arc's gantry path, one (angle, direction) per DICOM control point: control point k's sector runs from
        its `Gantry` to the next one's (the last to its `StopAngle`) in the beam's direction ("CW", or "CC" when
        GantryIsCCW), "NONE" where a sector does not move and on the stop angle. None when an angle is missing."""
        starts = [cp.gantry_deg for cp in self.control_points]
        stop = self.control_points[-1].gantry_stop_deg if self.control_points else None
        if not starts or stop is None or any(a is None for a in starts):
            return None
        angles = [a % 360.0 for a in (*starts, stop)]  # type: ignore[operator]
        turning = "CC" if self.gantry_is_ccw else "CW"
        return tuple((angle, "NONE" if k == len(angles) - 1 or angles[k + 1] == angle else turning)
                     for k, angle in enumerate(angles))


@dataclass(frozen=True)
class DoseGrid:
    """A trial's dose grid. Voxel (i, j, k) of a dose file (x fastest, then rows, then slices) lies at Pinnacle
    x = origin_x + i·voxel_x, y = origin_y + (rows-1-j)·voxel_y (row 0 is the highest y), z = origin_z + k·voxel_z."""

    origin_cm: Point3  # DoseGrid .Origin: the minimum-corner voxel's centre (cm)
    voxel_size_cm: Point3  # DoseGrid .VoxelSize .X/.Y/.Z (cm): Z is its own value, never X's
    dims: Dims3  # DoseGrid .Dimension .X/.Y/.Z (voxels)


@dataclass(frozen=True)
class Trial:
    """A trial of `plan.Trial`."""

    name: str
    prescriptions: tuple[Prescription, ...]
    beams: tuple[Beam, ...]
    dose_grid: DoseGrid | None  # None when the grid's keys are missing or invalid


@dataclass(frozen=True)
class CoordinateFrame:
    """How a plan's Pinnacle coordinates map to DICOM patient coordinates (see `coordinates.py`)."""

    position: PatientPosition  # the patient position the signs follow
    offset_cm: Point3  # added to a Pinnacle point (cm) before the axes are flipped and scaled to mm
    image_start: Literal["dicom", "pinnacle"]  # which header start the plan's objects are relative to
    decided: bool  # False: the rule could not be decided from the files (a warning says so)
    reason: str  # one sentence: what in the files decided it


@dataclass(frozen=True)
class Plan:
    """A plan directory `Plan_K`: its ROIs, points, trials and the machines it names."""

    id: int  # K of Plan_K
    name: str  # PlanName from the Patient file
    directory: str  # "Plan_K"
    primary_image_set_id: int | None  # PrimaryCTImageSetID
    patient_position: PatientPosition | None  # from plan.PatientSetup, else the primary image set's header
    pinnacle_version: str  # the version that wrote the plan, as written ("Pinnacle v16.0"), "" when unknown
    frame: CoordinateFrame | None  # None when no image set or position is known
    rois: tuple[Roi, ...]
    points: tuple[Poi, ...]
    trials: tuple[Trial, ...]
    machines: tuple[Machine, ...]  # from plan.Pinnacle.Machines


@dataclass(frozen=True)
class Treatment:
    """A patient's treatment as read: what was found, and each problem met. `voxels` and `beam_dose` read the
    bulk data from the same source when asked."""

    identity: PatientIdentity
    image_sets: tuple[ImageSet, ...]
    plans: tuple[Plan, ...]
    problems: tuple[Problem, ...]
    source: PatientFiles = field(repr=False, compare=False)

    def image_set(self, image_set_id: int | None) -> ImageSet | None:
        return next((i for i in self.image_sets if i.id == image_set_id), None)

    def voxels(self, image: ImageSet) -> np.ndarray | None:
        """The image set's stored values as int16, shape (z, y, x), in the header's byte order; HU = value ·
        rescale_slope + rescale_intercept. None when the model found no usable `.img` (a problem says why);
        PartialResult when the file can no longer be read."""
        return load_voxels(self.source, image)

    def beam_dose(self, trial: Trial, beam: Beam) -> np.ndarray | None:
        """A beam's dose in cGy per MU, float32, shape (z, y, x) of the trial's grid; None when its file is
        missing or of the wrong size (a problem says why); PartialResult when it can no longer be read."""
        return load_beam_dose(self.source, trial, beam)

    def trial_dose_gy(self, trial: Trial) -> np.ndarray | None:
        """The trial's total dose in Gy over all fractions: Σ beam dose × MU × fractions / 100, float32, shape
        (z, y, x); None when no beam has both its dose file and its MU."""
        return trial_dose_gy(self.source, trial)
