"""`rtvault restore`: a patient, or the whole database, written back byte-identical with modes and mtimes.

Never writes outside the destination (names are checked, symlinked parents refused), never overwrites an
existing file unless forced, and writes each file under a temporary name that is renamed only once the
content has been verified against its hash.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from rtvault.errors import InputError, StoreError
from rtvault.events import NoProgress, Progress
from rtvault.jobs.history import Version, pick_version, versions
from rtvault.store import Store
from rtvault.store.objects import read_object


@dataclass
class RestoreSummary:
    snapshot: str
    to: str
    patients: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    duration_s: float = 0.0

    def to_json(self) -> dict[str, object]:
        return self.__dict__.copy()


def _pieces(part: str, destination: Path) -> list[str]:
    pieces = part.split("/")
    if any(piece in ("", ".", "..") or "\x00" in piece for piece in pieces):
        raise StoreError(f"refusing an unsafe name {part!r} in the store: it would escape {destination}")
    return pieces


def safe_target(destination: Path, base: str, name: str) -> Path:
    """`destination/base/name`, refusing absolute names, `..`, empty or NUL components. `base` is a patient
    path or "" for the root; `name` is "." for the base directory itself."""
    pieces = _pieces(base, destination) if base else []
    if name != ".":
        pieces += _pieces(name, destination)
    return destination.joinpath(*pieces)


def _inside(destination: Path, target: Path) -> bool:
    real_dest = os.path.realpath(destination)
    real_parent = os.path.realpath(target.parent)
    return real_parent == real_dest or real_parent.startswith(real_dest + os.sep)


@dataclass
class _Planned:
    target: Path
    entry: dict


def _plan(destination: Path, base: str, tree: dict) -> tuple[list[_Planned], list[tuple[Path, dict]]]:
    files = [_Planned(safe_target(destination, base, f["name"]), f) for f in tree["files"]]
    dirs = [(safe_target(destination, base, d["name"]), d) for d in tree["dirs"]]
    return files, dirs


def _check_conflicts(destination: Path, planned: list[_Planned], force: bool) -> None:
    existing = [p.target for p in planned if os.path.lexists(p.target)]
    if existing and not force:
        raise InputError(f"{len(existing)} file(s) already exist under {destination} (first: {existing[0]}); "
                         "nothing was written: choose an empty directory or use --force to overwrite")


def _write_file(store: Store, destination: Path, item: _Planned) -> int:
    target, entry = item.target, item.entry
    target.parent.mkdir(parents=True, exist_ok=True)
    if not _inside(destination, target):
        raise StoreError(f"refusing to write {target}: a symbolic link leads outside {destination}")
    temp = target.with_name(f".{target.name}.rtvault-partial")
    try:
        with open(temp, "wb") as out:
            for block in read_object(store.backend, entry["hash"]):
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, entry["mode"])
        os.utime(temp, ns=(entry["mtime_ns"], entry["mtime_ns"]))
        if os.path.islink(target) or os.path.isdir(target):
            raise StoreError(f"refusing to replace {target}: it is a link or a directory")
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return entry["size"]


def _finish_dirs(dirs: list[tuple[Path, dict]]) -> None:
    for path, entry in sorted(dirs, key=lambda d: len(d[0].parts), reverse=True):
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, entry["mode"])
        os.utime(path, ns=(entry["mtime_ns"], entry["mtime_ns"]))


def _restore_trees(store: Store, destination: Path, trees: list[tuple[str, str]], force: bool,
                   summary: RestoreSummary, progress: Progress) -> None:
    planned: list[_Planned] = []
    dirs: list[tuple[Path, dict]] = []
    for base, digest in trees:
        files, tree_dirs = _plan(destination, base, store.get_tree(digest))
        planned += files
        dirs += tree_dirs
    _check_conflicts(destination, planned, force)
    destination.mkdir(parents=True, exist_ok=True)
    progress.begin("Restoring", sum(p.entry["size"] for p in planned))
    try:
        for item in planned:
            summary.bytes += _write_file(store, destination, item)
            summary.files += 1
            progress.advance(item.entry["size"])
    finally:
        progress.end()
    _finish_dirs(dirs)


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
