"""`rtvault restore`: a patient, or the whole database, written back byte-identical with modes and mtimes.

Never writes outside the destination (names are checked, symlinked parents refused), never overwrites an
existing file unless forced, and writes each file under a temporary name that is renamed only once the
content has been verified against its hash.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rtvault.errors import InputError, StoreError
from rtvault.events import NoProgress, Progress
from rtvault.jobs.history import Version, pick_version, versions
from rtvault.store import Store
from rtvault.store.backend import sync_filesystem
from rtvault.store.objects import contents


@dataclass
class RestoreSummary:
    snapshot: str
    to: str
    patients: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    duration_s: float = 0.0
    skipped: list[str] = field(default_factory=list)  # archive members never written: links, devices, lost
    incomplete: list[str] = field(default_factory=list)  # the patient's files not restored, each with why
    unverified: list[str] = field(default_factory=list)  # restored although the archive's checksum failed

    def to_json(self) -> dict[str, object]:
        return self.__dict__.copy()


def _pieces(part: str, destination: Path) -> list[str]:
    pieces = part.split("/")
    if any(piece in ("", ".", "..") or "\x00" in piece for piece in pieces):
        raise StoreError(f"refusing an unsafe name {part!r} in the store: it would escape {destination}")
    return pieces


def safe_target(destination: Path, base: str, name: str, *, directory: bool = False) -> Path:
    """`destination/base/name`, refusing absolute names, `..`, empty or NUL components. `base` is a patient
    path or "" for the root; a directory's `name` may be "." (the base directory itself), a file's not."""
    pieces = _pieces(base, destination) if base else []
    if not (directory and name == "."):
        pieces += _pieces(name, destination)
    return destination.joinpath(*pieces)


def _make_parents(destination: Path, target: Path) -> None:
    """Create target's parent directories, refusing any existing one that is a symlink (it could lead out)."""
    current = destination
    for piece in target.parent.relative_to(destination).parts:
        current = current / piece
        if os.path.islink(current):
            raise StoreError(f"refusing to write under {current}: it is a symbolic link, which could lead "
                             f"outside {destination}")
        if not current.exists():
            current.mkdir()
        elif not current.is_dir():
            raise StoreError(f"refusing to write under {current}: it is not a directory")


Blocks = Callable[[], Iterator[bytes]]


@dataclass
class Planned:
    """A file to write: where, its entry (name, size, mode, mtime_ns) and its verified content."""

    target: Path
    entry: dict
    blocks: Blocks


def plan(destination: Path, base: str, files: list[dict], dirs: list[dict],
         blocks_of: Callable[[dict], Blocks]) -> tuple[list[Planned], list[tuple[Path, dict]]]:
    """Where each file and directory of one tree goes under destination; refuses unsafe or colliding names."""
    planned = [Planned(safe_target(destination, base, f["name"]), f, blocks_of(f)) for f in files]
    placed = [(safe_target(destination, base, d["name"], directory=True), d) for d in dirs]
    _refuse_collisions(base, planned)
    return planned, placed


def _refuse_collisions(base: str, files: list[Planned]) -> None:
    names = {f.target for f in files}
    if len(names) != len(files):
        raise StoreError(f"the store's tree for {base or 'the root'} names a file twice: the store is damaged")
    for item in files:
        clash = next((parent for parent in item.target.parents if parent in names), None)
        if clash is not None:
            raise StoreError(f"the store's tree for {base or 'the root'} names {clash.name} both as a file and a "
                             "directory: the store is damaged")


def _check_conflicts(destination: Path, planned: list[Planned], force: bool) -> None:
    existing = [p.target for p in planned if os.path.lexists(p.target)]
    if existing and not force:
        raise InputError(f"{len(existing)} file(s) already exist under {destination} (first: {existing[0]}); "
                         "nothing was written: choose an empty directory or use --force to overwrite")


def _write_file(destination: Path, item: Planned) -> int:
    target, entry = item.target, item.entry
    _make_parents(destination, target)
    if os.path.islink(target) or os.path.isdir(target):
        raise StoreError(f"refusing to replace {target}: it is a symbolic link or a directory")
    temp = target.with_name(f".{target.name}.rtvault-partial")
    if os.path.lexists(temp):
        os.unlink(temp)  # left by a killed restore, or planted: never followed, never written through
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            for block in item.blocks():
                out.write(block)
            out.flush()
            os.fchmod(out.fileno(), entry["mode"])
            os.utime(out.fileno(), ns=(entry["mtime_ns"], entry["mtime_ns"]))
        os.replace(temp, target)
    finally:
        if os.path.lexists(temp):
            os.unlink(temp)
    return entry["size"]


def _finish_dirs(destination: Path, dirs: list[tuple[Path, dict]]) -> None:
    for path, entry in sorted(dirs, key=lambda d: len(d[0].parts), reverse=True):
        if path != destination:
            _make_parents(destination, path / "entry")
        os.chmod(path, entry["mode"])
        os.utime(path, ns=(entry["mtime_ns"], entry["mtime_ns"]))


def write_planned(destination: Path, planned: list[Planned], dirs: list[tuple[Path, dict]], force: bool,
                  summary: RestoreSummary, progress: Progress) -> None:
    """Write planned files (nothing at all if one exists, unless forced), then directory modes and mtimes."""
    _check_conflicts(destination, planned, force)
    destination.mkdir(parents=True, exist_ok=True)
    progress.begin("Restoring", sum(p.entry["size"] for p in planned))
    try:
        for item in planned:
            summary.bytes += _write_file(destination, item)
            summary.files += 1
            progress.advance(item.entry["size"])
    finally:
        progress.end()
    _finish_dirs(destination, dirs)
    sync_filesystem(destination)  # one flush for the whole restore, not one fsync per file


def _restore_trees(store: Store, destination: Path, trees: list[tuple[str, str]], force: bool,
                   summary: RestoreSummary, progress: Progress) -> None:
    planned: list[Planned] = []
    dirs: list[tuple[Path, dict]] = []
    for base, digest in trees:
        tree = store.get_tree(digest)
        files, tree_dirs = plan(destination, base, tree["files"], tree["dirs"], contents(store.backend))
        planned += files
        dirs += tree_dirs
    write_planned(destination, planned, dirs, force, summary, progress)


def restore_patient(store: Store, key: str, destination: Path, *, snapshot: str | None = None,
                    at: str | None = None, force: bool = False, progress: Progress | None = None) -> RestoreSummary:
    """One patient, as the chosen (default: the latest holding it) snapshot saw it, under destination."""
    started = time.monotonic()
    version: Version = pick_version(versions(store, key), snapshot, at)
    summary = RestoreSummary(version.snapshot, str(destination), [version.path])
    _restore_trees(store, destination, [(version.path, version.tree)], force, summary, progress or NoProgress())
    summary.duration_s = round(time.monotonic() - started, 3)
    return summary


def restore_all(store: Store, destination: Path, *, snapshot: str = "latest", force: bool = False,
                progress: Progress | None = None) -> RestoreSummary:
    """The whole database of one snapshot, Institution files included: the disaster-recovery path."""
    started = time.monotonic()
    manifest = store.load_snapshot(snapshot)
    trees = [(p["path"], p["tree"]) for p in manifest["patients"]]
    if manifest.get("other"):
        trees.append(("", manifest["other"]["tree"]))
    summary = RestoreSummary(manifest["id"], str(destination), [p for p, _ in trees if p])
    _restore_trees(store, destination, trees, force, summary, progress or NoProgress())
    summary.duration_s = round(time.monotonic() - started, 3)
    return summary
