"""What the archive tests share: a vault with an archive inbox, the database as a user sees it, and builders of
Pinnacle-format archives made the way Pinnacle and old backup scripts made them: with GNU `tar` (the filtered
`Institution` first, then `Institution_<I>/Mount_0/Patient_<P>/...`) and with Python's tarfile."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from kit.files import FIXTURES
from kit.vault import Vault
from rtvault.pinnacle.grammar import PObject, parse_bytes
from rtvault.store import Store

PATIENTS = 4
SEED = 1
GNU_TAR = shutil.which("tar")
SHARED_SAMPLE = FIXTURES / "pinnacle" / "pinnacle_io-01"


def make_vault(directory: Path, root: Path) -> Vault:
    """A configuration with an inbox (backups refuse to shrink by more than half) and an initialised store."""
    directory.mkdir(parents=True, exist_ok=True)
    made = Vault(root, directory / "store", directory / "rtvault.toml", directory / "inbox", max_shrink=0.5)
    made.inbox.mkdir()  # type: ignore[union-attr]
    made.configure()
    Store.init(made.store_path)
    return made


def fingerprint(root: Path) -> list[tuple[str, int, int, int, str]]:
    """Every entry under root: mode, mtime, size and content digest (a file's), to tell that nothing changed."""
    found = []
    for current, _dirs, names in os.walk(root):
        for name in [*_dirs, *names]:
            path = Path(current, name)
            st = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else ""
            found.append((path.relative_to(root).as_posix(), st.st_mode, st.st_mtime_ns, st.st_size, digest))
    return sorted(found)


# --- the database as a user sees it ------------------------------------------------------------------------------

def dirs_of(root: Path) -> dict[str, tuple[int, int]]:
    """Every directory under root, root included as ".": (mtime in whole seconds, permission bits)."""
    found = {}
    for current, _dirs, _names in os.walk(root):
        st = os.lstat(current)
        found[Path(current).relative_to(root).as_posix()] = (int(st.st_mtime), st.st_mode & 0o7777)
    return found


def entries_of(root: Path) -> dict[str, tuple[str, int]]:
    """Every entry under root, never following a link: (kind, size). For before/after comparisons."""
    found: dict[str, tuple[str, int]] = {}
    if not root.exists():
        return found
    for current, dirs, names in os.walk(root):
        for name in dirs + names:
            path = Path(current, name)
            st = os.lstat(path)
            kind = ("dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else
                    "symlink" if stat.S_ISLNK(st.st_mode) else "other")
            found[path.relative_to(root).as_posix()] = (kind, st.st_size if kind == "file" else 0)
    return found


def assert_only_files_and_dirs(root: Path) -> None:
    """No symlink, device, fifo or socket anywhere under root, and no file with several hard links."""
    for current, dirs, names in os.walk(root):
        for name in dirs + names:
            st = os.lstat(Path(current, name))
            assert stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode), f"{Path(current, name)}: {st.st_mode:o}"
            if stat.S_ISREG(st.st_mode):
                assert st.st_nlink == 1, f"{Path(current, name)} has {st.st_nlink} hard links"


def _field(data: bytes, key: str) -> str:
    found = re.search(rb"^" + key.encode() + rb' = "?([^";\n]*)"?;', data, re.MULTILINE)
    return found.group(1).decode("latin-1") if found else ""


def identity_of(patient_dir: Path) -> dict[str, object]:
    """Who a patient is, read by hand from its Patient file (Latin-1, `Key = value;`)."""
    data = (patient_dir / "Patient").read_bytes()
    birth = re.split(r"[ /-]", _field(data, "DateOfBirth"))
    return {"patient_id": int(_field(data, "PatientID")), "last_name": _field(data, "LastName"),
            "first_name": _field(data, "FirstName"), "mrn": _field(data, "MedicalRecordNumber"),
            "birth_date": "-".join(birth) if len(birth) == 3 else None}


def parse_institution(data: bytes) -> PObject:
    return parse_bytes(data, "Institution").root


def listed_paths(institution: bytes) -> list[str]:
    """The PatientPath of every PatientLite of an Institution file."""
    lites = parse_institution(institution).child("PatientLiteList")
    return [str(item.get("PatientPath")) for item in (lites.items_list() if lites else []) if isinstance(item, PObject)]


_LITE = re.compile(rb"  PatientLite =\{\n.*?\n  \};\n", re.DOTALL)


def filtered_header(institution: bytes, keep: list[str]) -> bytes:
    """The Institution file as Pinnacle puts it at the head of an archive: only the archived patients listed."""
    def pick(match: re.Match[bytes]) -> bytes:
        path = re.search(rb'PatientPath = "([^"]*)"', match.group(0))
        return match.group(0) if path and path.group(1).decode("latin-1") in keep else b""
    return _LITE.sub(pick, institution)


# --- building archives -------------------------------------------------------------------------------------------

def gnu_tar(*args: str | Path) -> None:
    if GNU_TAR is None:
        pytest.skip("GNU tar is not installed")
    subprocess.run([GNU_TAR, *map(str, args)], check=True, capture_output=True)


def pinnacle_tar(db: Path, out: Path, patients: list[str], *, gz: bool = False, fmt: str = "gnu",
                 header: bool = True, filtered: bool = True, prefix: str = "") -> Path:
    """A Pinnacle-format archive of `patients` (relative paths) made with GNU tar: the Institution file first
    (filtered to those patients unless told otherwise), then the patients' directories, optionally under a
    folder `prefix` (as when a whole NewPatients/ tree was tarred)."""
    stage = out.parent / f"stage-{out.name}"
    shutil.rmtree(stage, ignore_errors=True)
    top = stage / prefix if prefix else stage
    top.mkdir(parents=True)
    names: list[str] = []
    if header:
        source = db / patients[0].split("/")[0] / "Institution"
        institution = source.read_bytes()
        (top / "Institution").write_bytes(filtered_header(institution, patients) if filtered else institution)
        shutil.copystat(source, top / "Institution")  # same bytes in, same archive out: damage lands alike
        names.append(f"{prefix}/Institution" if prefix else "Institution")
    for path in patients:
        shutil.copytree(db / path, top / path, symlinks=True)
        for parent in (top / path).parents:  # directory mtimes as in the database
            if parent == top:
                break
            shutil.copystat(db / parent.relative_to(top), parent)
        names.append(f"{prefix}/{path}" if prefix else path)
    gnu_tar(f"--format={fmt}", "--sort=name", "-czf" if gz else "-cf", out, "-C", stage, *names)
    shutil.rmtree(stage)
    return out


def old_tar(db: Path, out: Path, patient: str, *, gz: bool = True) -> Path:
    """A very old archive: a bare `Patient_<P>/` and no Institution header."""
    parent = db / patient.rsplit("/", 1)[0]
    gnu_tar("--sort=name", "-czf" if gz else "-cf", out, "-C", parent, patient.rsplit("/", 1)[1])
    return out


def add_member(tar: tarfile.TarFile, name: str, data: bytes = b"", *, kind: bytes = tarfile.REGTYPE,
               link: str = "", mode: int = 0o644, mtime: int = 1_600_000_000) -> None:
    """Add a member by hand, whatever its name, type or link (tarfile does not check them when writing)."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.mtime = kind, link, mode, mtime
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def members_of(archive: Path) -> list[tarfile.TarInfo]:
    """The members of an intact archive as Python's tarfile reads them (offsets in the uncompressed stream)."""
    with tarfile.open(archive) as tar:
        return tar.getmembers()
