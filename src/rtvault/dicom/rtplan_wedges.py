"""A beam's wedge in an RT Plan (docs/design.md, "DICOM export", RTPLAN): the WedgeSequence of the beam and the
WedgePositionSequence of its control points.

A Pinnacle control point names its wedge in its `WedgeContext` (`WedgeName`, `Orientation`, `Angle`); the wedge
itself is an item of the machine's `WedgeList` (`treatment_machines.WedgeGeometry`). WedgeType is DYNAMIC for a
wedge the machine marks `IsDynamic` (an enhanced dynamic wedge), MOTORIZED on a "Motorized Wedge" beam, STANDARD
otherwise. WedgeAngle is the machine's `NominalAngle` for a physical wedge (else the number in its name: "45
Wedge"), the context's `Angle` for a dynamic one (its own per beam: "30"). WedgeOrientation is the IEC 61217 angle
of the wedge from the beam limiting device axes, seen from the source with X1 (Pinnacle's left jaw) to the left and
Y2 (the top jaw) up: 0° for the wedge Pinnacle draws from top to bottom (as Pinnacle's own export writes it), and
each quarter turn counter-clockwise in that view adds 90°, so left-to-right is 90°, bottom-to-top 180°,
right-to-left 270°. What cannot be read so is named and the beam written without its wedge (its dose includes it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from rtvault.dicom.common import format_ds, format_is
from rtvault.pinnacle.treatment_machines import MachineGeometry
from rtvault.pinnacle.treatment_types import Beam, ControlPoint

NO_WEDGE = ("", "No Wedge", "NoWedge", "None")
WEDGE_NUMBER = 1
ORIENTATIONS = {"WedgeTopToBottom": 0.0, "WedgeLeftToRight": 90.0, "WedgeBottomToTop": 180.0,
                "WedgeRightToLeft": 270.0}
_DIGITS = re.compile(r"\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Wedge:
    """The wedge a beam carries, as the RT Plan writes it."""

    name: str
    kind: str  # STANDARD, DYNAMIC or MOTORIZED
    angle_deg: int
    orientation_deg: float
    source_distance_cm: float | None

    def item(self) -> Dataset:
        wedge = Dataset()
        wedge.WedgeNumber = format_is(WEDGE_NUMBER)
        wedge.WedgeType = self.kind
        wedge.WedgeID = self.name[:16]
        wedge.WedgeAngle = format_is(self.angle_deg)
        wedge.WedgeFactor = ""
        wedge.WedgeOrientation = format_ds(self.orientation_deg)
        if self.source_distance_cm:
            wedge.SourceToWedgeTrayDistance = format_ds(10.0 * self.source_distance_cm)
        return wedge


def carries(cp: ControlPoint) -> bool:
    return cp.wedge_name.strip() not in NO_WEDGE


def beam_wedge(beam: Beam, geometry: MachineGeometry | None) -> tuple[Wedge | None, str]:
    """The beam's wedge and "", or None and why it cannot be written ("" when the beam has no wedge)."""
    wedged = [cp for cp in beam.control_points if carries(cp)]
    if not wedged:
        return None, ""
    names = sorted({cp.wedge_name for cp in wedged})
    if len(names) > 1:
        return None, f"several wedges ({', '.join(map(repr, names))}) in one beam"
    context = wedged[0]
    name = context.wedge_name
    known = geometry.wedges.get(name) if geometry is not None else None
    if known is None:
        return None, f"wedge {name!r} is not in the WedgeList of machine {beam.machine_name!r}"
    orientations = {cp.wedge_orientation for cp in wedged}
    orientation = ORIENTATIONS.get(context.wedge_orientation)
    if orientation is None or len(orientations) > 1:
        return None, f"wedge {name!r} has orientation {context.wedge_orientation!r}, not one of {sorted(ORIENTATIONS)}"
    angle = _angle(context, known.nominal_angle_deg, known.dynamic)
    if angle is None:
        return None, f"wedge {name!r} gives no angle (machine NominalAngle, context Angle {context.wedge_angle!r})"
    kind = "DYNAMIC" if known.dynamic else "MOTORIZED" if "motorized" in beam.beam_type.lower() else "STANDARD"
    return Wedge(name, kind, angle, orientation, known.source_distance_cm), ""


def _angle(context: ControlPoint, nominal: float | None, dynamic: bool) -> int | None:
    if dynamic:
        chosen = _DIGITS.fullmatch(context.wedge_angle.strip())
        return round(float(chosen.group())) if chosen else _in_name(context.wedge_name)
    if nominal is not None and nominal > 0:
        return round(nominal)
    return _in_name(context.wedge_name)


def _in_name(name: str) -> int | None:
    found = _DIGITS.search(name)
    return round(float(found.group())) if found and 0 < float(found.group()) < 90 else None


def wedge_position(cp: ControlPoint) -> Sequence:
    """The WedgePositionSequence of a control point: the beam's wedge IN when the Pinnacle control point carries it."""
    position = Dataset()
    position.WedgePosition = "IN" if carries(cp) else "OUT"
    position.ReferencedWedgeNumber = format_is(WEDGE_NUMBER)
    return Sequence([position])
