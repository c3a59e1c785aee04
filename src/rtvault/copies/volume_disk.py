"""The format of a removable disk (docs/design.md, "Removable disks"): plain files any `tar`, `sha256sum` and
`par2` can read in twenty years, without rtvault.

    rtvault-volume.json              label, UUID, created, format version
    README.txt                       what the disk holds and how to read or repair it (French, English)
    archives/<id>/<file>             the archive file byte for byte as stored (tar or tar.gz); id = its SHA-256
    archives/<id>/index.json         the archive's index as stored (members, patients, damage)
    archives/<id>/members.sha256     `sha256sum -c` manifest of its members, for after `tar -x`
    archives/<id>/SHA256SUMS         `sha256sum -c` manifest of the three files above
    archives/<id>/recovery*.par2     PAR2 recovery data over the four files (10 % redundancy)
    tmp/                             archives being written; emptied by the next sync
    damaged/<id>-<time>/             archives verify could not repair, set aside (sync copies them again)

An archive is written under tmp/<id>/, every file fsynced, then renamed to archives/<id>/ in one step: a
directory under archives/ is always complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from rtvault.archive import records
from rtvault.archive.formats import ArchiveRecord
from rtvault.errors import ConfigError, StoreError
from rtvault.store import Store
from rtvault.store.integrity import sha256_copy
from rtvault.utc import now_iso

VOLUME_FILE = "rtvault-volume.json"
README = "README.txt"
FORMAT = "rtvault-volume"
FORMAT_VERSION = 1
ARCHIVES, TMP, DAMAGED = "archives", "tmp", "damaged"
INDEX, MEMBERS, SUMS, RECOVERY = "index.json", "members.sha256", "SHA256SUMS", "recovery.par2"
REDUNDANCY_PERCENT = 10  # of the data's blocks: any damage up to that many blocks is repairable
_RESERVED = {INDEX, MEMBERS, SUMS}
_ID = re.compile(r"[0-9a-f]{64}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")

README_TEXT = f"""\
Disque d'archives rtvault / rtvault archive disk
================================================

FRANÇAIS
Ce disque contient des archives de patients Philips Pinnacle (radiothérapie), copiées par rtvault. Chaque
dossier archives/<id>/ contient :
  - le fichier d'archive, un tar (ou tar.gz) au format Pinnacle, identique octet pour octet à l'original ;
    son nom <id> est son empreinte SHA-256 ;
  - index.json : la liste des fichiers et des patients de l'archive ;
  - members.sha256 : les empreintes des fichiers contenus (à vérifier après extraction) ;
  - SHA256SUMS : les empreintes des trois fichiers ci-dessus ;
  - recovery*.par2 : des données de réparation PAR2 ({REDUNDANCY_PERCENT} % de redondance).
Lire sans rtvault :
    cd archives/<id>
    sha256sum -c SHA256SUMS          # les fichiers sont-ils intacts ?
    tar -tvf <fichier>               # lister (tar -xf pour extraire ; tar gère aussi les .tar.gz)
    sha256sum -c members.sha256      # après extraction, dans le dossier d'extraction
Réparer un fichier abîmé (paquet Debian « par2 ») :
    par2 repair recovery.par2
La réparation reconstruit jusqu'à {REDUNDANCY_PERCENT} % des blocs de données d'une archive ; un fichier
d'archive entièrement perdu ne peut pas être reconstruit : une autre copie (un autre disque, le NAS) est
nécessaire.

ENGLISH
This disk holds archives of Philips Pinnacle (radiotherapy) patients, copied by rtvault. Each folder
archives/<id>/ holds:
  - the archive file, a Pinnacle-format tar (or tar.gz), byte for byte the original; its name <id> is its
    SHA-256;
  - index.json: the list of the archive's files and patients;
  - members.sha256: the checksums of the files inside (check them after extracting);
  - SHA256SUMS: the checksums of the three files above;
  - recovery*.par2: PAR2 recovery data ({REDUNDANCY_PERCENT} % redundancy).
Reading without rtvault:
    cd archives/<id>
    sha256sum -c SHA256SUMS          # are the files intact?
    tar -tvf <file>                  # list (tar -xf to extract; tar reads .tar.gz too)
    sha256sum -c members.sha256      # after extracting, in the extracted folder
Repairing a damaged file (Debian package "par2"):
    par2 repair recovery.par2
Repair rebuilds up to {REDUNDANCY_PERCENT} % of an archive's data blocks; an archive file lost entirely cannot
be rebuilt: another copy (another disk, the NAS) is needed.

rtvault-volume.json names this disk (label, UUID); tmp/ holds unfinished copies, damaged/ archives that could
not be repaired.
"""


@dataclass(frozen=True)
class OnDisk:
    """One complete archive folder as read: its id, archive file name and size."""

    archive: str
    file: str
    bytes: int


def fsync_path(path: Path) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.partial")
    with open(temp, "wb") as sink:
        sink.write(data)
        sink.flush()
        os.fsync(sink.fileno())
    os.replace(temp, path)
    fsync_path(path.parent)


def file_name(record: ArchiveRecord) -> str:
    """The archive's own file name, made safe for any file system and tool (and never a reserved name)."""
    name = _UNSAFE.sub("_", os.path.basename(record.file)).lstrip(".-") or record.id[:16]
    wanted = ".tar.gz" if record.compression == "gzip" else ".tar"
    if not name.endswith((".tar", ".tar.gz", ".tgz")):
        name += wanted
    return name


def sha256_file(path: Path) -> str:
    with open(path, "rb") as source:
        return sha256_copy(source)[0]


def par2(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """par2cmdline (Debian's `par2`), quiet; its exit code tells the outcome (0 ok or repaired)."""
    exe = shutil.which("par2")
    if exe is None:
        raise ConfigError("par2", ["par2cmdline is not installed (apt install par2): removable disks need it"])
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, check=False)


def _copy_verified(store: Store, archive_id: str, out: Path) -> int:
    """The stored archive file to `out`, hashed on the way: a copy that does not hash to its id is refused."""
    with store.backend.open(records.tar_key(archive_id)) as source, open(out, "wb") as sink:
        digest, size = sha256_copy(source, sink)
        sink.flush()
        os.fsync(sink.fileno())
    if digest != archive_id:
        raise StoreError(f"archive {archive_id[:12]} in {store.location} does not match its id: not copied "
                         "(run `rtvault verify` and `rtvault repair` on the store)")
    return size


def write_archive(store: Store, archive_id: str, root: Path) -> OnDisk:
    """Copy one archive with its index and recovery data to the volume at `root`, atomically."""
    index = store.backend.get(records.record_key(archive_id))
    name = file_name(ArchiveRecord.from_json(json.loads(index)))
    work = root / TMP / archive_id
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    size = _copy_verified(store, archive_id, work / name)
    members = store.backend.get(records.checksum_key(archive_id)) if store.backend.exists(
        records.checksum_key(archive_id)) else b""
    (work / INDEX).write_bytes(index)
    (work / MEMBERS).write_bytes(members)
    sums = [f"{archive_id}  {name}\n"] + [f"{hashlib.sha256(data).hexdigest()}  {n}\n"
                                          for n, data in ((INDEX, index), (MEMBERS, members))]
    (work / SUMS).write_text("".join(sums), encoding="ascii")
    _create_recovery(work, [name, INDEX, MEMBERS, SUMS])
    for path in work.iterdir():
        fsync_path(path)
    fsync_path(work)
    target = root / ARCHIVES / archive_id
    target.parent.mkdir(exist_ok=True)
    os.rename(work, target)
    fsync_path(target.parent)
    return OnDisk(archive_id, name, size)


def _create_recovery(folder: Path, names: list[str]) -> None:
    done = par2(["create", "-q", "-q", f"-r{REDUNDANCY_PERCENT}", "-n1", RECOVERY, *names], folder)
    if done.returncode != 0:
        raise StoreError(f"par2 create failed in {folder} (exit {done.returncode}): "
                         f"{(done.stderr or done.stdout).strip()[-300:]}")


def complete_archives(root: Path) -> list[str]:
    """The ids of the archive folders under archives/ (each one complete, by the write order)."""
    folder = root / ARCHIVES
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and _ID.fullmatch(p.name))


def _sums(folder: Path, archive_id: str) -> dict[str, str] | None:
    """SHA256SUMS as {name: hash}, or None when it is missing, garbled or does not name the archive file."""
    try:
        lines = (folder / SUMS).read_text(encoding="ascii").splitlines()
        found = {name: digest for digest, name in (line.split("  ", 1) for line in lines if line)}
    except (OSError, ValueError):
        return None
    archive_files = [n for n, h in found.items() if h == archive_id and n not in _RESERVED and "/" not in n]
    return found if len(archive_files) == 1 and set(found) == {archive_files[0], INDEX, MEMBERS} else None


def describe(folder: Path, archive_id: str) -> OnDisk | None:
    """The archive file's name and size from SHA256SUMS, without reading the file; None when unreadable."""
    sums = _sums(folder, archive_id)
    name = next((n for n, h in sums.items() if h == archive_id), None) if sums else None
    try:
        return OnDisk(archive_id, name, (folder / name).stat().st_size) if name else None
    except OSError:
        return None


def _intact(folder: Path, archive_id: str) -> OnDisk | None:
    sums = _sums(folder, archive_id)
    if sums is None:
        return None
    for name, digest in sums.items():
        path = folder / name
        if not path.is_file() or sha256_file(path) != digest:
            return None
    name = next(n for n, h in sums.items() if h == archive_id)
    return OnDisk(archive_id, name, (folder / name).stat().st_size)


def _repair(folder: Path) -> str:
    """par2 repair from whichever recovery file is left; '' when it worked, else why not."""
    candidates = sorted(folder.glob("*.par2"), key=lambda p: (p.name != RECOVERY, p.name))
    if not candidates:
        return "no recovery data left"
    done = par2(["repair", "-q", "-q", candidates[0].name], folder)
    if done.returncode != 0:
        text = (done.stdout + done.stderr).strip().splitlines()
        return f"par2 repair failed (exit {done.returncode}{': ' + text[-1] if text else ''})"
    for leftover in folder.glob("*.1"):  # par2 keeps each damaged file it replaced as <name>.1
        leftover.unlink()
    return ""


@dataclass(frozen=True)
class Checked:
    archive: str
    outcome: str  # ok, repaired, unrepairable
    detail: str = ""
    found: OnDisk | None = None

    def to_json(self) -> dict[str, object]:
        return {"archive": self.archive, "file": self.found.file if self.found else "", "outcome": self.outcome,
                "detail": self.detail}


def check_archive(root: Path, archive_id: str) -> Checked:
    """Re-read one archive folder against its checksums; repair it with par2 when it does not match; an
    archive that stays damaged is moved to damaged/ so that the next sync copies it again."""
    folder = root / ARCHIVES / archive_id
    found = _intact(folder, archive_id)
    if found is not None:
        if not any(folder.glob("*.par2")):  # intact data: recovery data lost can be made again
            _create_recovery(folder, [found.file, INDEX, MEMBERS, SUMS])
            return Checked(archive_id, "ok", "recovery data was missing: created again", found)
        return Checked(archive_id, "ok", "", found)
    why = _repair(folder)
    found = None if why else _intact(folder, archive_id)
    if found is not None:
        return Checked(archive_id, "repaired", "repaired from the PAR2 recovery data", found)
    aside = root / DAMAGED / f"{archive_id}-{now_iso().replace(':', '')}"
    aside.parent.mkdir(exist_ok=True)
    os.rename(folder, aside)
    fsync_path(aside.parent)
    detail = why or "still damaged after par2 repair"
    return Checked(archive_id, "unrepairable", f"{detail}; moved to {aside.relative_to(root)}", None)


def clear_tmp(root: Path) -> None:
    """Unfinished copies of an interrupted sync: redone from the start."""
    shutil.rmtree(root / TMP, ignore_errors=True)
