"""`rtvault dicom import PATH...`: DICOM files from media (folders, DICOMDIR media from CDs and USB keys, zip files)
stored as the DICOM node stores what peers send (docs/design.md, "The DICOM node", "Import").

- A folder is walked whole (symbolic links are not followed); a `DICOMDIR` found there is read and the files it
  references are looked for (one it names that is missing is named), and every other file is still looked at.
- A zip file (a PATH or a file found in a folder) is read member by member in memory, never extracted to disk
  under its members' names: no hostile name (`../../etc/x`), symbolic link or zip bomb reaches the disk; a
  member larger than `MAX_FILE`, or inflating past `BOMB_RATIO` times its compressed size, is refused.
- Each file is described (`dicom.received.describe`), given rtvault's meta (`part10`) and stored through the
  receiver (`Receiver.put`, origin "import", source its path on the medium): durable once `put` returns, the
  same object stored once however often imported. A file that is not DICOM, unreadable or refused is named with
  why, and the exit code is 9.
- The receiver holds `locks/receiver.json`: while `rtvault dicom serve` runs on the store, the import stops at
  once (exit 6, the lock's) and says to stop the node or send the files to it; it never writes beside it.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.multival import MultiValue

from rtvault.config import Config
from rtvault.dicom.received import UNPARSABLE, Refused, dataset_of, describe, part10
from rtvault.errors import InputError, LockBusy, PartialResult, StoreError
from rtvault.events import NoProgress, Progress
from rtvault.jobs.dicom_receive import Receiver, Stored
from rtvault.report import OK, Line, Report, Verdict, err

MAX_FILE = 1 << 30  # a file or zip member is read whole into memory: a larger one is refused
BOMB_RATIO = 1000  # a zip member inflating past this many times its compressed size is refused
WORKERS = 4  # files described and stored at once: the receiver commits them together (one fsync)
ZIP_MAGIC = b"PK\x03\x04"
SPECIAL = "neither a file nor a folder (a device, a pipe or a socket): not read"
NOT_DICOM = "not a DICOM file (no DICM preamble, and no data set at its start)"


@dataclass(frozen=True)
class NotImported:
    """A file not imported: where it is (a path, or `zip!member`) and why, in one sentence."""

    source: str
    why: str

    def to_json(self) -> dict[str, str]:
        return {"source": self.source, "why": self.why}


@dataclass
class DicomImport(Report):
    """What `rtvault dicom import` stored, found already stored, and could not import."""

    paths: list[str]
    store: str
    files: int = 0  # files (and zip members) looked at, DICOMDIRs included
    stored: int = 0  # new objects stored
    duplicates: int = 0  # objects the store already held (the same medium imported twice adds nothing)
    dicomdirs: list[str] = field(default_factory=list)
    not_imported: list[NotImported] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the receiver's (catalog not reachable...)

    def to_json(self) -> dict[str, object]:
        return {"paths": self.paths, "store": self.store, "files": self.files, "stored": self.stored,
                "duplicates": self.duplicates, "dicomdirs": self.dicomdirs,
                "not_imported": [n.to_json() for n in self.not_imported], "problems": self.problems}

    def lines(self) -> Iterable[Line]:
        yield Line(f"{self.files} file(s) looked at: {self.stored} DICOM object(s) stored in {self.store}, "
                   f"{self.duplicates} already there" + (f", {len(self.dicomdirs)} DICOMDIR(s) read"
                                                         if self.dicomdirs else ""))
        yield from (err(f"  not imported: {n.source}: {n.why}") for n in self.not_imported)

    def warnings(self) -> Iterable[str]:
        return self.problems

    def verdict(self) -> Verdict:
        if not self.not_imported:
            return OK
        return Verdict.failed(PartialResult(f"{len(self.not_imported)} file(s) could not be imported (named "
                                            "above); every other DICOM file is stored"))


@dataclass(frozen=True)
class _Found:
    """A file to import, read whole; or, with `why`, one that could not be read."""

    source: str
    data: bytes = b""
    why: str = ""


def import_dicom(config: Config, paths: list[Path], *, progress: Progress | None = None) -> DicomImport:
    """Import the DICOM files under `paths` (folders, DICOMDIR media, zip files, single files) into the store
    the DICOM node receives into (`[dicom] store`, default the primary)."""
    missing = [str(p) for p in paths if not p.exists() and not p.is_symlink()]
    if missing:
        raise InputError(f"{', '.join(missing)}: no such file or folder: give the folder, DICOMDIR or zip file to "
                         "import")
    progress = progress or NoProgress()
    receiver = Receiver(config)
    report = DicomImport([str(p) for p in paths], receiver.store.location)
    try:
        receiver.start()
    except LockBusy as error:
        raise LockBusy(f"the DICOM node is receiving into {receiver.store.location} ({error}): stop `rtvault "
                       "dicom serve` (or the daemon running it) and import again, or send the files to the node "
                       "with a DICOM sender such as storescu") from None
    progress.begin("Importing DICOM files", None)
    try:
        _store_all(receiver, _found(paths, report), report, progress)
    finally:
        progress.end()
        receiver.close()
        report.problems += [str(p) for p in receiver.problems]
    report.not_imported.sort(key=lambda n: n.source)
    report.dicomdirs.sort()
    return report


def _store_all(receiver: Receiver, found: Iterator[_Found], report: DicomImport, progress: Progress) -> None:
    """Describe and store every file, WORKERS at a time (their fsyncs shared), at most 2 × WORKERS in memory."""
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="rtvault-import") as pool:
        pending: list[tuple[_Found, Future[Stored | str]]] = []
        for item in found:
            report.files += 1
            if item.why:
                report.not_imported.append(NotImported(item.source, item.why))
                continue
            pending.append((item, pool.submit(_store_one, receiver, item)))
            if len(pending) >= 2 * WORKERS:
                _collect(pending.pop(0), report, progress)
        while pending:
            _collect(pending.pop(0), report, progress)


def _collect(job: tuple[_Found, Future[Stored | str]], report: DicomImport, progress: Progress) -> None:
    item, future = job
    try:
        outcome = future.result()
    except StoreError as error:
        raise StoreError(f"{error}: the import stopped at {item.source} ({report.stored} object(s) stored before "
                         "it are safe); import the same paths again once the store can be written") from None
    progress.advance()
    if isinstance(outcome, str):
        report.not_imported.append(NotImported(item.source, outcome))
    elif outcome.duplicate:
        report.duplicates += 1
    else:
        report.stored += 1


def _may_be_dicom(head: bytes) -> bool:
    """A Part 10 file (`DICM` after the preamble) or a bare data set (a group 0002 or 0008 tag first)."""
    return head[128:132] == b"DICM" or head[:2] in (b"\x08\x00", b"\x02\x00")


def _store_one(receiver: Receiver, item: _Found) -> Stored | str:
    """Store one file as the node stores a C-STORE; the reason, when it is not a DICOM object rtvault stores."""
    try:
        data = item.data
        if not _may_be_dicom(data):
            return NOT_DICOM
        tags = describe(data)
        dataset, syntax = dataset_of(data)
        file = part10(dataset, tags["SOPClassUID"], tags["SOPInstanceUID"], syntax)
        # what is indexed is what is stored: the file as rebuilt, described again (a meta group length that lies
        # would otherwise cut the data set wrong and store bytes no reader can parse under the original's tags)
        stored = describe(file, expected_class=tags["SOPClassUID"])
        if stored["SOPInstanceUID"] != tags["SOPInstanceUID"]:
            return (f"its data set cannot be separated from its meta information (SOP instance "
                    f"{stored['SOPInstanceUID']} read after it, {tags['SOPInstanceUID']} in it)")
        tags = stored
    except Refused as refused:
        return refused.why
    except UNPARSABLE as error:  # pydicom's errors on a hostile file: the file is named
        return f"not a DICOM file rtvault can read ({type(error).__name__}: {error})"
    return receiver.put(file, tags, origin="import", source=item.source)


# --- finding the files ----------------------------------------------------------------------------------------


def _found(paths: list[Path], report: DicomImport) -> Iterator[_Found]:
    for path in paths:
        if path.is_symlink() and not path.resolve().exists():
            yield _Found(str(path), why="a symbolic link to nothing")
        elif path.is_dir():
            yield from _folder(path, report)
        elif path.name.upper() == "DICOMDIR":
            yield from _folder(path.parent, report)
        elif not path.is_file():
            yield _Found(str(path), why=SPECIAL)
        else:
            yield from _file(path, report)


def _file(path: Path, report: DicomImport) -> Iterator[_Found]:
    found = _read(path)
    if not found.why and found.data[:4] == ZIP_MAGIC:
        yield from _zip(path, report)
    else:
        yield found


def _read(path: Path) -> _Found:
    try:
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            head = file.read(132)
            if not _may_be_dicom(head) and head[:4] != ZIP_MAGIC:  # a film, a viewer's program: not read whole
                return _Found(str(path), why=NOT_DICOM)
            if size > MAX_FILE:
                return _Found(str(path), why=f"larger than {MAX_FILE >> 20} MiB: not read")
            return _Found(str(path), head + file.read(MAX_FILE + 1 - len(head)))
    except OSError as error:
        return _Found(str(path), why=f"cannot be read ({error.strerror or error})")


def _folder(root: Path, report: DicomImport) -> Iterator[_Found]:
    """Every file under `root` (links not followed), those a DICOMDIR names first; the DICOMDIRs are read, not
    imported, and a file one names that is missing is named."""
    files, links, unlisted = _walk(root)
    yield from unlisted
    by_name = {f.relative_to(root).as_posix().upper(): f for f in files}
    seen: set[Path] = set()
    for directory in [f for f in files if f.name.upper() == "DICOMDIR"]:
        report.dicomdirs.append(str(directory))
        seen.add(directory)
        report.files += 1
        for named, why in _dicomdir_files(directory, root, by_name):
            if why:
                yield _Found(named, why=why)
            elif Path(named) not in seen:
                seen.add(Path(named))
                yield from _file(Path(named), report)
    yield from (_Found(str(link), why="a symbolic link: not followed") for link in links)
    for path in files:
        if path not in seen:
            yield from _file(path, report)


def _walk(root: Path) -> tuple[list[Path], list[Path], list[_Found]]:
    """The regular files under `root`, sorted, its symbolic links (neither followed nor imported), and what could
    not be imported: folders that cannot be listed, devices, pipes and sockets."""
    files, links, unlisted = [], [], []

    def unreadable(error: OSError) -> None:
        unlisted.append(_Found(str(error.filename), why=f"a folder that cannot be listed ({error.strerror})"))

    for folder, dirs, names in os.walk(root, onerror=unreadable, followlinks=False):
        dirs.sort()
        for name in sorted(names) + [d for d in dirs if (Path(folder) / d).is_symlink()]:
            path = Path(folder) / name
            try:
                mode = path.lstat().st_mode
            except OSError:
                continue
            if stat.S_ISLNK(mode):
                links.append(path)
            elif stat.S_ISREG(mode):
                files.append(path)
            else:
                unlisted.append(_Found(str(path), why=SPECIAL))
    return sorted(files), sorted(links), unlisted


def _dicomdir_files(dicomdir: Path, root: Path, by_name: dict[str, Path]) -> Iterator[tuple[str, str]]:
    """(path, "") of each file a DICOMDIR references, or (what it names, why not) when it cannot be used."""
    try:
        records = pydicom.dcmread(dicomdir, force=True).get("DirectoryRecordSequence") or []
        names = [_parts(record.ReferencedFileID) for record in records if record.get("ReferencedFileID")]
    except UNPARSABLE as error:  # a damaged DICOMDIR: the files are still walked
        yield str(dicomdir), f"a DICOMDIR that cannot be read ({type(error).__name__}: {error}); the files " \
                             "beside it are looked at all the same"
        return
    base = dicomdir.parent.relative_to(root).as_posix()
    for parts in names:
        relative = "/".join(str(p) for p in parts)
        if any(p in ("", ".", "..") or "/" in str(p) or "\\" in str(p) for p in parts):
            yield f"{dicomdir}: {relative}", "a file reference that leaves the medium: not followed"
            continue
        key = (f"{base}/{relative}" if base != "." else relative).upper()
        found = by_name.get(key)
        if found is None:
            yield f"{dicomdir.parent / relative}", "named by the DICOMDIR but missing from the medium"
        else:
            yield str(found), ""


def _parts(value: object) -> tuple[str, ...]:
    return tuple(str(p) for p in value) if isinstance(value, MultiValue) else (str(value),)


def _zip(path: Path, report: DicomImport) -> Iterator[_Found]:
    """Each member of a zip file, read in memory with size limits; never written to disk."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        yield _Found(str(path), why=f"not a zip file that can be read ({error})")
        return
    with archive:
        for info in archive.infolist():
            source = f"{path}!{info.filename}"
            if info.is_dir():
                continue
            if info.filename.rsplit("/", 1)[-1].upper() == "DICOMDIR":
                report.dicomdirs.append(source)  # its members are all looked at anyway
                report.files += 1
                continue
            yield _member(archive, info, source)


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: str) -> _Found:
    if stat.S_ISLNK(info.external_attr >> 16):
        return _Found(source, why="a symbolic link in the zip: not followed")
    if info.flag_bits & 0x1:
        return _Found(source, why="an encrypted member: extract it with its password and import the file")
    if info.file_size > MAX_FILE:
        return _Found(source, why=f"larger than {MAX_FILE >> 20} MiB once inflated: not read")
    if info.file_size > (1 << 20) and info.file_size > BOMB_RATIO * max(info.compress_size, 1):
        return _Found(source, why=f"inflates {info.file_size // max(info.compress_size, 1)} times: a zip bomb, "
                                  "not read")
    try:
        with archive.open(info) as member:
            data = member.read(info.file_size + 1)  # never more than it declares (zipfile checks it and the CRC)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError, RuntimeError) as error:
        return _Found(source, why=f"cannot be read from the zip ({error})")
    if len(data) > info.file_size:
        return _Found(source, why="larger than the zip says: damaged or hostile, not read")
    if data[:4] == ZIP_MAGIC:
        return _Found(source, why="a zip inside the zip: extract it and import the inner zip")
    return _Found(source, data)
