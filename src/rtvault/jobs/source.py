"""The backup source as files: which patient directories and other files a Pinnacle root holds, with their
stat, the transient files excluded. Only ever reads."""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rtvault.config import Config
from rtvault.errors import Problem, SourceRefused
from rtvault.pinnacle.discover import INSTITUTION_DIR, MOUNT_DIR, PATIENT_DIR
from rtvault.store.formats import DirEntry, FileEntry, FileStat


@dataclass
class Unreadable:
    """A file or directory of a tree that could not be read or listed: it is named, never left out in silence."""

    name: str  # relative to the tree's base; "." is the patient directory itself
    kind: str  # "file" or "dir"
    error: str
    size: int | None = None


@dataclass
class Listing:
    """The files and directories of one tree (a patient directory, or the rest of the root)."""

    base: Path
    files: list[FileStat] = field(default_factory=list)
    dirs: list[DirEntry] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)

    def unlistable(self) -> Unreadable | None:
        """The error when the tree's own directory could not be listed (nothing of it is known)."""
        return next((u for u in self.unreadable if u.name == "."), None)


@dataclass
class SourceListing:
    root: Path
    patients: dict[str, Listing]  # keyed by relative path Institution_I/Mount_M/Patient_P
    other: Listing
    skipped: int = 0
    warnings: list[Problem] = field(default_factory=list)
    unlistable: list[Unreadable] = field(default_factory=list)  # folders above patients that could not be listed

    def hidden_by(self, patient: str) -> Unreadable | None:
        """The unlistable folder that may be, or hide, `patient` (a path of an earlier snapshot), if any."""
        return next((u for u in self.unlistable if patient == u.name or patient.startswith(f"{u.name}/")), None)


def check_source(root: Path | None, setting: str = "[source.pinnacle] root") -> Path:
    """Refuse a source that is not there: backing up nothing would let retention forget real patients."""
    if root is None:
        raise SourceRefused(f"no source: set {setting} in the configuration")
    if not root.exists():
        raise SourceRefused(f"source {root} does not exist: is the Pinnacle share mounted?")
    if not root.is_dir():
        raise SourceRefused(f"source {root} is not a directory")
    try:
        empty = not any(root.iterdir())
    except OSError as error:
        raise SourceRefused(f"source {root} cannot be read: {error.strerror}") from None
    if empty:
        raise SourceRefused(f"source {root} is empty: is the Pinnacle share mounted?")
    return root


def unchanged(entry: FileStat, previous: FileEntry | None) -> bool:
    """Same stat as the backup that stored `previous`, whose copy was consistent (an inconsistent one is read
    again): the file holds what that backup stored."""
    if previous is None or previous.inconsistent:
        return False
    return (entry.size, entry.mtime_ns, entry.ino, entry.ctime_ns) == (
        previous.size, previous.mtime_ns, previous.ino, previous.ctime_ns)


def _is_patient(rel_parts: list[str] | tuple[str, ...]) -> bool:
    if len(rel_parts) == 3:
        return bool(INSTITUTION_DIR.match(rel_parts[0]) and MOUNT_DIR.match(rel_parts[1])
                    and PATIENT_DIR.match(rel_parts[2]))
    return len(rel_parts) == 1 and bool(PATIENT_DIR.match(rel_parts[0]))


def _matcher(patterns: tuple[str, ...]) -> Callable[[str], object]:
    """Whether a name matches one of the `fnmatch` patterns, as one compiled expression: the listing asks it
    of every one of tens of thousands of names."""
    if not patterns:
        return lambda name: False
    return re.compile("|".join(f"(?:{fnmatch.translate(pattern)})" for pattern in patterns)).match


class _Walk:
    """One listing of the source. Paths are plain `/`-joined strings and names relative to a tree are built
    by appending: `pathlib` objects cost more than the listing itself on a database of small files."""

    def __init__(self, source: SourceListing, exclude: tuple[str, ...]) -> None:
        self.source = source
        self.excluded = _matcher(exclude)

    def walk(self, listing: Listing, top: str, top_rel: str, patients: dict[str, Listing] | None) -> None:
        """List `top` (`top_rel` from the root, "" for the root) into `listing`; with `patients` given,
        patient directories become listings of their own. Depth first (a stack of folders still to list),
        each patient directory listed when it is met: warnings and unreadable entries come in the same order
        as ever."""
        source, excluded = self.source, self.excluded
        files, dirs = listing.files, listing.dirs
        stack = [(top, "", top_rel)]  # (path, name relative to the listing's base, name relative to the root)
        while stack:
            current, rel, rel_root = stack.pop()
            try:
                with os.scandir(current) as scan:
                    entries = list(scan)
            except OSError as error:
                self.unreadable(listing, rel, rel_root, "dir", error.strerror or str(error), patients)
                continue
            prefix, prefix_root = (f"{rel}/" if rel else ""), (f"{rel_root}/" if rel_root else "")
            for entry in entries:
                name = entry.name
                if excluded(name):
                    source.skipped += 1
                    continue
                entry_rel, entry_root = prefix + name, prefix_root + name
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as error:  # a folder readable but not searchable: names are known, nothing else
                    self.unreadable(listing, entry_rel, entry_root, "dir" if _is_dir_entry(entry) else "file",
                                    f"cannot stat: {error.strerror}", patients)
                    continue
                mode = st.st_mode
                if stat.S_ISDIR(mode):
                    if patients is not None and _is_patient(entry_root.split("/")):
                        patient = Listing(Path(entry.path), dirs=[DirEntry(".", stat.S_IMODE(mode), st.st_mtime_ns)])
                        patients[entry_root] = patient
                        self.walk(patient, entry.path, entry_root, None)
                    else:
                        dirs.append(DirEntry(entry_rel, stat.S_IMODE(mode), st.st_mtime_ns))
                        stack.append((entry.path, entry_rel, entry_root))
                elif stat.S_ISREG(mode):
                    files.append(FileStat.of(entry_rel, st))
                else:
                    source.warnings.append(Problem(entry_root, "not a regular file (link, device...): skipped"))

    def unreadable(self, listing: Listing, rel: str, rel_root: str, kind: str, error: str,
                   patients: dict[str, Listing] | None) -> None:
        """Record what could not be listed or stat'ed: in its tree (the backup carries the earlier copy
        forward) and, above the patient directories, as a folder that may hide patients (kept from the last
        snapshot)."""
        if patients is not None and kind == "dir":
            self.source.unlistable.append(Unreadable(rel_root or ".", kind, error))
            if _is_patient(rel_root.split("/") if rel_root else ()):
                return  # a patient directory: that patient is kept whole from the last snapshot, not the root files
        listing.unreadable.append(Unreadable(rel or ".", kind, error))


def _is_dir_entry(entry: os.DirEntry) -> bool:
    """Whether an entry that cannot be stat'ed is a folder, from the type the listing itself gives."""
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def list_source(root: Path, exclude: tuple[str, ...], *, patients: bool = True) -> SourceListing:
    """The files of `root`: each patient directory a listing of its own, the rest in `other`; with `patients`
    false (a physics tree), everything in `other`."""
    source = SourceListing(root, {}, Listing(root))
    _Walk(source, exclude).walk(source.other, str(root), "", source.patients if patients else None)
    for listing in (*source.patients.values(), source.other):
        listing.files.sort(key=lambda f: f.name)
        listing.dirs.sort(key=lambda d: d.name)
    source.patients = dict(sorted(source.patients.items()))
    return source


def pinnacle_listing(config: Config) -> SourceListing:
    """The configured Pinnacle source (`[source.pinnacle]`) refused when it is not there (`check_source`), else
    listed: where `rtvault reconcile` and `archive now --idle` look the source up."""
    pinnacle = config.source.pinnacle
    return list_source(check_source(pinnacle.root), pinnacle.exclude)
