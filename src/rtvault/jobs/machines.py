"""`rtvault machines`: the machines of a store's physics snapshots (kind `pinnacle-physics`) and their versions
over time; and the physics snapshot in force at a date, which `rtvault restore --physics` writes back.

A machine is a `Physics/ReadOnlyMachineDB/Machine.<n>/` folder of a physics tree, named by its `Pinnacle.Machine`.
One of its *versions* is one distinct content of that folder (its files' names and hashes: the machine file and
its commissioning data), with the snapshots that hold it, the first and last of them. `--at DATE` keeps, per
source, the physics snapshot in force then (the newest at or before it) and the version each machine had in it.
A machine file the store cannot give is named, and the exit code says partial; a machine file that reads with
problems (an ambiguous date, a truncated file) is listed with those warnings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from rtvault.archive.formats import PhysicsInForce
from rtvault.config.settings import PHYSICS_KIND
from rtvault.errors import InputError, PartialResult, Problem, StoreError
from rtvault.events import Progress
from rtvault.jobs.history import parse_time
from rtvault.jobs.restore import RestoreSummary, restore_all
from rtvault.pinnacle.physics import MACHINE_DIR, MACHINE_FILE, Machine, read_machines
from rtvault.report import OK, Line, Report, Verdict, err
from rtvault.store import Store
from rtvault.store.formats import FileEntry, Manifest, Tree
from rtvault.store.objects import read_object
from rtvault.utc import parse


@dataclass
class MachineVersion:
    """One distinct content of a machine's folder, and the physics snapshots holding it."""

    content: str  # SHA-256 of its files' names and content hashes
    directory: str  # Physics/ReadOnlyMachineDB/Machine.<n>, relative to the source's root
    machine: Machine | None  # None when its Pinnacle.Machine could not be read
    snapshots: list[str] = field(default_factory=list)
    times: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        described = self.machine.to_json() if self.machine is not None else {"version_timestamp": None,
                                                                               "energies": []}
        described.pop("name", None)
        return {**described, "directory": self.directory, "content": self.content, "first_seen": min(self.times),
                "last_seen": max(self.times), "snapshots": self.snapshots}


@dataclass
class MachineHistory:
    name: str
    source: str
    site: str
    versions: list[MachineVersion] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "source": self.source, "site": self.site,
                "versions": [v.to_json() for v in self.versions]}


@dataclass(frozen=True)
class MachinesReport(Report):
    machines: tuple[MachineHistory, ...]
    snapshots: int  # physics snapshots read
    at: str | None
    warnings_: tuple[Problem, ...] = ()
    unreadable: tuple[str, ...] = ()  # what the store could not give, each with why

    def to_json(self) -> dict[str, object]:
        return {"machines": [m.to_json() for m in self.machines], "at": self.at, "snapshots": self.snapshots,
                "warnings": [w.to_json() for w in self.warnings_], "unreadable": list(self.unreadable)}

    def lines(self) -> Iterable[Line]:
        for history in self.machines:
            where = f"{history.source}" + (f" ({history.site})" if history.site else "")
            yield Line(f"{history.name}  [{where}]  {len(history.versions)} version(s)")
            for version in history.versions:
                machine, data = version.machine, version.to_json()
                energies = ", ".join(e.name for e in machine.energies) if machine else "?"
                yield Line(f"  {machine.version_timestamp if machine else '(unreadable)'}  {energies}  "
                           f"seen {data['first_seen']} .. {data['last_seen']} in {len(version.snapshots)} snapshot(s)")
        if not self.machines:
            yield Line(f"no machine in {self.snapshots} physics snapshot(s)"
                       + (f" in force at {self.at}" if self.at else ""))
        yield from (err(f"  warning: {w}") for w in self.warnings_)
        yield from (err(f"  NOT READ: {u}") for u in self.unreadable)

    def verdict(self) -> Verdict:
        if self.unreadable:
            return Verdict.failed(PartialResult(
                f"{len(self.unreadable)} machine(s) or snapshot(s) could not be read (named above): when the store "
                "could not give them, heal it (`rtvault verify --all`, then `rtvault repair`) or ask another store "
                "(`--store`)"))
        return OK


def physics_snapshots(store: Store, source: str | None) -> list[Manifest]:
    """The store's physics snapshots, oldest first, of one source or of every one."""
    found = [m for m in store.manifests() if m.kind == PHYSICS_KIND and m.other is not None
             and (source is None or m.source_name == source)]
    if source is not None and not found:
        raise InputError(f"the store holds no physics snapshot of the source {source!r}: check the name "
                         "(`[sources.NAME]` with kind = \"pinnacle-physics\") and that it was backed up")
    return sorted(found, key=lambda m: (m.time, m.id))


def _newest_per_source(manifests: Iterable[Manifest], limit: datetime) -> dict[str, Manifest]:
    """Per source, the newest of `manifests` (oldest first) at or before `limit`."""
    return {m.source_name: m for m in manifests if parse(m.time) <= limit}


def in_force(manifests: list[Manifest], at: str) -> list[Manifest]:
    """Per source, the newest physics snapshot at or before `at`."""
    chosen = _newest_per_source(manifests, parse_time(at))
    if not chosen:
        first = manifests[0].time if manifests else None
        raise InputError(f"no physics snapshot as early as {at}" + (f": the first is from {first}" if first else
                                                                    ": the store holds none"))
    return sorted(chosen.values(), key=lambda m: m.source_name)


def physics_at(manifests: Iterable[Manifest], patient: Manifest) -> tuple[PhysicsInForce, ...]:
    """The physics in force for a patient snapshot: per physics source of the same site (every physics source when
    the patient's source has no site label, or no physics snapshot has one), the newest physics snapshot at or
    before it; none when there is no such snapshot."""
    physics = sorted((m for m in manifests if m.kind == PHYSICS_KIND and m.other is not None),
                     key=lambda m: (parse(m.time), m.id))
    if patient.site and any(m.site for m in physics):
        physics = [m for m in physics if m.site == patient.site]
    chosen = _newest_per_source(physics, parse(patient.time))
    return tuple(PhysicsInForce(m.source_name, m.id, m.time) for _, m in sorted(chosen.items()))


class _Reader:
    """Trees and machine files read once each, whatever the number of snapshots naming them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.trees: dict[str, Tree | StoreError] = {}
        self.machines: dict[str, tuple[Machine | None, list[Problem]] | StoreError] = {}

    def tree(self, digest: str) -> Tree:
        if digest not in self.trees:
            try:
                self.trees[digest] = self.store.get_tree(digest)
            except StoreError as error:
                self.trees[digest] = error
        found = self.trees[digest]
        if isinstance(found, StoreError):
            raise found
        return found

    def machine(self, entry: FileEntry) -> tuple[Machine | None, list[Problem]]:
        if entry.hash not in self.machines:
            try:
                data = b"".join(read_object(self.store.backend, entry.hash))
            except StoreError as error:
                self.machines[entry.hash] = error
            else:
                reading = read_machines(data, entry.name)
                self.machines[entry.hash] = (reading.machines[0] if reading.machines else None, reading.warnings)
        found = self.machines[entry.hash]
        if isinstance(found, StoreError):
            raise found
        return found


def _folders(tree: Tree) -> dict[str, list[FileEntry]]:
    folders: dict[str, list[FileEntry]] = {}
    for entry in tree.files:
        if (match := MACHINE_DIR.match(entry.name)) is not None:
            folders.setdefault(match.group(1), []).append(entry)
    return folders


def _content(files: list[FileEntry]) -> str:
    digest = hashlib.sha256()
    for entry in sorted(files, key=lambda f: f.name):
        digest.update(f"{entry.name}\0{entry.hash}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def machine_history(store: Store, *, at: str | None = None, source: str | None = None) -> MachinesReport:
    """Every machine of the store's physics snapshots with its versions; with `at`, those in force then."""
    manifests = physics_snapshots(store, source)
    read = in_force(manifests, at) if at else manifests
    reader, unreadable, warnings = _Reader(store), [], {}
    histories: dict[tuple[str, str], MachineHistory] = {}
    for manifest in read:
        assert manifest.other is not None
        try:
            folders = _folders(reader.tree(manifest.other.tree))
        except StoreError as error:
            unreadable.append(f"snapshot {manifest.id}: {error}")
            continue
        for directory, files in sorted(folders.items()):
            machine, problem = _machine_of(reader, directory, files, warnings)
            name = machine.name if machine is not None else directory.rsplit("/", 1)[-1]
            history = histories.setdefault((manifest.source_name, name),
                                           MachineHistory(name, manifest.source_name, manifest.site))
            content = _content(files)
            version = next((v for v in history.versions if v.content == content), None)
            if version is None:
                version = MachineVersion(content, directory, machine)
                history.versions.append(version)
            version.snapshots.append(manifest.id)
            version.times.append(manifest.time)
            if problem:
                unreadable.append(problem)
    ordered = tuple(sorted(histories.values(), key=lambda h: (h.source, h.name)))
    return MachinesReport(ordered, len(read), at, tuple(p for ps in warnings.values() for p in ps),
                          tuple(dict.fromkeys(unreadable)))


def _machine_of(reader: _Reader, directory: str, files: list[FileEntry],
                warnings: dict[str, list[Problem]]) -> tuple[Machine | None, str]:
    """The machine its folder's Pinnacle.Machine describes, and why it could not be read ("" when it could)."""
    entry = next((f for f in files if f.name == f"{directory}/{MACHINE_FILE}"), None)
    if entry is None:
        return None, f"{directory}: no {MACHINE_FILE} in this folder"
    try:
        machine, problems = reader.machine(entry)
    except StoreError as error:
        return None, f"{entry.name}: {error}"
    warnings.setdefault(entry.hash, problems)
    return machine, "" if machine is not None else f"{entry.name}: no machine could be read in it"


def machine_names(store: Store, snapshot: str) -> tuple[set[str], list[str]]:
    """The names of the machines a physics snapshot holds, and each machine folder whose name could not be read
    (with why)."""
    manifest = store.load_snapshot(snapshot)
    if manifest.other is None:
        return set(), [f"snapshot {snapshot}: no physics tree in it"]
    reader, names, unread = _Reader(store), set(), []
    for directory, files in sorted(_folders(reader.tree(manifest.other.tree)).items()):
        machine, problem = _machine_of(reader, directory, files, {})
        if machine is not None:
            names.add(machine.name)
        if problem:
            unread.append(problem)
    return names, unread


def restore_physics(store: Store, destination: Path, *, at: str | None = None, source: str | None = None,
                    force: bool = False, progress: Progress | None = None) -> RestoreSummary:
    """The physics snapshot in force at `at` (default: the newest) of the source, written whole under
    `destination` as `restore --all` writes a database (RestoreIncomplete names what could not be)."""
    manifests = physics_snapshots(store, source)
    sources = sorted({m.source_name for m in manifests})
    if not manifests:
        raise InputError("the store holds no physics snapshot: back up a source of kind \"pinnacle-physics\" first")
    if len(sources) > 1:
        raise InputError(f"the store holds the physics of several sources ({', '.join(sources)}): give --source")
    chosen = in_force(manifests, at)[0] if at else manifests[-1]
    return restore_all(store, destination, snapshot=chosen.id, source=chosen.source_name, force=force,
                       progress=progress)
