"""Archive jobs: archiving deleted patients, sweeping the inbox, restoring, exporting and expiring."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from rtvault.archive import records
from rtvault.archive.build import archive_patient_version, pinnacle_entries, snapshot_entries
from rtvault.archive.formats import (
    LOST,
    UNVERIFIED,
    ArchivedPatient,
    ArchiveMember,
    ArchiveRecord,
    PhysicsInForce,
    Stored,
)
from rtvault.archive.ingest import archive_files, ingest_file
from rtvault.archive.institution import filtered_institution
from rtvault.archive.keep import Override, may_destroy
from rtvault.archive.pending import Pending, awaiting_archive
from rtvault.archive.tarwriter import Entry, write_tar
from rtvault.config import Config
from rtvault.errors import InputError, Problem, RtvaultError, StoreError
from rtvault.events import NoProgress, Progress
from rtvault.jobs.history import matches, pick_version, snapshot_source, versions
from rtvault.jobs.machines import physics_at
from rtvault.jobs.physics_export import check_destination, write_physics
from rtvault.jobs.restore import Blocks, RestoreIncomplete, RestoreSummary, plan, write_planned
from rtvault.pinnacle.physics import PLAN_MACHINES, plan_machine_names
from rtvault.store import Store
from rtvault.store.formats import DirEntry, FileEntry, Manifest
from rtvault.store.locks import WriterLock
from rtvault.store.objects import BLOCK, read_object

PLAN_MACHINES_MEMBER = re.compile(rf"Plan_\d+/{re.escape(PLAN_MACHINES)}")


def archived_versions(store: Store) -> set[tuple[str, str]]:
    """(patient path, tree) of every patient version an archive holds (automatic archives name their tree) or
    held before it was destroyed."""
    return {(p.path, p.tree) for r in records.summaries(store) for p in r.patients
            if p.tree} | records.destroyed_versions(store)


def pending(store: Store, manifests: list[Manifest] | None = None) -> list[Pending]:
    """The patients gone from the latest snapshot whose last version has no archive yet."""
    return awaiting_archive(store.manifests() if manifests is None else manifests, archived_versions(store))


def archive_deleted(store: Store, manifests: list[Manifest] | None = None) -> tuple[list[Stored], list[Problem]]:
    """Archive the last backed-up version of every patient gone from the latest snapshot (once per version).
    `manifests`: every snapshot manifest, oldest first, when the caller has them already. One patient that
    cannot be archived (a full disk, a damaged object) does not stop the others: each failure is a Problem
    naming the patient, the snapshot that keeps it meanwhile, and what to do; the next run tries again. Each
    archive's index names the physics snapshots in force for the version (`machines.physics_at`)."""
    archived, failed = [], []
    waiting_list = pending(store, manifests)
    physics = store.manifests() if waiting_list else []  # a backup gives its own source's manifests only
    for waiting in waiting_list:
        try:
            archived.append(archive_patient_version(store, waiting.manifest, waiting.entry,
                                                    physics=physics_at(physics, waiting.manifest)))
        except RtvaultError as error:
            failed.append(Problem(waiting.path, f"not archived: {error}; its last copy stays in snapshot "
                                                f"{waiting.snapshot}, which retention keeps until it is archived"))
    return archived, failed


def sweep_inbox(store: Store, inbox: Path) -> tuple[list[Stored], list[Problem]]:
    """Ingest what was dropped in the inbox; move each file aside only once stored and re-verified."""
    done_dir = inbox / "ingested"
    results, problems = [], []
    for path in sorted(p for p in inbox.iterdir() if not p.name.startswith(".") and p != done_dir):
        try:
            result = ingest_file(store, path, origin="inbox")
        except InputError as error:
            problems.append(Problem(str(path), str(error)))
            continue
        if not records.verify_tar(store, result.record.id):
            problems.append(Problem(str(path), "stored copy does not verify: left in the inbox"))
            continue
        done_dir.mkdir(exist_ok=True)
        target = done_dir / path.name
        if target.exists():
            target = done_dir / f"{path.stem}-{result.record.id[:8]}{path.suffix}"
        shutil.move(path, target)
        results.append(result)
    return results, problems


@dataclass(frozen=True)
class Sweep:
    """What `archive sweep` did: deleted patients archived, inbox files ingested; `not_archived` names the
    patients whose archive failed (each also a problem); `warnings` are the lock's (a stale lock taken over),
    which are no failure of the sweep."""

    archived: tuple[Stored, ...]
    ingested: tuple[Stored, ...]
    not_archived: tuple[str, ...]
    problems: tuple[Problem, ...]
    warnings: tuple[Problem, ...]

    def to_json(self) -> dict[str, object]:
        return {"archived": [a.to_json() for a in self.archived], "ingested": [i.to_json() for i in self.ingested],
                "not_archived": list(self.not_archived), "problems": [p.to_json() for p in self.problems],
                "warnings": [w.to_json() for w in self.warnings]}


def sweep(config: Config, store: Store) -> Sweep:
    """`rtvault archive sweep`: archive deleted patients, then ingest the inbox (holding the writer lock)."""
    ingested: list[Stored] = []
    problems: list[Problem] = []
    warnings: list[Problem] = []
    if config.archive.inbox is not None and not config.archive.inbox.is_dir():
        raise InputError(f"archive inbox {config.archive.inbox} does not exist (is it mounted?)")
    with WriterLock(store.backend, "archive sweep", config.backup.lock_lease_seconds, warnings.append):
        archived, failed = archive_deleted(store)
        problems += failed
        if config.archive.inbox is not None:
            ingested, found = sweep_inbox(store, config.archive.inbox)
            problems += found
    return Sweep(tuple(archived), tuple(ingested), tuple(p.file for p in failed), tuple(problems), tuple(warnings))


def ingest(config: Config, store: Store, paths: list[Path]) -> tuple[list[Stored], list[dict], list[Problem]]:
    """`rtvault archive ingest`: each archive file stored, scanned and indexed, holding the writer lock so that
    a backup or prune starting meanwhile neither cleans its staging nor prunes its objects before its index is
    written. Returns the results, the files refused ({"file", "error"}) and the lock's warnings."""
    results, errors, warnings = [], [], []
    with WriterLock(store.backend, "archive ingest", config.backup.lock_lease_seconds, warnings.append):
        for path in archive_files(paths):
            try:
                results.append(ingest_file(store, path))
            except InputError as error:
                errors.append({"file": str(path), "error": str(error)})
    return results, errors, warnings


def find(store: Store, key: str, archive_id: str | None = None) -> tuple[ArchiveRecord, ArchivedPatient]:
    """The archive (the one given, else the one with the newest version of the patient) holding the patient
    KEY names, and that patient's entry."""
    found = [(r, p) for r in records.summaries(store)
             if archive_id is None or r.id.startswith(archive_id) for p in r.patients if matches(p, key)]
    if not found:
        where = f"archive {archive_id}" if archive_id else f"any archive of {store.location}"
        raise StoreError(f"no patient {key!r} in {where} (path, MRN or PatientID; see `rtvault archive list`)")
    if len({p.path for _, p in found}) > 1:
        raise StoreError(f"{key!r} names several patients in the archives: give the patient path")
    summary, patient = max(found, key=lambda rp: (rp[1].last_modified or "", rp[0].created, rp[0].id))
    record = records.load(store, summary.id)
    whole = record.patient(patient.path)
    assert whole is not None, patient.path  # the summary is the index without its members
    return record, whole


def member_blocks(store: Store, record: ArchiveRecord, member: ArchiveMember) -> Blocks:
    """A member's content, read through the index and verified against its hash."""
    digest = member.hash or ""
    if record.compression != "none":
        return lambda: read_object(store.backend, digest)

    def blocks() -> Iterator[bytes]:
        hasher, left = hashlib.sha256(), member.size
        with store.backend.open(records.tar_key(record.id)) as tar:
            tar.seek(member.data_offset or 0)
            while left > 0 and (block := tar.read(min(BLOCK, left))):
                hasher.update(block)
                left -= len(block)
                yield block
        if left or hasher.hexdigest() != digest:
            raise StoreError(f"archive {record.id[:12]}: {member.name} does not match its index")
    return blocks


def _last_copies(members: Sequence[ArchiveMember]) -> list[ArchiveMember]:
    """A member appended again (`tar -r`) replaces the earlier copy, as when tar extracts."""
    latest = {m.place: index for index, m in enumerate(members)}
    return [m for index, m in enumerate(members) if latest[m.place] == index]


@dataclass
class _Selection:
    """A patient's members in an archive: what is written, and why anything else is not."""

    files: list[FileEntry] = field(default_factory=list)  # names relative to the patient directory
    dirs: list[DirEntry] = field(default_factory=list)
    members: dict[str, ArchiveMember] = field(default_factory=dict)  # each file's archive member, by relative name
    skipped: list[str] = field(default_factory=list)  # never created by design: links, devices, unsafe names
    incomplete: list[str] = field(default_factory=list)  # the patient's files that cannot be written, and why
    unverified: list[str] = field(default_factory=list)  # written although the archive's checksum failed


def _patient_files(record: ArchiveRecord, patient: ArchivedPatient, unverified: bool = False) -> _Selection:
    chosen = _Selection()
    prefix = patient.prefix
    for member in _last_copies(record.members):
        name = member.safe_name or ""
        if name != prefix and not name.startswith(prefix + "/"):
            continue
        rel = name[len(prefix) + 1:] or "."
        mtime_ns = member.mtime * 10**9
        if member.kind == "dir":
            chosen.dirs.append(DirEntry(rel, member.mode, mtime_ns))
        elif member.kind != "file":
            chosen.skipped.append(f"{member.name} ({member.kind}{'' if member.complete else ', lost'})")
        elif member.state == LOST or not member.hash:
            chosen.incomplete.append(f"{member.name}: lost (the archive is damaged there)")
        elif member.state == UNVERIFIED and not unverified:
            chosen.incomplete.append(f"{member.name}: {UNVERIFIED}, not written without --unverified")
        else:
            chosen.files.append(FileEntry(rel, member.size, mtime_ns, 0, 0, member.mode, member.hash))
            chosen.members[rel] = member
            if member.state == UNVERIFIED:
                chosen.unverified.append(member.name)
    chosen.incomplete += [f"{name}: announced but absent from the archive" for name in patient.missing]
    return chosen


def readable_members(record: ArchiveRecord, patient: ArchivedPatient) -> tuple[dict[str, ArchiveMember], list[str]]:
    """The patient's files an archive can give, as a restore chooses them (each member by its name relative to
    the patient, verified ones only), and the others, each with why it cannot."""
    chosen = _patient_files(record, patient)
    return chosen.members, chosen.incomplete


def expected_files(record: ArchiveRecord, patient_path: str) -> dict[str, str]:
    """What a restore of this archived patient writes, file by file (relative to the patient): the SHA-256 the
    archive's index recorded for each."""
    patient = record.patient(patient_path)
    if patient is None:
        raise StoreError(f"archive {record.id} holds no patient {patient_path}")
    return {entry.name: entry.hash for entry in _patient_files(record, patient).files}


def _header_bytes(store: Store, record: ArchiveRecord,
                  read: Callable[[Store, ArchiveRecord, ArchiveMember], Blocks] | None = None) -> bytes | None:
    read = read or member_blocks
    member = next((m for m in record.members if m.safe_name == record.header), None)
    return b"".join(read(store, record, member)()) if member and member.hash else None


def restore_from_archive(store: Store, key: str, destination: Path, *, archive_id: str | None = None,
                         force: bool = False, unverified: bool = False, progress: Progress | None = None,
                         read: Callable[[Store, ArchiveRecord, ArchiveMember], Blocks] | None = None,
                         ) -> RestoreSummary:
    """One patient from an archive, by random access, with a filtered Institution file for Pinnacle.

    Members the archive lost, or (unless `unverified`) read from a gzip stream whose checksum failed, are not
    written; they and the files the patient's index announces but the archive lacks are named in
    `summary.incomplete`. When no file of the patient can be written, nothing is written at all (not even the
    Institution file, which would make Pinnacle import an empty patient). `read`: how a member's content is read
    (default: from the store; a removable disk reads its own copy of the archive file)."""
    read = read or member_blocks
    started = time.monotonic()
    record, patient = find(store, key, archive_id)
    chosen = _patient_files(record, patient, unverified)
    summary = RestoreSummary(f"archive {record.id}", str(destination), [patient.path])
    summary.skipped, summary.incomplete, summary.unverified = chosen.skipped, chosen.incomplete, chosen.unverified
    if not chosen.files:
        summary.incomplete = summary.incomplete or [f"{patient.path}: the archive holds no file of this patient"]
        summary.duration_s = round(time.monotonic() - started, 3)
        return summary
    institution = filtered_institution(_header_bytes(store, record, read), patient.path, patient.identity(),
                                       record.file, datetime.now(UTC))
    planned, placed = plan(destination, patient.path, chosen.files, chosen.dirs,
                           lambda f: read(store, record, chosen.members[f.name]))
    header = FileEntry("Institution", len(institution), time.time_ns(), 0, 0, 0o644, "")
    planned += plan(destination, "", [header], [], lambda _f: lambda: iter([institution]))[0]
    write_planned(destination, planned, placed, force, summary, progress or NoProgress(), store.backend)
    summary.duration_s = round(time.monotonic() - started, 3)
    if summary.failed:  # members whose content could not be read: the others are written
        summary.patients = []
        raise RestoreIncomplete(summary)
    return summary


def export(store: Store, key: str, out: Path, *, snapshot: str | None = None, archive_id: str | None = None,
           force: bool = False, with_physics: Path | None = None) -> dict[str, object]:
    """A fresh Pinnacle-format tar of one patient version, from a snapshot or (with archive_id) an archive; with
    `with_physics`, the physics in force for that version written there too (jobs/physics_export.py)."""
    if out.exists() and not force:
        raise InputError(f"{out} already exists: choose another name or use --force")
    if not out.parent.is_dir():
        raise InputError(f"{out.parent} does not exist: create it or choose another --out")
    when = datetime.now(UTC)
    if archive_id is not None:
        version = _archive_version(store, key, archive_id, out.name, when, with_physics is not None)
    else:
        version = _snapshot_version(store, key, snapshot, out.name, when)
    if with_physics is not None:
        check_destination(version.physics, version.name, with_physics, force)
    temp = out.with_name(f".{out.name}.rtvault-partial")
    try:
        with open(temp, "wb") as sink:
            written = write_tar(sink, version.entries)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(temp, out)
    finally:
        temp.unlink(missing_ok=True)
    result: dict[str, object] = {"out": str(out), "members": len(written), "bytes": out.stat().st_size,
                                 "incomplete": version.incomplete}
    if with_physics is not None:
        result["physics"] = write_physics(store, version.physics, with_physics, version.machines, force)
    return result


@dataclass(frozen=True)
class _Version:
    """A patient version to export: its tar entries, its files left out, and the physics in force for it with the
    machines its plans name."""

    name: str  # how a person names it: "archive <id>" or "snapshot <id>"
    entries: list[Entry]
    incomplete: list[str]
    physics: tuple[PhysicsInForce, ...]
    machines: tuple[str, ...]


def _snapshot_version(store: Store, key: str, snapshot: str | None, name: str, when: datetime) -> _Version:
    manifests = store.manifests()
    version = pick_version(versions(store, key, manifests, snapshot_source(manifests, snapshot)), snapshot, None)
    manifest = next((m for m in manifests if m.id == version.snapshot), None) or store.load_snapshot(version.snapshot)
    entries, _, tree = snapshot_entries(store, manifest, version.entry, name, when)
    machines = tuple(tree.patient.machines) if tree.patient is not None else ()
    return _Version(f"snapshot {manifest.id}", entries, [], physics_at(manifests, manifest), machines)


def _archive_version(store: Store, key: str, archive_id: str, name: str, when: datetime,
                     machines: bool) -> _Version:
    """The entries of an export from an archive, the patient's files left out (lost, unverified, absent), and
    (`machines`) the machines its plans name, read from its plan.Pinnacle.Machines members."""
    record, patient = find(store, key, archive_id)
    chosen = _patient_files(record, patient)
    institution = filtered_institution(_header_bytes(store, record), patient.path, patient.identity(), name, when)
    entries = pinnacle_entries(patient.path, institution, when, chosen.dirs, chosen.files,
                               lambda f: member_blocks(store, record, chosen.members[f.name]))
    named = _plan_machines(store, record, chosen) if machines else ()
    return _Version(f"archive {record.id[:12]}", entries, chosen.incomplete, record.physics, named)


def _plan_machines(store: Store, record: ArchiveRecord, chosen: _Selection) -> tuple[str, ...]:
    names: set[str] = set()
    for rel, member in chosen.members.items():
        if PLAN_MACHINES_MEMBER.fullmatch(rel):
            names.update(plan_machine_names(b"".join(member_blocks(store, record, member)()), member.name)[0])
    return tuple(sorted(names))


def retention_rows(store: Store, today: date) -> list[dict]:
    """Every archived patient with its keep-until date and whether it may be destroyed today."""
    rows = []
    for record in records.summaries(store):
        for patient in record.patients:
            keep = records.patient_keep(store, record, patient)
            allowed, why = may_destroy(keep, today)
            rows.append({"archive": record.id, "file": record.file, "path": patient.path,
                         "last_name": patient.last_name, "first_name": patient.first_name,
                         "mrn": patient.mrn, "keep_until": keep.date.isoformat() if keep.date else None,
                         "rule": keep.rule, "may_destroy": allowed, "why": why})
    return rows


def record_override(store: Store, archive_id: str, patient: str | None, kind: str, day: date | None,
                    reason: str, by: str) -> None:
    record = records.load(store, archive_id)
    if patient is not None and not any(matches(p, patient) for p in record.patients):
        raise InputError(f"archive {record.id[:12]} holds no patient {patient!r}")
    path = next((p.path for p in record.patients if patient and matches(p, patient)), None)
    records.add_override(store, record.id, path, Override(kind=kind, date=day, reason=reason, by=by,
                                                             at=datetime.now(UTC)))


def delete_archive(store: Store, archive_id: str, today: date) -> dict[str, object]:
    """Destroy an archive: refused while any of its patients must still be kept."""
    record = records.load(store, archive_id)
    for patient in record.patients:
        allowed, why = may_destroy(records.patient_keep(store, record, patient), today)
        if not allowed:
            raise InputError(f"refusing to delete archive {record.id[:12]}: {patient.path} {why}")
    records.remember_destroyed(store, record, datetime.now(UTC))
    for key in (records.record_key, records.summary_key, records.checksum_key, records.tar_key):
        store.backend.delete(key(record.id))
    return {"deleted": record.id, "file": record.file}
