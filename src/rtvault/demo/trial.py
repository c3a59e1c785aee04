"""`plan.Trial`: trials with prescriptions, beams, control points (`#N` items), `Points[]` arrays, dotted
`DoseGrid .VoxelSize .X` keys and `\\XDR:N\\` references to the `plan.Trial.binary.NNN` files."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rtvault.demo import clock, geometry
from rtvault.demo.files import pinnacle
from rtvault.demo.machines import MACHINE_NAMES, dose_per_mu_at_calibration
from rtvault.demo.spec import BeamSpec, PatientSpec, PlanSpec, TrialSpec
from rtvault.demo.syntax import Entries, Numbers, Raw, document, object_version

_LEAF_PAIRS = 60


@dataclass(frozen=True)
class DoseFile:
    """A beam dose the trial file points to: `DoseVolume = \\XDR:index\\;` and `plan.Trial.binary.<index>`."""

    index: int
    trial: TrialSpec
    beam: BeamSpec

    @property
    def file_name(self) -> str:
        return f"plan.Trial.binary.{self.index:03d}"


class _Xdr:
    """Numbers the binary references of one plan.Trial file, in file order."""

    def __init__(self) -> None:
        self.next_index = 0

    def take(self) -> Raw:
        raw = Raw(f"\\XDR:{self.next_index}\\")
        self.next_index += 1
        return raw


def _dose_grid(trial: TrialSpec, y_shift: float) -> Entries:
    """The DoseGrid keys: per axis the voxel size (Z its own), dimension and origin (the minimum-corner voxel's
    centre, y in the files' frame)."""
    entries: Entries = []
    shifts = (0.0, y_shift, 0.0)
    for axis, dim, origin, size, shift in zip("XYZ", trial.dose_dims, trial.dose_origin, trial.dose_voxel, shifts,
                                              strict=True):  # fmt: skip
        entries += [
            (f"DoseGrid .VoxelSize .{axis}", size),
            (f"DoseGrid .Dimension .{axis}", dim),
            (f"DoseGrid .Origin .{axis}", round(origin + shift, 4)),
        ]
    entries += [(f"DoseGrid .VolRotDelta .{axis}", 0) for axis in "XYZ"]
    return [*entries, ("DoseGrid .Display2d", 1), ("DoseGrid .DoseSummationType", 1)]


def _wedge_context(beam: BeamSpec) -> Entries:
    angle: object = int(beam.wedge_angle) if beam.wedge_angle.isdigit() else beam.wedge_angle
    return [
        ("WedgeName", beam.wedge or "No Wedge"),
        ("Orientation", beam.wedge_orientation),
        ("OffsetOrigin", "Patient Surface"),
        ("OffsetDistance", -2.5),
        ("Angle", angle),
        ("MinDeliverableMU", 0),
        ("MaxDeliverableMU", Raw("1e+30")),
    ]


def _contour(beam: BeamSpec, points: int = 24) -> Numbers:
    half = (beam.jaws[0] + beam.jaws[1]) / 2 - 0.5
    values: list[float] = []
    for k in range(points + 1):
        angle = 2 * math.pi * k / points
        radius = half * (1 + 0.08 * math.sin(3 * angle + math.radians(beam.gantry)))
        values += [round(radius * math.cos(angle), 5), round(radius * math.sin(angle), 5)]
    return Numbers(values)


def _leaves(beam: BeamSpec, segment: int) -> Numbers:
    """The leaf pairs from +Y down, each as Pinnacle writes it: bank B (X1) as its distance from the axis, then
    bank A (X2) as its position (both positive for an opening across the axis, as on real plans)."""
    half = (beam.jaws[0] + beam.jaws[1]) / 2 - 0.3 * segment
    values: list[float] = []
    for leaf in range(_LEAF_PAIRS):
        y = 20 - (leaf + 0.5) * 40 / _LEAF_PAIRS
        opening = math.sqrt(max(0.0, half * half - y * y))
        values += [round(opening, 3), round(opening, 3)]
    return Numbers(values)


def _segment_weight(beam: BeamSpec, segment: int) -> float:
    """Each beam's own split between its two segments (summing to 1), so that no two beams look alike; an arc's
    single control point has it all."""
    if beam.arc_stop is not None:
        return 1.0
    first = round(0.35 + (beam.gantry % 90) / 300, 4)
    return first if segment == 0 else round(1 - first, 4)


def _control_point(beam: BeamSpec, segment: int, xdr: _Xdr) -> Entries:
    left, right, top, bottom = beam.jaws
    stop = [] if beam.arc_stop is None else [("StopAngle", beam.arc_stop)]
    return [
        ("Gantry", beam.gantry),
        *stop,
        ("Couch", beam.couch),
        ("Collimator", beam.collimator),
        ("WedgeContext", _wedge_context(beam)),
        ("LeftJawPosition", left),
        ("RightJawPosition", right),
        ("TopJawPosition", top),
        ("BottomJawPosition", bottom),
        ("ModifierList", [("BeamModifier", _modifier(beam))]),
        (
            "MLCLeafPositions",
            [
                (
                    "RawData",
                    [("NumberOfDimensions", 2), ("NumberOfPoints", _LEAF_PAIRS), ("Points", _leaves(beam, segment))],
                )
            ],
        ),
        ("Weight", _segment_weight(beam, segment)),
        ("WeightLocked", 0),
        ("PercentOfArc", 0),
        ("HasSharedModifierList", 0),
        ("MLCSegmentIndex", segment),
        ("ODM", 'Bad Value!  Programming Error\\"'),
        ("CPBlockingMask", [*[(f"{a}Dim", 1) for a in "XYZ"], ("BinaryData", xdr.take())]),
        ("CPBlockContourList", []),
        ("DoseVector", xdr.take()),
    ]


def _modifier(beam: BeamSpec) -> Entries:
    curve = [("RawData", [("NumberOfDimensions", 2), ("NumberOfPoints", 25), ("Points", _contour(beam))])]
    return [
        ("Name", "BeamModifier_1"),
        ("FixToCollimator", 1),
        ("AutoBlock", 0),
        ("StructureToBlock", "Manual"),
        ("Margin", 0),
        ("InsideMode", "Expose"),
        ("OutsideMode", "Block"),
        ("ContourList", [("CurvePainter", [("Curve", curve)])]),
    ]


def beam_machine(beam: BeamSpec) -> str:
    """The machine a demo beam is planned on: the Clinac iX for 18 MV, the TrueBeam STx otherwise."""
    return MACHINE_NAMES[1] if beam.energy != "18X" else MACHINE_NAMES[0]


def _beam(
    beam: BeamSpec, trial: TrialSpec, index: int, xdr: _Xdr, doses: list[DoseFile], version: str
) -> Entries:
    machine = beam_machine(beam)
    count = 1 if beam.arc_stop is not None else 2
    control_points = [(f"#{k}", _control_point(beam, k, xdr)) for k in range(count)]
    manager: Entries = [("NumberOfControlPoints", count), ("ControlPointList", control_points),
                        ("GantryIsCCW", int(beam.ccw))]
    entries: Entries = [
        ("Name", beam.name),
        ("IsocenterName", "iso"),
        ("PrescriptionName", trial.prescription),
        ("UsePoiForPrescriptionPoint", 1),
        ("PrescriptionPointName", "iso"),
        ("PrescriptionPointDepth", 5),
        ("MachineNameAndVersion", f"{machine}: 2019-03-13 11:12:23"),
        ("Modality", "Photons"),
        ("MachineEnergyName", beam.energy),
        ("SetBeamType", "Step & Shoot MLC" if beam.arc_stop is None else "Conformal Arc"),
        ("ComputationVersion", version),
        ("CPManager", [("CPManagerObject", manager)]),
        ("DegreesBetweenSubbeamsForDoseCalc", 10),
        ("RelyOnBolusNames", "&"),
    ]
    doses.append(DoseFile(xdr.next_index, trial, beam))
    return [
        *entries,
        ("DoseVolume", xdr.take()),
        ("DoseVarVolume", xdr.take()),
        ("Weight", beam.weight),
        ("IsWeightLocked", 0),
        ("MonitorUnitsValid", 1),
        ("MonitorUnitInfo", _monitor_unit_info(beam, trial)),
        ("FieldID", f"{index + 1:02d}"),
        ("DoseRate", 600),
    ]


def _monitor_unit_info(beam: BeamSpec, trial: TrialSpec) -> Entries:
    """How Pinnacle derives the beam's MU: MU = PrescriptionDose / (NormalizedDose x CollimatorOutputFactor x
    TotalTransmissionFraction x DosePerMuAtCalibration), PrescriptionDose being the beam's share (by weight) of the
    prescription point's dose per fraction (cGy), DosePerMuAtCalibration the machine's for the beam's energy
    (plan.Pinnacle.Machines), and their product with NormalizedDose its dose per MU there (the dose file's value:
    checked on a real Pinnacle plan)."""
    share = trial.point_dose_cgy * beam.weight / sum(b.weight for b in trial.beams)
    output_factor = round(0.97 + 0.01 * (beam.jaws[0] + beam.jaws[1]) / 2, 5)
    calibration = dose_per_mu_at_calibration(beam_machine(beam), beam.energy)
    return [
        ("PrescriptionDose", round(share, 4)),
        ("SourceToPrescriptionPointDistance", 100),
        ("TotalTransmissionFraction", 1),
        ("NormalizedDose", round(share / beam.monitor_units / output_factor / calibration, 6)),
        ("CollimatorOutputFactor", output_factor),
    ]


def _prescription(trial: TrialSpec) -> Entries:
    return [
        ("Name", trial.prescription),
        ("RequestedMonitorUnitsPerFraction", round(sum(b.monitor_units for b in trial.beams), 1)),
        ("PrescriptionDose", trial.dose_per_fraction),
        ("PrescriptionPercent", trial.prescription_percent),
        ("NumberOfFractions", trial.fractions),
        ("PrescriptionPoint", "iso"),
        ("Method", "Prescribe"),
        ("NormalizationMethod", "Point Dose"),
        ("PrescriptionPeriod", "Per Fraction"),
        ("WeightsProportionalTo", "Point Dose"),
        ("Color", "red"),
    ]


def _trial(spec: PatientSpec, plan: PlanSpec, trial: TrialSpec, xdr: _Xdr, doses: list[DoseFile]) -> Entries:
    representation: Entries = [
        ("PatientVolumeName", spec.identity.volume_name),
        ("CtToDensityName", "CT BIG BORE 120kV"),
        ("CtToDensityVersion", "2019-03-13 11:12:23"),
        ("DMTableName", "Standard Patient"),
        ("OutsidePatientIsCtNumber", 0),
        ("OutsidePatientAirThreshold", 0.6),
        ("CtToDensityTableAccepted", 1),
    ]
    record = xdr.take()
    version = pinnacle(spec)
    beams = [("Beam", _beam(beam, trial, i, xdr, doses, version)) for i, beam in enumerate(trial.beams)]
    written = clock.text(plan.modified)
    shift = geometry.y_shift(spec.pinnacle_version, spec.image_set(plan.image_set_id))
    couch_removal = geometry.couch_top(spec.site) - 0.3 + shift
    return [
        ("Name", trial.name),
        ("PatientRepresentation", representation),
        *_dose_grid(trial, shift),
        ("DoseStartSlice", 1),
        ("DoseEndSlice", trial.dose_dims[2]),
        ("RecordDoseData", record),
        ("FluenceGridResolution", 0.4),
        ("SourceToFilmDistance", 140),
        ("MCGlobalUncertaintyType", "mean_error_over_max_value"),
        ("RemoveCouchFromScan", 1),
        ("CouchRemovalYCoordinate", round(couch_removal, 4)),
        ("MaxDosePoint .Display2d", "Label"),
        ("MaxDosePoint .Color", "green"),
        ("PrescriptionList", [("Prescription", _prescription(trial))]),
        ("BeamList", beams),
        ("BrachyDose", xdr.take()),
        ("ObjectVersion", object_version(version, "p3rtp", clock.text(plan.created), written, written)),
        ("SeriesDescription", ""),
        ("HasDose", 1),
    ]


def trial_file(spec: PatientSpec, plan: PlanSpec) -> tuple[bytes, list[DoseFile]]:
    """The bytes of plan.Trial (no stamp, like real ones) and the beam doses it refers to."""
    xdr = _Xdr()
    doses: list[DoseFile] = []
    entries = [("Trial", _trial(spec, plan, trial, xdr, doses)) for trial in plan.trials]
    return document(entries, None), doses
