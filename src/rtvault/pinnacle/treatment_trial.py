"""Trials of `plan.Trial`: prescriptions, beams, control points with their own jaws, leaves and weights, the dose
grid, each beam's MU and dose file (`\\XDR:n\\` → `plan.Trial.binary.NNN`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from rtvault.errors import Problem
from rtvault.pinnacle.grammar import PObject
from rtvault.pinnacle.treatment_fields import MAX_VOXELS, child, integer, number, objects, text
from rtvault.pinnacle.treatment_source import PatientFiles
from rtvault.pinnacle.treatment_types import Beam, ControlPoint, DoseGrid, Jaws, Point3, Prescription, Trial

_XDR = re.compile(r"\\XDR:(\d+)\\\Z")
# (machine name, energy name) → DosePerMuAtCalibration (cGy/MU), from plan.Pinnacle.Machines
Calibrations = Mapping[tuple[str, str], float]


@dataclass(frozen=True)
class TrialContext:
    """What a trial's beams are read against: where they are, the plan's points and machines."""

    source: PatientFiles
    names: set[str]
    directory: str  # "Plan_K"
    points: Mapping[str, Point3]
    calibrations: Calibrations
    problems: list[Problem]

    @property
    def trial_file(self) -> str:
        return f"{self.directory}/plan.Trial"


def read_trials(root: PObject, context: TrialContext) -> tuple[Trial, ...]:
    trials = tuple(_trial(t, k, context) for k, t in enumerate(root.get_all("Trial")) if isinstance(t, PObject))
    claimed: dict[str, list[str]] = {}
    for trial in trials:
        for beam in trial.beams:
            if beam.dose_file is not None:
                claimed.setdefault(beam.dose_file, []).append(f"{trial.name}/{beam.name}")
    for name, owners in claimed.items():
        if len(owners) > 1:
            context.problems.append(Problem(name, f"claimed by several beams ({', '.join(owners)}): each is given "
                                            "this file, check which trial it belongs to"))
    return trials


def _trial(obj: PObject, index: int, context: TrialContext) -> Trial:
    name = text(obj, "Name") or f"Trial #{index + 1}"
    grid = _dose_grid(obj, name, context)
    prescriptions = tuple(_prescription(p) for p in objects(obj.child("PrescriptionList")))
    beams = tuple(_beam(b, k, name, grid, prescriptions, context)
                  for k, b in enumerate(objects(obj.child("BeamList"))))
    return Trial(name, prescriptions, beams, grid)


def _dose_grid(obj: PObject, trial: str, context: TrialContext) -> DoseGrid | None:
    grid = obj.child("DoseGrid")
    origin = tuple(number(child(grid, "Origin"), a) for a in "XYZ")
    voxel = tuple(number(child(grid, "VoxelSize"), a) for a in "XYZ")
    dims = tuple(integer(child(grid, "Dimension"), a) for a in "XYZ")
    if None in origin or None in voxel or None in dims:
        context.problems.append(Problem(context.trial_file, f"trial {trial!r}: DoseGrid incomplete (origin, voxel "
                                        "size or dimension missing): no dose"))
        return None
    if min(voxel) <= 0 or min(dims) <= 0 or dims[0] * dims[1] * dims[2] > MAX_VOXELS:  # type: ignore[operator]
        context.problems.append(Problem(context.trial_file, f"trial {trial!r}: DoseGrid of {dims} voxels of "
                                        f"{voxel} cm is not usable: no dose"))
        return None
    return DoseGrid(origin, voxel, dims)  # type: ignore[arg-type]


def _prescription(obj: PObject) -> Prescription:
    return Prescription(
        name=text(obj, "Name"), dose_cgy=number(obj, "PrescriptionDose"),
        percent=number(obj, "PrescriptionPercent"), fractions=integer(obj, "NumberOfFractions"),
        point_name=text(obj, "PrescriptionPoint"), method=text(obj, "Method"),
        normalization_method=text(obj, "NormalizationMethod"), period=text(obj, "PrescriptionPeriod"),
        weights_proportional_to=text(obj, "WeightsProportionalTo"),
        requested_mu_per_fraction=number(obj, "RequestedMonitorUnitsPerFraction"),
    )


def _beam(
    obj: PObject, index: int, trial: str, grid: DoseGrid | None, prescriptions: tuple[Prescription, ...],
    context: TrialContext,
) -> Beam:
    name = text(obj, "Name") or f"Beam #{index + 1}"
    where = f"trial {trial!r} beam {name!r}"
    machine, _, version = text(obj, "MachineNameAndVersion").partition(":")
    energy = text(obj, "MachineEnergyName")
    manager = child(obj, "CPManager", "CPManagerObject")
    iso_name = text(obj, "IsocenterName")
    if iso_name and iso_name not in context.points:
        context.problems.append(Problem(context.trial_file, f"{where}: isocentre {iso_name!r} is not in "
                                        "plan.Points"))
    info = obj.child("MonitorUnitInfo")
    dpmu = context.calibrations.get((machine.strip(), energy))
    xdr = _xdr(obj.get("DoseVolume"))
    if prescriptions and text(obj, "PrescriptionName") not in {p.name for p in prescriptions}:
        context.problems.append(Problem(context.trial_file, f"{where}: prescription "
                                        f"{text(obj, 'PrescriptionName')!r} not in the trial: no fractions"))
    return Beam(
        number=index + 1, name=name, field_id=text(obj, "FieldID"), isocenter_name=iso_name,
        isocenter_cm=context.points.get(iso_name), prescription_name=text(obj, "PrescriptionName"),
        machine_name=machine.strip(), machine_version=version.strip(), energy_name=energy,
        modality=text(obj, "Modality"), beam_type=text(obj, "SetBeamType"),
        computation_version=text(obj, "ComputationVersion"), gantry_is_ccw=integer(manager, "GantryIsCCW") == 1,
        ssd_cm=number(obj, "SSD"), weight=number(obj, "Weight"),
        monitor_units=_monitor_units(info, dpmu, machine.strip(), energy, where, context),
        normalized_dose=number(info, "NormalizedDose"), prescription_dose_cgy=number(info, "PrescriptionDose"),
        dose_per_mu_at_calibration=dpmu,
        control_points=_control_points(manager, where, context),
        dose_xdr=xdr, dose_file=_dose_file(xdr, grid, where, context),
    )


def _xdr(value: object) -> int | None:
    match = _XDR.match(value.strip()) if isinstance(value, str) else None
    return int(match.group(1)) if match else None


def _monitor_units(
    info: PObject | None, dpmu: float | None, machine: str, energy: str, where: str, context: TrialContext
) -> float | None:
    """MU per fraction, solved from Pinnacle's `Dose = MU × ND × OFc × TTF × (D/MU)cal` (OFc and TTF are 1
    when a version did not write them)."""
    dose, normalized = number(info, "PrescriptionDose"), number(info, "NormalizedDose")
    if dose is None or normalized is None:
        context.problems.append(Problem(context.trial_file, f"{where}: MonitorUnitInfo lacks PrescriptionDose or "
                                        "NormalizedDose: MU unknown"))
        return None
    if normalized == 0 or dose == 0:
        return 0.0
    if dpmu is None or dpmu <= 0:
        context.problems.append(Problem(context.trial_file, f"{where}: machine {machine!r} energy {energy!r} has no "
                                        "DosePerMuAtCalibration in plan.Pinnacle.Machines: MU unknown"))
        return None
    output = number(info, "CollimatorOutputFactor") or 1.0
    transmission = number(info, "TotalTransmissionFraction") or 1.0
    mu = dose / (normalized * output * transmission * dpmu)
    if mu < 0:
        context.problems.append(Problem(context.trial_file, f"{where}: negative MU ({mu:.2f}) from its "
                                        "MonitorUnitInfo: MU unknown"))
        return None
    return mu


def _control_points(manager: PObject | None, where: str, context: TrialContext) -> tuple[ControlPoint, ...]:
    items = objects(child(manager, "ControlPointList"))
    if not items:
        context.problems.append(Problem(context.trial_file, f"{where}: no control point"))
    declared = integer(manager, "NumberOfControlPoints")
    if items and declared is not None and declared != len(items):
        context.problems.append(Problem(context.trial_file, f"{where}: {len(items)} control points where "
                                        f"NumberOfControlPoints says {declared}"))
    return tuple(_control_point(cp, k, where, context) for k, cp in enumerate(items))


def _control_point(obj: PObject, index: int, where: str, context: TrialContext) -> ControlPoint:
    jaws = tuple(number(obj, f"{side}JawPosition") for side in ("Left", "Right", "Top", "Bottom"))
    if None in jaws:
        context.problems.append(Problem(context.trial_file, f"{where} control point {index}: jaw positions "
                                        "incomplete"))
    return ControlPoint(
        index=index, gantry_deg=number(obj, "Gantry"), couch_deg=number(obj, "Couch"),
        collimator_deg=number(obj, "Collimator"), weight=number(obj, "Weight"),
        jaws=None if None in jaws else Jaws(*jaws),  # type: ignore[arg-type]
        mlc_cm=_leaves(child(obj, "MLCLeafPositions", "RawData"), f"{where} control point {index}", context),
        wedge_name=text(child(obj, "WedgeContext"), "WedgeName"),
        wedge_orientation=text(child(obj, "WedgeContext"), "Orientation"),
        wedge_angle=text(child(obj, "WedgeContext"), "Angle"),
        gantry_stop_deg=number(obj, "StopAngle"),
    )


def _leaves(raw: PObject | None, where: str, context: TrialContext) -> tuple[tuple[float, float], ...]:
    values = raw.get("Points") if raw is not None else None
    if not isinstance(values, list) or not values:
        return ()
    if len(values) % 2:
        context.problems.append(Problem(context.trial_file, f"{where}: an odd number of leaf positions "
                                        f"({len(values)}): the last one is left out"))
    pairs = tuple((values[k], values[k + 1]) for k in range(0, len(values) - 1, 2))
    declared = integer(raw, "NumberOfPoints")
    if declared is not None and declared != len(pairs):
        context.problems.append(Problem(context.trial_file, f"{where}: {len(pairs)} leaf pairs where "
                                        f"NumberOfPoints says {declared}"))
    return pairs


def _dose_file(xdr: int | None, grid: DoseGrid | None, where: str, context: TrialContext) -> str | None:
    if xdr is None:
        context.problems.append(Problem(context.trial_file, f"{where}: no DoseVolume reference: no dose"))
        return None
    name = f"{context.directory}/plan.Trial.binary.{xdr:03d}"
    if name not in context.names:
        context.problems.append(Problem(name, f"missing: {where} has no dose (the rest of the plan is still read)"))
        return None
    if grid is None:
        return None
    expected, size = grid.dims[0] * grid.dims[1] * grid.dims[2] * 4, context.source.size(name)
    if size != expected:
        context.problems.append(Problem(name, f"{size} bytes where the dose grid needs {expected}: {where} has "
                                        "no dose"))
        return None
    return name
