"""`generate_physics` and `evolve_physics`: a synthetic PinnacleSiteData tree, and its machines recommissioned.

The tree holds the machines the plans of a generated database name (`plan.Pinnacle.Machines`), one
`Physics/ReadOnlyMachineDB/Machine.<n>/Pinnacle.Machine` each with its commissioning measurements
(`Commissioning/<energy>.MeasuredData`), the department's scripts (`Scripts/`) and the couch's solid models
(`Physics/SolidModels/`). Output is a pure function of the seed. A working day D recommissions machine
(D - 1) mod N: its `VersionTimestamp` becomes that day's evening, its description says so and the calibration of its
first energy changes by a few per mille, so that successive backups of the tree hold successive machine versions.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from rtvault.demo import clock
from rtvault.demo.generate import Tally, settle_directory_mtimes
from rtvault.demo.machines import MACHINE_ENERGIES, MACHINE_NAMES, machine_entries
from rtvault.demo.syntax import Entries, Numbers, document, make_stamp, restamp
from rtvault.errors import InputError
from rtvault.pinnacle.physics import MACHINE_DB, MACHINE_FILE

GENERATED_BY = "rtvault demo"  # the CommissionedBy of every generated machine: a real tree is never evolved
_COMMISSIONED = clock.at(clock.working_day(-1000), clock.office_minute(0.5))  # before any patient's history
_TIMESTAMP_RE = re.compile(r'^VersionTimestamp = "[^"]*";$', re.M)
_DESCRIPTION_RE = re.compile(r'^VersionDescription = "[^"]*";$', re.M)
_CALIBRATION_RE = re.compile(r"^(\s+DosePerMuAtCalibration = )([0-9.eE+-]+);$", re.M)
_SCRIPTS = {
    "Scripts/HotScripts/ExportDicomRT.Script": [("PluginManager .DicomExport .Destination", "ARIA"),
                                                ("PluginManager .DicomExport .Execute", "")],
    "Scripts/HotScripts/PrintPlanReport.Script": [("PrintManager .Printer", "Dosimetrie-Couleur"),
                                                  ("PrintManager .PrintPlanReport", "")],
}


@dataclass
class PhysicsTree:
    """What `generate_physics` wrote: paths relative to the tree's root."""

    out: Path
    machines: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    bytes: int = 0

    def to_json(self) -> dict[str, object]:
        return {"out": str(self.out), "machines": self.machines, "files": len(self.files), "bytes": self.bytes}


@dataclass
class Recommissioned:
    """What one day changed in a physics tree."""

    machine: str
    version_timestamp: str  # as Pinnacle writes it: `YYYY-MM-DD HH:MM:SS`
    edited: list[str]


def machine_file(index: int) -> str:
    return f"{MACHINE_DB}/Machine.{index}/{MACHINE_FILE}"


def _measured(value: float, name: str) -> Entries:
    """A commissioning measurement: depth doses of a few field sizes, as a scanning tank gives them."""
    dmax = 0.15 * value + 0.6
    curves: Entries = []
    for size in (5, 10, 20):
        points: list[float] = []
        for step in range(60):
            depth = step * 0.5
            dose = 100 * (1 - math.exp(-depth / (dmax / 2.5))) * math.exp(-0.045 * max(0.0, depth - dmax))
            points += [depth, round(dose * (1 + size / 400), 3)]
        curves.append(("DepthDose", [("FieldSize", size), ("SSD", 90), ("Points", Numbers(points))]))
    return [("Energy", name), ("NominalValue", value), ("Detector", "CC13"), ("DepthDoseList", curves)]


def _solid_model(width: float) -> Entries:
    corners = [x * width / 2 for x in (-1, 1)]
    vertices = [v for x in corners for y in (-5.0, 0.0) for z in (-100.0, 100.0) for v in (x, y, z)]
    return [("Name", f"Table {width:g} cm"), ("Material", "Carbon fibre"), ("Density", 0.45),
            ("Vertices", Numbers(vertices, 3))]


def generate_physics(out: Path, seed: int = 0) -> PhysicsTree:
    """Write a synthetic PinnacleSiteData tree at `out` (new or empty); same seed, same bytes and mtimes."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out} exists and is not an empty directory: choose a new directory.")
    rng = random.Random(f"physics:{seed}")
    tally, tree = Tally(out), PhysicsTree(out)

    def write(name: str, entries: Entries) -> None:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        data = document(entries, make_stamp(rng))
        tally.write(name, data, _COMMISSIONED)
        tree.files.append(name)
        tree.bytes += len(data)

    for index, name in enumerate(MACHINE_NAMES):
        write(machine_file(index), machine_entries(index, GENERATED_BY))
        for value, energy in MACHINE_ENERGIES[index]:
            write(f"{MACHINE_DB}/Machine.{index}/Commissioning/{energy.replace(' ', '_')}.MeasuredData",
                  _measured(value, energy))
        tree.machines.append(name)
    for name, lines in _SCRIPTS.items():
        write(name, lines)
    for width in (50, 53):
        write(f"Physics/SolidModels/Couch_{width}.SolidModel", _solid_model(width))
    settle_directory_mtimes(out)
    return tree


def _generated_machines(root: Path) -> list[Path]:
    files = sorted((root / MACHINE_DB).glob(f"Machine.*/{MACHINE_FILE}"))
    if not files:
        raise InputError(f"{root} is not a physics tree: no {MACHINE_DB}/Machine.<n>/{MACHINE_FILE}.")
    for path in files:
        if f'\nCommissionedBy = "{GENERATED_BY}";\n' not in path.read_bytes().decode("latin-1"):
            raise InputError(f"{path} was not written by `rtvault demo physics`: refusing to change real physics.")
    return files


def is_physics_tree(root: Path) -> bool:
    return (root / MACHINE_DB).is_dir()


def evolve_physics(root: Path, day: int) -> Recommissioned:
    """Recommission machine (day - 1) mod N of the generated physics tree at `root` on working day `day` (>= 1)."""
    if day < 1:
        raise InputError(f"--day must be 1 or more, not {day}.")
    files = _generated_machines(root)
    path = files[(day - 1) % len(files)]
    when = clock.at(clock.working_day(day), clock.office_minute(0.85))
    stamp = clock.text(when)
    text = path.read_bytes().decode("latin-1")
    text = _TIMESTAMP_RE.sub(f'VersionTimestamp = "{stamp}";', text, count=1)
    text = _DESCRIPTION_RE.sub(f'VersionDescription = "contrôle qualité du {when:%d/%m/%Y}";', text, count=1)
    factor = 1 + (0.002 if day % 2 else -0.0015)
    text = _CALIBRATION_RE.sub(lambda m: f"{m.group(1)}{float(m.group(2)) * factor:.6g};", text, count=1)
    relative = path.relative_to(root).as_posix()
    path.write_bytes(restamp(text.encode("latin-1"), make_stamp(random.Random(f"{relative}:{day}"))))
    clock.set_mtime(path, when)
    settle_directory_mtimes(root)
    name = re.search(r'^Name = "([^"]*)";$', text, re.M)
    return Recommissioned(name.group(1) if name else path.parent.name, stamp, [relative])
