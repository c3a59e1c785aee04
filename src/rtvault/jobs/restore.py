"""`rtvault restore`: a patient, or the whole database, written back byte-identical with modes and mtimes.

Never writes outside the destination (names are checked, symlinked parents refused), never overwrites an
existing file unless forced, and writes each file under a temporary name that is renamed only once the
content has been verified against its hash.

Damage in the store costs only what it touches: a patient whose tree cannot be read (or names unsafe paths) is
not restored, a file whose content cannot be read is not written (nor anything under its name), and every other
patient and file is restored; then `RestoreIncomplete` (exit 9) carries the summary naming each of them, why,
and the newest older version that may be whole. A store that stops answering altogether stops the restore.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rtvault.errors import InputError, PartialResult, StoreError, os_failure
from rtvault.events import NoProgress, Progress
from rtvault.jobs.history import Version, patients_source, pick_version, snapshot_source, versions
from rtvault.jobs.pool import in_threads, read_order
from rtvault.jobs.restore_paths import make_parents, safe_target
from rtvault.jobs.restore_reads import Reused
from rtvault.store import Store
from rtvault.store.backend import Backend, sync_filesystem
from rtvault.store.formats import DirEntry, FileEntry, Tree
from rtvault.store.repository import FORMAT_FILE


@dataclass
class RestoreSummary:
    snapshot: str
    to: str
    patients: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    duration_s: float = 0.0
    skipped: list[str] = field(default_factory=list)  # archive members never written: links, devices, lost
    # patients not restored, or not entirely: {"patient" (path, "" for the root files), "tree", "reason",
    # "files_written", "files_not_written": [{"name", "hash", "reason"}], "older_snapshot" (or None)}
    failed: list[dict] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)  # the patient's files not restored, each with why
    unverified: list[str] = field(default_factory=list)  # restored although the archive's checksum failed
    # versions a backup could not read entirely: {"patient", "unreadable": the tree's records (name, kind,
    # error, carried_forward: an earlier copy was restored in its place)}
    unread_at_backup: list[dict] = field(default_factory=list)

    def lacking(self) -> list[str]:
        """Files and folders absent from what was restored because the backup could not read them."""
        return [f"{i['patient']}/{u['name']}".strip("/") for i in self.unread_at_backup for u in i["unreadable"]
                if not u.get("carried_forward")]

    def to_json(self) -> dict[str, object]:
        return self.__dict__.copy()

    def unread(self, base: str, tree: Tree) -> None:
        """Note what the backup of this tree could not read (`base`: its patient path, "" for the root)."""
        if tree.unreadable:
            self.unread_at_backup.append({"patient": base, "unreadable": [u.to_json() for u in tree.unreadable]})

    def tree_failed(self, base: str, tree: str, reason: str) -> None:
        self.failed.append({"patient": base, "tree": tree, "reason": reason, "files_written": 0,
                            "files_not_written": [], "older_snapshot": None})

    def file_failed(self, item: Planned, error: Exception, planned: list[Planned]) -> None:
        entry = next((f for f in self.failed if f["patient"] == item.base), None)
        if entry is None:
            total = sum(1 for p in planned if p.base == item.base)
            entry = {"patient": item.base, "tree": item.tree, "reason": "", "files_written": total,
                     "files_not_written": [], "older_snapshot": None}
            self.failed.append(entry)
        entry["files_written"] -= 1
        entry["files_not_written"].append({"name": item.entry.name, "hash": item.entry.hash or None,
                                           "reason": str(error)})
        count = len(entry["files_not_written"])
        entry["reason"] = f"{count} file(s) could not be read from the store and were not written"


class RestoreIncomplete(PartialResult):
    """The restore wrote what it could; `summary.failed` names the patients and files it could not."""

    def __init__(self, summary: RestoreSummary) -> None:
        self.summary = summary
        names = ", ".join(f["patient"] or "the root files" for f in summary.failed[:3])
        more = f" and {len(summary.failed) - 3} more" if len(summary.failed) > 3 else ""
        super().__init__(f"{len(summary.failed)} patient(s) not restored completely from {summary.snapshot}: "
                         f"{names}{more} (named above, with the reason; everything else was restored)")


Blocks = Callable[[], Iterator[bytes]]


@dataclass
class Planned:
    """A file to write: where, its entry (name, size, mode, mtime_ns) and its verified content; the patient path
    (`base`, "" for the root) and tree it comes from."""

    target: Path
    entry: FileEntry
    blocks: Blocks
    base: str = ""
    tree: str = ""


class _Unreadable(Exception):
    """The store could not give a file's content (damaged or missing): that file only is not written."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class _Stopped(Exception):
    """The restore stopped (an error elsewhere, Ctrl-C) while this file was being written: it is not kept."""


def plan(destination: Path, base: str, files: Sequence[FileEntry], dirs: Sequence[DirEntry],
         blocks_of: Callable[[FileEntry], Blocks], tree: str = "") -> tuple[list[Planned], list[tuple[Path, DirEntry]]]:
    """Where each file and directory of one tree goes under destination; refuses unsafe or colliding names."""
    planned = [Planned(safe_target(destination, base, f.name), f, blocks_of(f), base, tree) for f in files]
    placed = [(safe_target(destination, base, d.name, directory=True), d) for d in dirs]
    _refuse_collisions(base, planned)
    return planned, placed


def _refuse_collisions(base: str, files: list[Planned]) -> None:
    names = {f.entry.name for f in files}  # checked names: no empty, "." or ".." piece, so one spelling each
    if len(names) != len(files):
        raise StoreError(f"the store's tree for {base or 'the root'} names a file twice: the store is damaged")
    for name in names:
        while "/" in name:
            name = name.rsplit("/", 1)[0]
            if name in names:
                raise StoreError(f"the store's tree for {base or 'the root'} names {name.rsplit('/', 1)[-1]} both as "
                                 "a file and a directory: the store is damaged")


def _check_conflicts(destination: Path, planned: list[Planned], force: bool) -> None:
    existing = [p.target for p in planned if os.path.lexists(p.target)]
    if existing and not force:
        raise InputError(f"{len(existing)} file(s) already exist under {destination} (first: {existing[0]}); "
                         "nothing was written: choose an empty directory or use --force to overwrite")


class _Writer:
    """Writes planned files from several threads, each file whole: under a temporary name, verified while
    written, mode and mtime set, then renamed; each parent directory made and checked once."""

    def __init__(self, destination: Path, checked: set[str]) -> None:
        self.destination, self.checked = destination, checked

    def write(self, item: Planned, stop: threading.Event) -> int:
        target, entry = item.target, item.entry
        make_parents(self.destination, target, self.checked)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISLNK(mode := os.lstat(target).st_mode) or stat.S_ISDIR(mode):
                raise InputError(f"refusing to replace {target}: it is a symbolic link or a directory; choose an "
                                 "empty destination")
        temp = os.path.join(os.path.dirname(target), f".{target.name}.rtvault-partial")
        fd = _create(temp)
        renamed = False
        try:
            with os.fdopen(fd, "wb") as out:
                for block in _content(item, stop):
                    out.write(block)
                out.flush()
                os.fchmod(out.fileno(), entry.mode)
                os.utime(out.fileno(), ns=(entry.mtime_ns, entry.mtime_ns))
            os.replace(temp, target)
            renamed = True
        finally:
            if not renamed:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
        return entry.size


def _create(temp: str) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    try:
        return os.open(temp, flags, 0o600)
    except FileExistsError:
        os.unlink(temp)  # left by a killed restore, or planted: never followed, never written through
        return os.open(temp, flags, 0o600)


def _content(item: Planned, stop: threading.Event) -> Iterator[bytes]:
    """The file's verified blocks; a store that cannot give them is `_Unreadable`, a stop is `_Stopped`."""
    blocks = item.blocks()
    while True:
        if stop.is_set():
            raise _Stopped
        try:
            block = next(blocks)
        except StopIteration:
            return
        except (StoreError, OSError) as error:  # reading the store, not writing the destination
            raise _Unreadable(error) from None
        yield block


def _finish_dirs(destination: Path, dirs: list[tuple[Path, DirEntry]], checked: set[str]) -> None:
    for path, entry in sorted(dirs, key=lambda d: len(d[0].parts), reverse=True):
        if path != destination:
            make_parents(destination, path / "entry", checked)
        os.chmod(path, entry.mode)
        os.utime(path, ns=(entry.mtime_ns, entry.mtime_ns))


def _still_answers(backend: Backend, error: Exception) -> None:
    """After a file could not be read: go on with the others only while the store itself still answers (a
    damaged or missing file); a store gone (NAS unmounted, S3 down) stops the restore with that error."""
    try:
        answers = backend.exists(FORMAT_FILE)
    except (StoreError, OSError):
        answers = False
    if not answers:
        if isinstance(error, OSError):
            raise os_failure(error, backend.location, store=backend.location, doing="read from") from None
        raise error


def _write_all(destination: Path, planned: list[Planned], summary: RestoreSummary, progress: Progress,
               backend: Backend | None, checked: set[str]) -> None:
    """Each file read, verified and written whole by one of a few threads; this thread counts, reports progress
    and decides on each failure. Files that could not be read are named in plan order, whatever the timing."""
    unreadable: list[tuple[int, Exception]] = []
    writer = _Writer(destination, checked)
    order = read_order(backend, [p.entry.hash or None for p in planned]) if backend else list(range(len(planned)))
    with in_threads(order, lambda i, stop: writer.write(planned[i], stop)) as done:
        for outcome in done:
            if isinstance(outcome.error, _Unreadable):
                if backend is None:
                    raise outcome.error.error from None
                _still_answers(backend, outcome.error.error)
                unreadable.append((outcome.item, outcome.error.error))
            elif outcome.error is not None:
                raise outcome.error
            else:
                summary.bytes += outcome.result or 0
                summary.files += 1
            progress.advance(planned[outcome.item].entry.size)
    for index, error in sorted(unreadable, key=lambda failure: failure[0]):
        summary.file_failed(planned[index], error, planned)


def write_planned(destination: Path, planned: list[Planned], dirs: list[tuple[Path, DirEntry]], force: bool,
                  summary: RestoreSummary, progress: Progress, backend: Backend | None = None) -> None:
    """Write planned files (nothing at all if one exists, unless forced), then directory modes and mtimes. With
    the store's `backend`, a file whose content cannot be read is named in `summary.failed` and the others are
    written; without it, it stops the restore. A destination that cannot be written (full, read-only, not a
    directory) is an InputError naming it."""
    if os.path.lexists(destination) and not os.path.isdir(destination):
        raise InputError(f"cannot restore into {destination}: it exists and is not a directory; choose a directory")
    try:
        _check_conflicts(destination, planned, force)
        if not destination.exists():  # a folder this restore creates holds patient data: its owner's only
            destination.mkdir(parents=True)
            destination.chmod(0o700)
        progress.begin("Restoring", sum(p.entry.size for p in planned))
        checked: set[str] = set()  # the directories made and checked: each once per restore
        try:
            _write_all(destination, planned, summary, progress, backend, checked)
        finally:
            progress.end()
        _finish_dirs(destination, dirs, checked)
        sync_filesystem(destination)  # one flush for the whole restore, not one fsync per file
    except OSError as error:  # the store's read errors are StoreErrors or _Unreadable: this is the destination
        raise os_failure(error, error.filename or destination, doing="restore into") from None


def _restore_trees(store: Store, destination: Path, trees: list[tuple[str, str]], force: bool,
                   summary: RestoreSummary, progress: Progress) -> None:
    """Every tree that can be read and planned is restored; one that cannot (damaged, missing, naming unsafe
    or colliding paths) is named in `summary.failed`, while the store still answers."""
    planned: list[Planned] = []
    dirs: list[tuple[Path, DirEntry]] = []
    reused = Reused(store.backend)  # one for the whole restore: an object repeated across patients read once
    with in_threads(range(len(trees)), lambda i, _stop: store.get_tree(trees[i][1])) as done:
        loaded = {outcome.item: outcome for outcome in done}
    for index, (base, digest) in enumerate(trees):
        try:
            if (error := loaded[index].error) is not None:
                raise error
            tree = loaded[index].result
            files, tree_dirs = plan(destination, base, tree.files, tree.dirs, reused, digest)
        except StoreError as error:
            _still_answers(store.backend, error)
            summary.tree_failed(base, digest, str(error))
            continue
        summary.unread(base, tree)
        planned += files
        dirs += tree_dirs
    write_planned(destination, planned, dirs, force, summary, progress, store.backend)


def _older_versions(store: Store, summary: RestoreSummary, before: str) -> None:
    """For each patient not restored completely, the newest snapshot before `before` holding another version of
    it that does not name the files that failed (it may be whole: `--snapshot` gets it)."""
    manifests = [m for m in store.manifests() if m.time < before]
    for failure in summary.failed:
        bad = {f["hash"] for f in failure["files_not_written"]}
        for manifest in reversed(manifests):
            entry = manifest.entry(failure["patient"])
            if entry is None or entry.tree == failure["tree"]:
                continue
            try:
                if bad & store.get_tree(entry.tree).hashes():
                    continue
            except StoreError:
                continue
            failure["older_snapshot"] = manifest.id
            break


def _finish(store: Store, summary: RestoreSummary, when: str, started: float) -> RestoreSummary:
    summary.duration_s = round(time.monotonic() - started, 3)
    if summary.failed:
        failed = {f["patient"] for f in summary.failed}
        summary.patients = [p for p in summary.patients if p not in failed]
        _older_versions(store, summary, when)
        raise RestoreIncomplete(summary)
    return summary


def restore_patient(store: Store, key: str, destination: Path, *, snapshot: str | None = None,
                    at: str | None = None, source: str | None = None, force: bool = False,
                    progress: Progress | None = None) -> RestoreSummary:
    """One patient, as the chosen (default: the latest holding it) snapshot saw it, under destination. A tree
    that cannot be read is a StoreError naming an older version; files that cannot be read, RestoreIncomplete."""
    started = time.monotonic()
    manifests, damaged = store.manifests_and_damage()
    found = versions(store, key, manifests, source or snapshot_source(manifests, snapshot))
    version: Version = pick_version(found, snapshot, at)
    if not snapshot and not at:  # the newest: not if a damaged manifest is newer still
        store.refuse_newer_damage(version.snapshot, damaged)
    summary = RestoreSummary(version.snapshot, str(destination), [version.path])
    try:
        tree = store.get_tree(version.tree)
    except StoreError as error:
        older = next((v.snapshot for v in reversed(found) if v.time < version.time and v.tree != version.tree), None)
        raise StoreError(f"{error}; " + (f"an older version may be whole: `--snapshot {older}`, or " if older else "")
                         + "heal the store from another one: `rtvault verify --all`, then `rtvault repair`") from None
    files, dirs = plan(destination, version.path, tree.files, tree.dirs, Reused(store.backend), version.tree)
    summary.unread(version.path, tree)
    write_planned(destination, files, dirs, force, summary, progress or NoProgress(), store.backend)
    return _finish(store, summary, version.time, started)


def restore_all(store: Store, destination: Path, *, snapshot: str = "latest", source: str | None = None,
                force: bool = False, progress: Progress | None = None) -> RestoreSummary:
    """The whole database of one snapshot, Institution files included: the disaster-recovery path. `latest` is
    that of the source `source` (by default the store's one patient database). Every patient that can be
    restored is; RestoreIncomplete names the others."""
    started = time.monotonic()
    manifests, damaged = store.manifests_and_damage()
    if source is None and snapshot.startswith("latest"):
        source = patients_source(store, manifests)
    manifest = store.pick_snapshot(snapshot, manifests, damaged, source=source)
    trees = list(manifest.trees().items())
    summary = RestoreSummary(manifest.id, str(destination), [p for p, _ in trees if p])
    _restore_trees(store, destination, trees, force, summary, progress or NoProgress())
    return _finish(store, summary, manifest.time, started)
