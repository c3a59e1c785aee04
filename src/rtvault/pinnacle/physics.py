"""Physics: the machines of a PinnacleSiteData tree (`Physics/ReadOnlyMachineDB/Machine.<n>/Pinnacle.Machine`, one
machine each) and the machines a plan names (`plan.Pinnacle.Machines`, one `#N ={...}` item per machine).

Both files are Pinnacle's text grammar; a machine is read for what a physicist asks of it years later: its name and
type, its energies (photon and electron: name, nominal value), its version timestamp and description, and the
commissioning and writing dates it holds. A truncated, Latin-1 or incomplete file gives what could be read and
warnings naming the file; nothing here raises on bad content.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from rtvault.errors import Problem
from rtvault.pinnacle.dates import DateProblem, normalise_datetime
from rtvault.pinnacle.grammar import PObject, parse_bytes, read_regular

MACHINE_DB = "Physics/ReadOnlyMachineDB"
MACHINE_FILE = "Pinnacle.Machine"
PLAN_MACHINES = "plan.Pinnacle.Machines"
# Where a machine's files lie in a physics tree, relative to its root (a PinnacleSiteData or the root above it).
MACHINE_DIR = re.compile(r"\A((?:.*/)?Physics/ReadOnlyMachineDB/Machine\.\d+)/")
ENERGY_LISTS = (("photon", "PhotonEnergyList"), ("electron", "ElectronEnergyList"))
# Dates a machine holds besides its VersionTimestamp: (field, key in the machine's ObjectVersion).
_OBJECT_DATES = (("created", "CreateTimeStamp"), ("written", "WriteTimeStamp"), ("modified", "LastModifiedTimeStamp"))


@dataclass(frozen=True)
class Energy:
    """One energy a machine is commissioned for: `6X`, `15X`, `9E`..."""

    kind: str  # "photon" or "electron"
    name: str
    value: float | None  # the nominal energy (MV or MeV); None when absent or not a number

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "name": self.name, "value": self.value}


@dataclass(frozen=True)
class Machine:
    """A machine as its Pinnacle file describes it; dates are ISO 8601 (`2020-01-01T10:00:00`) or None."""

    name: str
    machine_type: str = ""
    version_timestamp: str | None = None
    version_description: str = ""
    commissioned_by: str = ""
    commission_version: str = ""  # the Pinnacle version it was commissioned with
    created: str | None = None
    written: str | None = None
    modified: str | None = None
    energies: tuple[Energy, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "machine_type": self.machine_type, "version_timestamp": self.version_timestamp,
                "version_description": self.version_description, "commissioned_by": self.commissioned_by,
                "commission_version": self.commission_version, "created": self.created, "written": self.written,
                "modified": self.modified, "energies": [e.to_json() for e in self.energies]}


@dataclass
class MachineReading:
    """The machines one file holds, and what could not be read in it."""

    machines: list[Machine] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def _text(obj: PObject, key: str) -> str:
    value = obj.get(key)
    return "" if value is None or isinstance(value, PObject | list) else str(value).strip()


def _number(obj: PObject, key: str) -> float | None:
    value = obj.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _date(obj: PObject | None, key: str, what: str, name: str, warnings: list[Problem]) -> str | None:
    if obj is None:
        return None
    try:
        return normalise_datetime(_text(obj, key))
    except DateProblem as problem:
        warnings.append(Problem(name, f"{what}: {problem}", obj.line))
        return None


def _energies(machine: PObject) -> tuple[Energy, ...]:
    found: list[Energy] = []
    for kind, key in ENERGY_LISTS:
        listed = machine.child(key)
        for item in listed.items_list() if listed is not None else ():
            if isinstance(item, PObject):
                found.append(Energy(kind, _text(item, "Name"), _number(item, "Value")))
    return tuple(found)


def machine_of(obj: PObject, name: str, warnings: list[Problem]) -> Machine | None:
    """The machine an object describes (a Pinnacle.Machine file's root, or an item of plan.Pinnacle.Machines);
    None, with a warning, when it has no name."""
    title = _text(obj, "Name")
    if not title:
        warnings.append(Problem(name, "a machine without a Name: not listed", obj.line))
        return None
    version = obj.child("ObjectVersion")
    dates = {f: _date(version, key, f"machine {title!r} {key}", name, warnings) for f, key in _OBJECT_DATES}
    return Machine(
        title, _text(obj, "MachineType"),
        _date(obj, "VersionTimestamp", f"machine {title!r} VersionTimestamp", name, warnings),
        _text(obj, "VersionDescription"), _text(obj, "CommissionedBy"), _text(obj, "CommissionVersion"),
        dates["created"], dates["written"], dates["modified"], _energies(obj))


def read_machines(data: bytes, name: str) -> MachineReading:
    """Every machine of a `Pinnacle.Machine` (one, at the file's top level) or a `plan.Pinnacle.Machines` file
    (one per `#N` item); `name` names the file in warnings."""
    parsed = parse_bytes(data, name)
    reading = MachineReading(warnings=list(parsed.problems))
    root = parsed.root
    items = [root] if "Name" in root else [v for k, v in root.entries if k.startswith("#") and isinstance(v, PObject)]
    for item in items:
        if (machine := machine_of(item, name, reading.warnings)) is not None:
            reading.machines.append(machine)
    if not items:
        reading.warnings.append(Problem(name, "no machine in this file"))
    return reading


def read_machine_file(path: Path, name: str) -> MachineReading:
    """`read_machines` of a file on disk; a file that cannot be read is a warning."""
    try:
        data = read_regular(path)
    except OSError as error:
        return MachineReading(warnings=[Problem(name, f"cannot read: {error.strerror or error}")])
    return read_machines(data, name)


_PLAN_CACHE: dict[str, tuple[tuple[str, ...], tuple[tuple[str, int | None], ...]]] = {}
_PLAN_CACHE_SIZE = 64


def plan_machine_names(data: bytes, name: str) -> tuple[tuple[str, ...], list[Problem]]:
    """The names of the machines a `plan.Pinnacle.Machines` names, and the warnings of reading it. The file is
    large (700 KB) and byte-identical in every plan of a department: it is parsed once per distinct content."""
    digest = hashlib.sha256(data).hexdigest()
    if (known := _PLAN_CACHE.get(digest)) is None:
        reading = read_machines(data, "")
        known = (tuple(m.name for m in reading.machines), tuple((w.message, w.line) for w in reading.warnings))
        if len(_PLAN_CACHE) >= _PLAN_CACHE_SIZE:
            _PLAN_CACHE.pop(next(iter(_PLAN_CACHE)))
        _PLAN_CACHE[digest] = known
    names, warnings = known
    return names, [Problem(name, message, line) for message, line in warnings]
