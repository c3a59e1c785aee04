"""A Pinnacle database on disk as the tests read it: which files a backup keeps, their bytes and times."""

from __future__ import annotations

import os
import re
import socket
import stat
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"  # tests/fixtures
TRANSIENT_SUFFIXES = (".ErrorLog", ".Transcript", "~")


def is_transient(name: str) -> bool:
    """The files Pinnacle writes for itself and that a backup must skip (a name or a `/` path)."""
    base = name.rsplit("/", 1)[-1]
    return base.startswith(".auto.plan") or base.endswith(TRANSIENT_SUFFIXES)


def files_of(root: Path, *, transient: bool = False) -> dict[str, tuple[bytes, int, int]]:
    """Every file under root (relative `/` path) with its bytes, mtime in ns and permission bits; the
    transient ones only when asked."""
    found = {}
    for current, _dirs, names in os.walk(root):
        for name in names:
            path = Path(current, name)
            rel = path.relative_to(root).as_posix()
            if transient or not is_transient(rel):
                st = path.lstat()
                found[rel] = (path.read_bytes(), st.st_mtime_ns, st.st_mode & 0o7777)
    return found


def regular_files(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every regular file under root (relative `/` path): bytes, mtime in whole seconds (what tar keeps),
    permission bits."""
    found = {}
    for current, _dirs, names in os.walk(root):
        for name in names:
            path = Path(current, name)
            st = path.lstat()
            if stat.S_ISREG(st.st_mode):
                found[path.relative_to(root).as_posix()] = (path.read_bytes(), int(st.st_mtime), st.st_mode & 0o7777)
    return found


def file_bytes(root: Path) -> dict[str, bytes]:
    """Every file under root (relative `/` path), transient ones too: its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def kept_bytes(root: Path) -> dict[str, bytes]:
    """Every file a backup keeps (Pinnacle's autosaves, logs and editor backups are never backed up): its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not is_transient(p.name)}


def patient_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("Institution_*/Mount_*/Patient_*") if p.is_dir())


def patient_paths(root: Path) -> list[str]:
    """The patients' directories, relative `/` paths."""
    return sorted(p.relative_to(root).as_posix() for p in root.glob("Institution_*/Mount_*/Patient_*") if p.is_dir())


def set_last_name(patient_file: Path, name: str) -> None:
    """Rename a patient in its Patient file (Latin-1, `LastName = "...";`)."""
    set_field(patient_file, "LastName", name)


def set_field(patient_file: Path, name: str, value: str) -> None:
    """Change one text field of a Patient file (Latin-1, `Name = "...";`): `LastName`, `DateOfBirth` ..."""
    data = patient_file.read_bytes()
    changed, count = re.subn(rb"^" + name.encode() + rb' = "[^"]*";', f'{name} = "{value}";'.encode("latin-1"),
                             data, count=1, flags=re.MULTILINE)
    assert count == 1, f"{patient_file} has no {name}"
    patient_file.write_bytes(changed)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
