"""`rtvault backup`: one snapshot of each configured source into a store.

Each source (`[sources.<name>]`, `[source.pinnacle]` being the source `pinnacle`) has its own snapshots: its
previous snapshot, shrink check and deleted-patient archiving are its own. A physics source (a PinnacleSiteData
tree) has no patients: its whole tree is the snapshot's other files, and its shrink check counts files.

Incremental: a file whose size, mtime, inode and ctime equal the previous snapshot's is not read again; a
patient none of whose files changed keeps its previous tree without even being parsed. Files that change
while being read are re-read, then recorded as inconsistent with a warning.

Partial, never silent: a file or folder that cannot be read is recorded in the patient's tree as unreadable
(and the previous snapshot's copy of it is carried forward when there is one); a patient directory that
cannot be listed at all keeps its previous tree. Such patients are marked incomplete in the manifest, named in
its warnings and in `BackupSummary.incomplete`, and the command exits with the partial-result code.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rtvault.config import Config
from rtvault.config.settings import LEGACY_SOURCE, PATIENTS_KIND, PHYSICS_KIND, NamedSource
from rtvault.errors import ConfigError, Problem, SourceRefused
from rtvault.events import NoProgress, Progress
from rtvault.jobs.archives import archive_deleted
from rtvault.jobs.backup_report import AFTER, NAMED, BackedUp, BackedUpSources, BackupSummary, SourceRefusal
from rtvault.jobs.catalog import refresh_quietly
from rtvault.jobs.source import (
    PHYSICS_MARK,
    Listing,
    SourceListing,
    Unreadable,
    check_source,
    list_source,
    unchanged,
)
from rtvault.pinnacle.discover import INSTITUTION_DIR
from rtvault.pinnacle.model import PatientRecord
from rtvault.pinnacle.patient import read_patient
from rtvault.store import Store
from rtvault.store.formats import (
    DirEntry,
    FileEntry,
    FileStat,
    Manifest,
    OtherEntry,
    PatientEntry,
    Tree,
    UnreadableEntry,
)
from rtvault.store.locks import WriterLock
from rtvault.store.objects import SMALL, data_key, store_small, store_stream, wants_shuffle
from rtvault.store.repository import manifests_reused, new_snapshot_id
from rtvault.utc import iso

READ_ATTEMPTS = 3
WORKERS = 4  # hashing and zstd release the GIL: two cores stay busy while others wait on the disk


OTHER = "(files outside the patient directories)"  # how summaries name the root's other files


@dataclass
class _Stored:
    digest: str | None
    stat: FileStat
    new_bytes: int = 0
    warning: Problem | None = None
    unreadable: str | None = None  # why the file could not be read (it exists)


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_size, a.st_mtime_ns, a.st_ino) == (b.st_size, b.st_mtime_ns, b.st_ino)


def _store_file(store: Store, path: Path, entry: FileStat, rel: str) -> _Stored:
    """Read, hash and store one file; re-read it if it changed meanwhile."""
    shuffled = wants_shuffle(entry.name)
    for _attempt in range(READ_ATTEMPTS):
        try:
            with open(path, "rb") as source:
                before = os.fstat(source.fileno())
                if before.st_size <= SMALL:
                    data = source.read()
                    digest, new = store_small(store.backend, data, shuffled)
                    size = len(data)
                else:
                    digest, size, new = store_stream(store.backend, source, shuffled)
                after = os.fstat(source.fileno())
            now = os.stat(path)
        except FileNotFoundError:
            return _Stored(None, entry, warning=Problem(rel, "vanished during the backup: not in this snapshot"))
        except OSError as error:  # the source's (a full or read-only store raises StoreError instead)
            return _Stored(None, entry, unreadable=error.strerror or str(error))
        stored = _Stored(digest, FileStat.of(entry.name, after),
                         store.backend.size(data_key(digest)) if new else 0)
        if _same(before, after) and _same(after, now) and size == after.st_size:
            return stored
    stored.warning = Problem(rel, f"kept changing while read ({READ_ATTEMPTS} attempts): stored as inconsistent")
    return stored


@dataclass(frozen=True)
class _Version:
    """A tree of this backup (or the previous one), with its hash; `unlistable_now`: why its directory could
    not be listed by this backup, which keeps the previous tree."""

    digest: str
    tree: Tree
    unlistable_now: str | None = None

    def incomplete(self) -> list[str]:
        """What the version lacks: the names recorded unreadable in its tree, or "." for a directory unlistable
        now."""
        return ["."] if self.unlistable_now is not None else [u.name for u in self.tree.unreadable]


class _Run:
    def __init__(self, config: Config, store: Store, progress: Progress) -> None:
        self.config = config
        self.store = store
        self.progress = progress
        self.summary = BackupSummary("", 0)

    def previous_trees(self, previous: Manifest | None) -> dict[str, _Version]:
        trees = previous.trees() if previous is not None else {}
        return {path: _Version(digest, self.store.get_tree(digest)) for path, digest in trees.items()}

    def read_changed(self, listings: dict[str, Listing],
                     previous: dict[str, _Version]) -> dict[tuple[str, str], _Stored]:
        todo: list[tuple[str, FileStat]] = []
        for key, listing in listings.items():
            before = previous[key].tree.by_name() if key in previous else {}
            for entry in listing.files:
                if unchanged(entry, before.get(entry.name)):
                    self.summary.files_unchanged += 1
                else:
                    todo.append((key, entry))
                    if entry.name in before:
                        self.summary.files_changed += 1
                    else:
                        self.summary.files_new += 1
        self.progress.begin("Backing up", sum(entry.size for _, entry in todo))
        pool = ThreadPoolExecutor(WORKERS)
        try:
            jobs = {(key, entry.name): pool.submit(self.one, listings[key].base / entry.name, entry,
                                                   f"{key}/{entry.name}".lstrip("/"))
                    for key, entry in todo}
            return {name: job.result() for name, job in jobs.items()}
        except BaseException:
            pool.shutdown(cancel_futures=True)  # a store that fails fails the backup now, not after every file
            raise
        finally:
            pool.shutdown()
            self.progress.end()

    def archive(self, manifests: list[Manifest], lock: WriterLock) -> None:
        started = time.monotonic()
        lock.ensure_held()
        archived, failed = archive_deleted(self.store, manifests)
        self.summary.archived = [a.record.id for a in archived]
        self.summary.not_archived = [problem.file for problem in failed]
        self.summary.warnings += failed
        self.summary.archive_s = round(time.monotonic() - started, 3)

    def one(self, path: Path, entry: FileStat, rel: str) -> _Stored:
        stored = _store_file(self.store, path, entry, rel)
        self.progress.advance(entry.size)
        return stored

    def tree_of(self, key: str, listing: Listing, previous: _Version | None,
                stored: dict[tuple[str, str], _Stored]) -> _Version:
        if (whole := listing.unlistable()) is not None:
            return self.unlistable_tree(key, listing, previous, whole)
        before = previous.tree.by_name() if previous is not None else {}
        files: list[FileEntry] = []
        unreadable: list[Unreadable] = []
        for entry in listing.files:
            if (key, entry.name) not in stored:
                files.append(before[entry.name])
                continue
            result = stored[(key, entry.name)]
            if result.warning:
                self.summary.warnings.append(result.warning)
            if result.unreadable is not None:
                unreadable.append(Unreadable(entry.name, "file", result.unreadable, entry.size))
                continue
            if result.digest is None:
                continue
            self.summary.bytes_read += result.stat.size
            self.summary.bytes_added += result.new_bytes
            files.append(FileEntry.stored(result.stat, result.digest, bool(result.warning)))
        dirs = list(listing.dirs)
        unreadable += listing.unreadable
        recorded = self.carry_forward(key, unreadable, previous, files, dirs)
        if previous and tuple(files) == previous.tree.files and tuple(dirs) == previous.tree.dirs \
                and recorded == previous.tree.unreadable:
            return previous
        patient = self.identity(key, listing, previous, recorded) if key else None
        tree = Tree(tuple(files), tuple(dirs), recorded, patient)
        return _Version(self.store.put_tree(tree), tree)

    def carry_forward(self, key: str, unreadable: list[Unreadable], previous: _Version | None,
                      files: list[FileEntry], dirs: list[DirEntry]) -> tuple[UnreadableEntry, ...]:
        """Keep the previous snapshot's copy of what could not be read now (adding it to `files` and `dirs`);
        returns the tree's `unreadable` records, each saying whether an earlier copy was carried forward."""
        if not unreadable:
            return ()
        old_files, old_dirs = (previous.tree.files, previous.tree.dirs) if previous else ((), ())
        have_files, have_dirs = {f.name for f in files}, {d.name for d in dirs}
        recorded = []
        for item in sorted(unreadable, key=lambda u: u.name):
            prefix = item.name + "/"
            kept = [f for f in old_files if f.name not in have_files
                    and (f.name == item.name or (item.kind == "dir" and f.name.startswith(prefix)))]
            files.extend(kept)
            have_files.update(f.name for f in kept)
            if item.kind == "dir":
                extra = [d for d in old_dirs if d.name.startswith(prefix) and d.name not in have_dirs]
                dirs.extend(extra)
                have_dirs.update(d.name for d in extra)
            recorded.append(UnreadableEntry(item.name, item.kind, item.error, bool(kept), item.size))
            where = f"{key}/{item.name}".strip("/") or "."
            self.summary.warnings.append(Problem(where, f"cannot read ({item.error}): " + (
                f"{'its files' if item.kind == 'dir' else 'its copy'} from the previous snapshot carried forward"
                if kept else ("no earlier copy of anything in it" if item.kind == "dir"
                              else "no earlier copy, missing from this snapshot"))))
        files.sort(key=lambda f: f.name)
        dirs.sort(key=lambda d: d.name)
        return tuple(recorded)

    def unlistable_tree(self, key: str, listing: Listing, previous: _Version | None,
                        whole: Unreadable) -> _Version:
        """A patient directory that cannot be listed keeps its previous tree (the manifest marks it
        unreadable); a new one gets an empty tree that says why."""
        where = key or "."
        if previous is not None:
            self.summary.warnings.append(Problem(where, f"cannot list ({whole.error}): the previous snapshot's "
                                                        "version of this patient is kept, marked unreadable"))
            return _Version(previous.digest, previous.tree, whole.error)
        self.summary.warnings.append(Problem(where, f"cannot list ({whole.error}): no earlier copy, recorded "
                                                    "as unreadable with no files"))
        tree = Tree((), tuple(listing.dirs),
                    (UnreadableEntry(".", "dir", whole.error, False),), PatientRecord(path=key) if key else None)
        return _Version(self.store.put_tree(tree), tree)

    def identity(self, key: str, listing: Listing, previous: _Version | None,
                 recorded: tuple[UnreadableEntry, ...]) -> PatientRecord:
        """The reader's record of a changed patient; when its Patient file could not be read, the identity of
        the previous version (a name must not vanish because of a permission)."""
        earlier = previous.tree.patient if previous is not None else None
        try:
            record = read_patient(listing.base, key)
        except OSError as error:
            self.summary.warnings.append(Problem(key, f"cannot read the patient's identity ({error.strerror})"))
            return earlier or PatientRecord(path=key)
        if earlier and any(u.name == "Patient" for u in recorded):
            return earlier  # (the reader's warnings then only echo the unreadable file, already named)
        self.summary.warnings.extend(record.warnings)
        return record


def _keep_hidden(source: SourceListing, previous: Manifest | None) -> None:
    """Patients of the last snapshot under a folder that cannot be listed now are not deleted: they are kept
    as unlistable (their previous tree), never archived as gone from Pinnacle."""
    for entry in previous.patients if previous is not None else ():
        path = entry.path
        if path not in source.patients and (folder := source.hidden_by(path)) is not None:
            why = folder.error if folder.name == path else f"{folder.name} cannot be listed: {folder.error}"
            source.patients[path] = Listing(source.root / path, unreadable=[Unreadable(".", "dir", why)])
    source.patients = dict(sorted(source.patients.items()))


def _refuse_shrink(previous: Manifest | None, count: int, max_shrink: float, allow_shrink: bool,
                   what: str = "patients") -> None:
    if count == 0:
        raise SourceRefused(f"the source holds no {what[:-1]}: refusing to record an empty snapshot")
    before = 0 if previous is None else len(previous.patients) if what == "patients" else previous.files
    if before and not allow_shrink and count < before * (1 - max_shrink):
        raise SourceRefused(
            f"the source holds {count} {what}, down from {before} in snapshot {previous.id} "  # type: ignore[union-attr]
            f"(more than {max_shrink:.0%} fewer): refusing to back up what may be a broken mount; "
            "if the deletions are real, run again with --allow-shrink")


def _has_physics(root: Path) -> bool:
    return (root / PHYSICS_MARK).is_dir()


def _refuse_mixup(name: str, kind: str, root: Path, source: SourceListing) -> None:
    """A physics tree configured as the patient database, or the reverse, is refused before anything is
    recorded: a snapshot of the wrong kind would make the patients look deleted (and archived) or hide the
    machines."""
    if kind == PATIENTS_KIND and not source.patients and not source.unlistable and _has_physics(root):
        raise SourceRefused(
            f"source {name} ({root}) holds {PHYSICS_MARK} and no patient directory: it is a Pinnacle physics tree "
            f"(PinnacleSiteData); configure it as [sources.{name}] kind = \"{PHYSICS_KIND}\"")
    if kind == PHYSICS_KIND:
        patients = sorted(p.name for p in root.iterdir() if INSTITUTION_DIR.match(p.name) and p.is_dir())
        if patients:
            raise SourceRefused(
                f"source {name} ({root}) holds {patients[0]}: it is a Pinnacle patient database, not a physics "
                f"tree; configure it as kind = \"{PATIENTS_KIND}\" (or point root at the PinnacleSiteData tree)")
        if not _has_physics(root):
            raise SourceRefused(
                f"source {name} ({root}) has no {PHYSICS_MARK} folder: it is not a Pinnacle physics tree "
                "(PinnacleSiteData); is the share mounted, and is root the folder that holds Physics/?")


def configured_source(config: Config, name: str | None) -> tuple[str, NamedSource]:
    """The source `name` (or the only one configured); ConfigError naming the sources there are otherwise."""
    sources = config.all_sources()
    if name is None and len(sources) <= 1:
        name = next(iter(sources), LEGACY_SOURCE)
    if name in sources:
        return name, sources[name]
    if name == LEGACY_SOURCE and not sources:  # nothing configured: refused by check_source, as ever
        return name, NamedSource()
    known = ", ".join(sources) or "none"
    raise ConfigError(str(config.file), [f"no source named {name!r} (configured: {known})" if name else
                                         f"several sources are configured ({known}): name one"])


def run_backup(config: Config, store: Store, *, source: str | None = None, allow_shrink: bool = False,
               progress: Progress | None = None, now: datetime | None = None) -> BackupSummary:
    """Take one snapshot of the source `source` (the only one configured when None) into `store`. Its previous
    snapshot, shrink check, incremental comparison and deleted-patient archiving are those of that source alone."""
    name, settings = configured_source(config, source)
    setting = "[source.pinnacle] root" if name == LEGACY_SOURCE else f"[sources.{name}] root"
    started = time.monotonic()
    root = check_source(settings.root, setting)
    run = _Run(config, store, progress or NoProgress())
    run.summary.source, run.summary.kind, run.summary.site = name, settings.kind, settings.site
    physics = settings.kind == PHYSICS_KIND
    with WriterLock(store.backend, "backup", config.backup.lock_lease_seconds, run.summary.warnings.append) as lock:
        store.backend.clean_staging(0, time.time())
        manifests = [m for m in store.manifests(on_damaged=lambda key, why: run.summary.warnings.append(Problem(
            key, f"damaged ({why}): left out of this backup's comparison; run `rtvault verify` and `rtvault repair`")))
            if m.source_name == name]
        previous = manifests[-1] if manifests else None
        listed = list_source(root, settings.exclude, patients=False) if physics else list_source(root, settings.exclude)
        _refuse_mixup(name, settings.kind, root, listed)
        if physics:
            _refuse_shrink(previous, len(listed.other.files), config.backup.max_shrink, allow_shrink, "files")
        else:
            _keep_hidden(listed, previous)
            _refuse_shrink(previous, len(listed.patients), config.backup.max_shrink, allow_shrink)
        run.summary.warnings.extend(listed.warnings)
        run.summary.files_skipped = listed.skipped
        previous_trees = run.previous_trees(previous)
        listings: dict[str, Listing] = {**listed.patients, "": listed.other}
        stored = run.read_changed(listings, previous_trees)
        trees = {key: run.tree_of(key, listing, previous_trees.get(key), stored) for key, listing in listings.items()}
        time_now = now or datetime.now(UTC)
        patients = tuple(PatientEntry.of(key, trees[key].digest, trees[key].tree, trees[key].incomplete())
                         for key in listed.patients)
        rest = trees[""]
        other = OtherEntry.of(rest.digest, rest.tree, rest.incomplete())
        run.summary.incomplete = [p.path for p in patients if p.incomplete] + ([OTHER] if other.incomplete else [])
        run.summary.snapshot = new_snapshot_id(time_now)
        run.summary.patients = len(patients)
        run.summary.duration_s = round(time.monotonic() - started, 3)
        summary = {"files": sum(p.files for p in patients) + other.files, "bytes": sum(p.bytes for p in patients),
                   **{k: v for k, v in run.summary.to_json().items()
                      if k not in ("snapshot", "warnings", *AFTER, *NAMED)}}
        lock.ensure_held()
        manifest = store.save_snapshot(Manifest(
            run.summary.snapshot, iso(time_now, "microseconds"), str(root),
            patients, other, summary, tuple(run.summary.warnings),
            source_name=name, kind=settings.kind, site=settings.site))
        # Only now, the snapshot durable, patients gone from Pinnacle are archived: an archive that fails (a
        # full disk, a kill) leaves them awaiting it in their last snapshot, which retention keeps until the
        # next run (or `archive sweep`) archives them.
        if not physics:
            run.archive([*manifests, manifest], lock)
    return run.summary


def backup(config: Config, store: Store, *, sources: Sequence[str] = (), allow_shrink: bool = False,
           progress: Progress | None = None) -> BackedUp | BackedUpSources:
    """`rtvault backup`: one snapshot of each source (`run_backup`; every configured source when `sources` is
    empty, the physics sources first, each kind in configuration order), then the catalog brought in step with the
    store (the manifests the backup read are not parsed again). One source refused does not keep the others from
    being backed up: it is named, and the exit code says so."""
    configured = config.all_sources()
    # Physics first: a patient snapshot's physics in force is the newest physics snapshot at or before it
    # (jobs/machines.py `physics_at`), so the physics taken in the same run must come before the patients.
    names = list(sources) or sorted(configured, key=lambda n: configured[n].kind != PHYSICS_KIND) or [LEGACY_SOURCE]
    for name in names:
        configured_source(config, name)  # an unknown name is refused before anything is backed up
    with manifests_reused():
        if len(names) == 1:
            summary = run_backup(config, store, source=names[0], allow_shrink=allow_shrink, progress=progress)
            return BackedUp(summary, catalog=refresh_quietly(config))
        done: list[BackupSummary | SourceRefusal] = []
        for name in names:
            try:
                done.append(run_backup(config, store, source=name, allow_shrink=allow_shrink, progress=progress))
            except SourceRefused as error:
                done.append(SourceRefusal(name, error))
        return BackedUpSources(tuple(done), catalog=refresh_quietly(config))
