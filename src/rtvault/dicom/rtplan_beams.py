"""One beam of an RT Plan: its beam limiting devices (ASYMX, ASYMY and the machine's MLCX), and its own control
points (docs/design.md, "DICOM export", RTPLAN).

Pinnacle's segment k of a beam (its `ControlPointList` item k: angles, jaws, leaves, `Weight`) becomes two DICOM
control points with that segment's jaws and leaves, at cumulative meterset weights W(k) and W(k+1), where W(k) is
the sum of the weights of the segments before it divided by the beam's total (so each beam runs 0 → 1 by its own
weights). Jaws: X1 = −10·Left, X2 = 10·Right, Y1 = −10·Bottom, Y2 = 10·Top (mm). Leaves: Pinnacle's pair k is
(B, A) with B counted positive when open past the axis like the left jaw: X1 = −10·B, X2 = 10·A, written in the
order of increasing IEC Y (Pinnacle lists them from +Y down). The couch is IEC 61217 (`couch_iec`: 10° → 350°).

An arc beam (`Beam.is_arc`) is DYNAMIC: Pinnacle's control point k is the sector of the arc from its `Gantry` to the
next one's (the last to its `StopAngle`), so n Pinnacle control points are n + 1 DICOM ones, at the gantry angles of
`Beam.arc_path` with its rotation direction (CW, or CC when `GantryIsCCW`; NONE on the last), cumulative weights
W(0..n), and the jaws and leaves of the sector they start (the stop angle keeps the last sector's). A Conformal Arc
with a single control point is thus two DICOM control points, start and stop. Wedges: `rtplan_wedges.py`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from rtvault.dicom.common import format_ds, format_ds_list, format_is
from rtvault.dicom.rtplan_wedges import Wedge, beam_wedge, carries, wedge_position
from rtvault.errors import Problem
from rtvault.pinnacle.coordinates import couch_iec, to_dicom_mm
from rtvault.pinnacle.physics import Energy
from rtvault.pinnacle.treatment_machines import MachineGeometry
from rtvault.pinnacle.treatment_types import Beam, ControlPoint, Plan, Trial

# One DICOM control point: its cumulative weight, the Pinnacle control point it takes its jaws, leaves, collimator
# and couch from, and on an arc its gantry angle and rotation direction.
Step = tuple[float, ControlPoint, tuple[float, str] | None]


@dataclass(frozen=True)
class BeamContext:
    """What a trial's beams are written against: the plan, the machines' geometry, where problems are filed."""

    plan: Plan
    trial: Trial
    machines: dict[str, MachineGeometry]
    where: str  # "Plan_K/plan.Trial"
    problems: list[Problem]

    def note(self, beam: Beam, message: str) -> None:
        self.problems.append(Problem(self.where, f"trial {self.trial.name!r} beam {beam.name!r}: {message}"))


def beam_item(beam: Beam, context: BeamContext) -> Dataset | None:
    """The BeamSequence item of a beam; None, with a problem, when its control points cannot be written."""
    reason = _unwritable(beam)
    if reason:
        context.note(beam, f"{reason}: the beam is left out of the RT Plan")
        return None
    item = Dataset()
    item.BeamNumber = format_is(beam.number)
    item.BeamName = (beam.field_id or beam.name)[:64]
    item.BeamDescription = beam.name[:64]
    item.BeamType = "STATIC" if len(beam.control_points) == 1 and not beam.is_arc else "DYNAMIC"
    item.RadiationType = _radiation_type(beam, context)
    item.TreatmentMachineName = beam.machine_name[:16]
    item.PrimaryDosimeterUnit = "MU"
    geometry = context.machines.get(beam.machine_name)
    if geometry is not None and geometry.sad_cm:
        item.SourceAxisDistance = format_ds(10.0 * geometry.sad_cm)
    leaves = _leaf_order(beam, geometry, context)
    item.BeamLimitingDeviceSequence = Sequence(_devices(geometry, leaves))
    if "FFF" in beam.energy_name.upper().replace(" ", ""):
        mode = Dataset()
        mode.FluenceMode, mode.FluenceModeID = "NON_STANDARD", "FFF"
        item.PrimaryFluenceModeSequence = Sequence([mode])
    item.ReferencedPatientSetupNumber = "1"
    item.TreatmentDeliveryType = "TREATMENT"
    item.NumberOfCompensators = item.NumberOfBoli = item.NumberOfBlocks = "0"
    wedge, reason = beam_wedge(beam, geometry)
    if reason:
        context.note(beam, f"{reason}: its wedge is not written in the RT Plan (the dose includes it)")
    item.NumberOfWedges = "1" if wedge is not None else "0"
    if wedge is not None:
        item.WedgeSequence = Sequence([wedge.item()])
    item.FinalCumulativeMetersetWeight = "1"
    points = _control_points(beam, leaves, wedge, context)
    item.NumberOfControlPoints = format_is(len(points))
    item.ControlPointSequence = Sequence(points)
    if beam.monitor_units is None:
        context.note(beam, f"MU unknown (machine {beam.machine_name!r} energy {beam.energy_name!r} not matched in "
                     "plan.Pinnacle.Machines, or MonitorUnitInfo incomplete): BeamMeterset left out")
    return item


def _unwritable(beam: Beam) -> str:
    cps = beam.control_points
    if not cps:
        return "no control point"
    if beam.is_arc and beam.arc_path() is None:
        return (f"{beam.beam_type!r} beam: a gantry angle or its stop angle (StopAngle of its last control point) is "
                "unknown")
    if len(cps) > 1 and any(cp.weight is None or cp.weight < 0 for cp in cps):
        return "a control point has no weight"
    if len(cps) > 1 and sum(cp.weight or 0.0 for cp in cps) <= 0:
        return "its control points' weights add up to zero"
    if any(cp.jaws is None for cp in cps):
        return "a control point has no jaw positions"
    if any(a is None for cp in cps for a in (cp.gantry_deg, cp.collimator_deg, cp.couch_deg)):
        return "a control point has no gantry, collimator or couch angle"
    return ""


def _radiation_type(beam: Beam, context: BeamContext) -> str:
    modality = beam.modality.lower()
    if modality.startswith("photon"):
        return "PHOTON"
    if modality.startswith("electron"):
        return "ELECTRON"
    energy = _energy(beam, context)
    if energy is not None:
        return energy.kind.upper()
    context.note(beam, f"modality {beam.modality!r} is neither photons nor electrons: RadiationType left empty")
    return ""


def _energy(beam: Beam, context: BeamContext) -> Energy | None:
    machine = next((m for m in context.plan.machines if m.name == beam.machine_name), None)
    if machine is None:
        return None
    return next((e for e in machine.energies if e.name == beam.energy_name), None)


def _leaf_order(beam: Beam, geometry: MachineGeometry | None, context: BeamContext) -> list[int] | None:
    """The Pinnacle rows of the leaf pairs in increasing IEC Y; None when the beam's MLC is not written."""
    counts = {len(cp.mlc_cm) for cp in beam.control_points}
    if counts == {0}:
        return None
    if geometry is None or not geometry.leaf_y_cm:
        context.note(beam, f"machine {beam.machine_name!r} has no leaf pairs in plan.Pinnacle.Machines: its MLC "
                     "is left out")
        return None
    if counts != {len(geometry.leaf_y_cm)}:
        context.note(beam, f"{sorted(counts)} leaf pairs where machine {beam.machine_name!r} has "
                     f"{len(geometry.leaf_y_cm)}: its MLC is left out")
        return None
    return sorted(range(len(geometry.leaf_y_cm)), key=lambda k: geometry.leaf_y_cm[k])


def leaf_boundaries_mm(geometry: MachineGeometry, order: list[int]) -> list[float]:
    """N + 1 boundaries: the outer edges from the first and last widths, the midpoints between centres inside."""
    centres = [geometry.leaf_y_cm[k] for k in order]
    widths = [geometry.leaf_width_cm[k] for k in order]
    inner = [(a + b) / 2 for a, b in itertools.pairwise(centres)]
    return [10.0 * v for v in (centres[0] - widths[0] / 2, *inner, centres[-1] + widths[-1] / 2)]


def _devices(geometry: MachineGeometry | None, leaves: list[int] | None) -> list[Dataset]:
    devices = []
    for kind in ("ASYMX", "ASYMY"):
        device = Dataset()
        device.RTBeamLimitingDeviceType = kind
        device.NumberOfLeafJawPairs = "1"
        devices.append(device)
    if leaves is not None and geometry is not None:
        mlc = Dataset()
        mlc.RTBeamLimitingDeviceType = "MLCX"
        mlc.NumberOfLeafJawPairs = format_is(len(leaves))
        mlc.LeafPositionBoundaries = format_ds_list(leaf_boundaries_mm(geometry, leaves))
        devices.append(mlc)
    return devices


def cumulative_weights(beam: Beam) -> list[float]:
    """W(0) = 0, W(k) = Σ weights of segments before k ÷ the beam's total, W(n) = 1."""
    weights = [cp.weight or 0.0 for cp in beam.control_points] if len(beam.control_points) > 1 else [1.0]
    total, running, out = sum(weights), 0.0, [0.0]
    for weight in weights:
        running += weight
        out.append(running / total)
    out[-1] = 1.0
    return out


def steps(beam: Beam) -> list[Step]:
    """The DICOM control points of a beam: two per segment, or on an arc one per sector start and its stop."""
    weights, cps = cumulative_weights(beam), beam.control_points
    path = beam.arc_path() if beam.is_arc else None
    if path is not None:
        return [(weights[j], cps[min(j, len(cps) - 1)], path[j]) for j in range(len(path))]
    return [(edge, cp, None) for k, cp in enumerate(cps) for edge in (weights[k], weights[k + 1])]


def _control_points(beam: Beam, leaves: list[int] | None, wedge: Wedge | None,
                    context: BeamContext) -> list[Dataset]:
    items: list[Dataset] = []
    previous: Step | None = None
    for step in steps(beam):
        weight, cp, _ = step
        item = Dataset()
        item.ControlPointIndex = format_is(len(items))
        item.CumulativeMetersetWeight = format_ds(weight)
        if not items:
            _first(item, beam, context)
        _angles(item, step, previous)
        if wedge is not None and (previous is None or carries(previous[1]) != carries(cp)):
            item.WedgePositionSequence = wedge_position(cp)
        item.BeamLimitingDevicePositionSequence = Sequence(_positions(cp, leaves))
        items.append(item)
        previous = step
    return items


def _first(item: Dataset, beam: Beam, context: BeamContext) -> None:
    """What only control point 0 carries: energy, isocentre, SSD, table top (Type 2: empty)."""
    energy = _energy(beam, context)
    if energy is not None and energy.value is not None:
        item.NominalBeamEnergy = format_ds(energy.value)
    else:
        context.note(beam, f"energy {beam.energy_name!r} of machine {beam.machine_name!r} not in "
                     "plan.Pinnacle.Machines: NominalBeamEnergy left out")
    frame = context.plan.frame
    if beam.isocenter_cm is not None and frame is not None:
        item.IsocenterPosition = format_ds_list(to_dicom_mm(beam.isocenter_cm, frame))
    else:
        item.IsocenterPosition = ""
        context.note(beam, f"isocentre {beam.isocenter_name!r} not placed: IsocenterPosition left empty")
    if beam.ssd_cm is not None and beam.ssd_cm > 0:
        item.SourceToSurfaceDistance = format_ds(10.0 * beam.ssd_cm)
    item.TableTopEccentricAngle = "0"
    item.TableTopEccentricRotationDirection = "NONE"
    item.TableTopVerticalPosition = item.TableTopLongitudinalPosition = item.TableTopLateralPosition = ""


def _angles(item: Dataset, step: Step, before: Step | None) -> None:
    """Angles on the first control point, and wherever one (or the gantry's direction) changes (Type 1C)."""
    cp, previous = step[1], before[1] if before is not None else None
    assert cp.collimator_deg is not None and cp.couch_deg is not None
    gantry = _gantry(step)
    if before is None or _gantry(before) != gantry:
        item.GantryAngle = format_ds(gantry[0])
        item.GantryRotationDirection = gantry[1]
    if previous is None or previous.collimator_deg != cp.collimator_deg:
        item.BeamLimitingDeviceAngle = format_ds(cp.collimator_deg % 360.0)
        item.BeamLimitingDeviceRotationDirection = "NONE"
    if previous is None or previous.couch_deg != cp.couch_deg:
        item.PatientSupportAngle = format_ds(couch_iec(cp.couch_deg))
        item.PatientSupportRotationDirection = "NONE"


def _gantry(step: Step) -> tuple[float, str]:
    """The gantry angle (0 ≤ a < 360) and rotation direction of a DICOM control point."""
    _, cp, arc = step
    assert cp.gantry_deg is not None
    return arc or (cp.gantry_deg % 360.0, "NONE")


def _positions(cp: ControlPoint, leaves: list[int] | None) -> list[Dataset]:
    assert cp.jaws is not None
    jaws = cp.jaws
    values = [("ASYMX", [-10.0 * jaws.left, 10.0 * jaws.right]), ("ASYMY", [-10.0 * jaws.bottom, 10.0 * jaws.top])]
    if leaves is not None:
        bank_b = [-10.0 * cp.mlc_cm[k][0] for k in leaves]
        bank_a = [10.0 * cp.mlc_cm[k][1] for k in leaves]
        values.append(("MLCX", bank_b + bank_a))
    positions = []
    for kind, numbers in values:
        position = Dataset()
        position.RTBeamLimitingDeviceType = kind
        position.LeafJawPositions = format_ds_list(numbers)
        positions.append(position)
    return positions
