"""The geometry of a plan's machines that an RT Plan needs and the treatment model does not keep: the source-axis
distance, the MLC's leaf pairs (`MultiLeaf .LeafPairList`) and the wedges (`WedgeList`), read from the plan's
`plan.Pinnacle.Machines`.

Leaf pairs: each `MLCLeafPair` has a `YCenterPosition` and a `Width` (cm at the isocentre plane); with
`NegateLeafCoordinate = 1` the centre's sign is flipped to give IEC 61217 Y (the real sample's first pair is at
−19.5, which its plan.Trial labels "1. Y = 19.50 cm"). Pair k of the file is row k of every control point's
`MLCLeafPositions`. Wedges: each `Wedge` of the `WedgeList` by its `Name`, with its `NominalAngle` (degrees; 0 for
a dynamic wedge, whose angle each beam chooses), `IsDynamic` (1: an enhanced dynamic wedge made by a moving jaw) and
`SourceToWedgeDistance` (cm). Never raises on bad content: a machine whose leaves cannot be read has none.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from rtvault.pinnacle.grammar import PObject, parse_bytes
from rtvault.pinnacle.physics import PLAN_MACHINES
from rtvault.pinnacle.treatment_fields import child, integer, number, objects, text
from rtvault.pinnacle.treatment_source import PatientFiles

_CACHE: dict[str, dict[str, MachineGeometry]] = {}
_CACHE_SIZE = 16


@dataclass(frozen=True)
class WedgeGeometry:
    """A wedge of a machine's `WedgeList`."""

    name: str
    nominal_angle_deg: float | None  # NominalAngle; None when absent, 0 for a dynamic wedge
    dynamic: bool  # IsDynamic = 1: an enhanced dynamic wedge (a jaw sweeps), else a physical wedge
    source_distance_cm: float | None  # SourceToWedgeDistance


@dataclass(frozen=True)
class MachineGeometry:
    """A machine's SAD, leaf pairs (`leaf_y_cm[k]` and `leaf_width_cm[k]` are row k's IEC Y centre and width) and
    wedges by name."""

    name: str
    sad_cm: float | None
    leaf_y_cm: tuple[float, ...]
    leaf_width_cm: tuple[float, ...]
    wedges: dict[str, WedgeGeometry] = field(default_factory=dict)


def machine_geometry(source: PatientFiles, plan_directory: str) -> dict[str, MachineGeometry]:
    """The machines of `Plan_K/plan.Pinnacle.Machines` by name; empty when the file is missing or unreadable (the
    treatment model already names it). The file is the same in every plan of a department: read once per content."""
    try:
        data = source.read(f"{plan_directory}/{PLAN_MACHINES}")
    except OSError:
        return {}
    digest = hashlib.sha256(data).hexdigest()
    if (known := _CACHE.get(digest)) is None:
        root = parse_bytes(data, "").root
        items = [v for k, v in root.entries if k.startswith("#") and isinstance(v, PObject)]
        known = {g.name: g for g in (_geometry(item) for item in items) if g.name}
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[digest] = known
    return known


def _geometry(machine: PObject) -> MachineGeometry:
    wedges = {w.name: w for w in map(_wedge, objects(machine.child("WedgeList"))) if w.name}
    centres, widths = [], []
    for pair in objects(child(machine, "MultiLeaf", "LeafPairList")):
        centre, width = number(pair, "YCenterPosition"), number(pair, "Width")
        if centre is None or width is None or width <= 0:
            return MachineGeometry(text(machine, "Name"), number(machine, "SAD"), (), (), wedges)
        centres.append(-centre if integer(pair, "NegateLeafCoordinate") == 1 else centre)
        widths.append(width)
    return MachineGeometry(text(machine, "Name"), number(machine, "SAD"), tuple(centres), tuple(widths), wedges)


def _wedge(wedge: PObject) -> WedgeGeometry:
    return WedgeGeometry(text(wedge, "Name"), number(wedge, "NominalAngle"), integer(wedge, "IsDynamic") == 1,
                         number(wedge, "SourceToWedgeDistance"))
