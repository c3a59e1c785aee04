"""`rtvault archive export --with-physics DIR`: beside the patient's tar, the physics in force for the exported version
(an archive's recorded physics snapshots; for a snapshot version, those `machines.physics_at` finds), written
byte for byte through the restore code path (`restore_all` of each physics snapshot), so that the plan can be
reopened on another Pinnacle; and the machines the patient's plans name that this physics lacks.

One physics snapshot is written into DIR itself; several (a site with several physics sources) each into
DIR/<source>.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rtvault.archive.formats import PhysicsInForce
from rtvault.errors import InputError, RtvaultError
from rtvault.jobs.machines import machine_names
from rtvault.jobs.restore import RestoreIncomplete, restore_all
from rtvault.store import Store


@dataclass(frozen=True)
class PhysicsExport:
    """The physics written with an export: from which snapshots, how many files, the machines the patient's plans
    name and those the physics lacks, what could not be written and the machine folders whose name is unknown."""

    out: str
    snapshots: tuple[PhysicsInForce, ...]
    files: int
    machines: tuple[str, ...]
    missing_machines: tuple[str, ...]
    not_written: tuple[str, ...] = ()
    unread: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"out": self.out, "snapshots": [s.to_json() for s in self.snapshots], "files": self.files,
                "machines": list(self.machines), "missing_machines": list(self.missing_machines),
                "not_written": list(self.not_written), "unread": list(self.unread)}

    def faults(self) -> list[str]:
        """What makes the export partial, one line each."""
        return [*(f"the machine {name!r} the patient's plans name is not in the physics written to {self.out}"
                  for name in self.missing_machines), *(f"physics not written: {n}" for n in self.not_written)]


def check_destination(physics: Sequence[PhysicsInForce], version: str, destination: Path, force: bool) -> None:
    """Refuse, before anything is written, an export whose physics cannot be: none in force, or DIR not empty."""
    if not physics:
        raise InputError(f"no physics snapshot is recorded for {version}: export without --with-physics, or write "
                         "the physics of its date with `rtvault restore --physics --to DIR --at DATE`")
    if destination.exists() and (not destination.is_dir() or (any(destination.iterdir()) and not force)):
        raise InputError(f"{destination} exists and is not an empty directory: choose another --with-physics "
                         "or use --force")


def write_physics(store: Store, physics: Sequence[PhysicsInForce], destination: Path, machines: Iterable[str],
                  force: bool) -> PhysicsExport:
    """Each physics snapshot restored whole under `destination`; then the patient's machines it lacks."""
    files, found, not_written, unread = 0, set[str](), [], []
    for item in physics:
        target = destination if len(physics) == 1 else destination / item.source
        try:
            files += restore_all(store, target, snapshot=item.snapshot, source=item.source, force=force).files
        except RestoreIncomplete as error:
            files += error.summary.files
            not_written += [f"{item.source}: {f['patient'] or 'the physics tree'}: {f['reason']}"
                            for f in error.summary.failed]
        except RtvaultError as error:
            not_written.append(f"snapshot {item.snapshot} of {item.source}: {error}")
            continue
        try:
            names, problems = machine_names(store, item.snapshot)
        except RtvaultError as error:
            names, problems = set(), [f"snapshot {item.snapshot}: {error}"]
        found |= names
        unread += problems
    named = tuple(sorted(set(machines)))
    return PhysicsExport(str(destination), tuple(physics), files, named,
                         tuple(m for m in named if m not in found), tuple(not_written), tuple(unread))
