"""The backup source as files: which patient directories and other files a Pinnacle root holds, with their
stat, the transient files excluded. Only ever reads."""

from __future__ import annotations

import fnmatch
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from rtvault.errors import Problem, SourceRefused
from rtvault.pinnacle.discover import INSTITUTION_DIR, MOUNT_DIR, PATIENT_DIR
from rtvault.store.formats import DirEntry, FileStat


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


def check_source(root: Path | None) -> Path:
    """Refuse a source that is not there: backing up nothing would let retention forget real patients."""
    if root is None:
        raise SourceRefused("no source: set [source.pinnacle] root in the configuration")
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


def _is_patient(rel_parts: tuple[str, ...]) -> bool:
    if len(rel_parts) == 3:
        return bool(INSTITUTION_DIR.match(rel_parts[0]) and MOUNT_DIR.match(rel_parts[1])
                    and PATIENT_DIR.match(rel_parts[2]))
    return len(rel_parts) == 1 and bool(PATIENT_DIR.match(rel_parts[0]))


def _excluded(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _walk(listing: Listing, top: Path, exclude: tuple[str, ...], source: SourceListing,
          patients: dict[str, Listing] | None) -> None:
    """List `top` into `listing`; with `patients` given, patient directories become listings of their own."""
    stack = [top]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError as error:
            _unreadable(listing, current, "dir", error.strerror or str(error), source, patients)
            continue
        for entry in entries:
            path = Path(entry.path)
            if _excluded(entry.name, exclude):
                source.skipped += 1
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as error:  # a folder readable but not searchable: names are known, nothing else
                _unreadable(listing, path, "dir" if _is_dir_entry(entry) else "file",
                            f"cannot stat: {error.strerror}", source, patients)
                continue
            rel_to_root = path.relative_to(source.root)
            if stat.S_ISDIR(st.st_mode):
                if patients is not None and _is_patient(rel_to_root.parts):
                    patient = Listing(path, dirs=[DirEntry(".", stat.S_IMODE(st.st_mode), st.st_mtime_ns)])
                    patients[rel_to_root.as_posix()] = patient
                    _walk(patient, path, exclude, source, None)
                else:
                    listing.dirs.append(DirEntry(path.relative_to(listing.base).as_posix(),
                                                stat.S_IMODE(st.st_mode), st.st_mtime_ns))
                    stack.append(path)
            elif stat.S_ISREG(st.st_mode):
                listing.files.append(FileStat.of(path.relative_to(listing.base).as_posix(), st))
            else:
                source.warnings.append(Problem(rel_to_root.as_posix(), "not a regular file (link, device...): skipped"))


def _is_dir_entry(entry: os.DirEntry) -> bool:
    """Whether an entry that cannot be stat'ed is a folder, from the type the listing itself gives."""
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _unreadable(listing: Listing, path: Path, kind: str, error: str, source: SourceListing,
                patients: dict[str, Listing] | None) -> None:
    """Record what could not be listed or stat'ed: in its tree (the backup carries the earlier copy forward)
    and, above the patient directories, as a folder that may hide patients (kept from the last snapshot)."""
    name = "." if path == listing.base else path.relative_to(listing.base).as_posix()
    if patients is not None and kind == "dir":
        source.unlistable.append(Unreadable(_rel(source.root, path), kind, error))
        if _is_patient(path.relative_to(source.root).parts):
            return  # a patient directory: that patient is kept whole from the last snapshot, not the root files
    listing.unreadable.append(Unreadable(name, kind, error))


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix() if path != root else "."


def list_source(root: Path, exclude: tuple[str, ...]) -> SourceListing:
    source = SourceListing(root, {}, Listing(root))
    _walk(source.other, root, exclude, source, source.patients)
    for listing in (*source.patients.values(), source.other):
        listing.files.sort(key=lambda f: f.name)
        listing.dirs.sort(key=lambda d: d.name)
    source.patients = dict(sorted(source.patients.items()))
    return source
