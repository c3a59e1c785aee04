"""`rtvault archive ingest`: old archives (DVD and tape copies) into the store, in one read of each file.

The file is copied into the store byte for byte while it is hashed (its SHA-256 is its id) and scanned by the
salvaging tar scanner: every member is hashed, gzip archives have their members stored as content objects too
(a gzip stream has no random access: this is what makes a one-patient restore as fast as from a plain tar).
A damaged archive is kept and indexed with what could be read; a file that is not an archive is refused.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import BinaryIO

from rtvault.archive import index, records
from rtvault.archive.formats import Stored
from rtvault.archive.inflate import Inflater
from rtvault.archive.tarscan import Member, ScanReport, scan
from rtvault.archive.tarwriter import ChunkReader
from rtvault.errors import InputError, os_failure
from rtvault.store import Store
from rtvault.store.objects import BLOCK, store_stream, wants_shuffle

CAPTURE_LIMIT = 16 << 20


class _StoreWriteFailed(Exception):
    """Writing the staged copy into the store failed (an Exception, not an OSError, so the scanner lets it
    through instead of taking it for damage in the archive)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class _Tee:
    """Reads the source, copying every byte into the staged store file and hashing it."""

    def __init__(self, source: BinaryIO, sink: BinaryIO) -> None:
        self.source, self.sink = source, sink
        self.hasher = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        try:
            self.sink.write(data)
        except OSError as error:  # the store's disk, not the archive: never taken for a damaged archive
            raise _StoreWriteFailed(error) from None
        self.hasher.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(BLOCK):
            pass


class _Collector:
    """Per regular member: its hash, the small files the index needs, and for gzip its stored object."""

    def __init__(self, store: Store, as_objects: bool) -> None:
        self.store = store
        self.as_objects = as_objects
        self.hashes: dict[int, str] = {}
        self.captured: dict[str, bytes] = {}

    def __call__(self, member: Member, chunks: Iterator[bytes]) -> None:
        keep = member.safe_name is not None and index.wants_capture(member.safe_name) and member.size < CAPTURE_LIMIT
        kept: list[bytes] = []
        if self.as_objects and member.safe_name is not None:
            reader = ChunkReader(_tapped(chunks, kept if keep else None), hashing=False)  # store_stream hashes
            try:
                digest, _size, _new = store_stream(self.store.backend, reader, wants_shuffle(member.name))
            except OSError as error:
                raise _StoreWriteFailed(error) from None
        else:
            hasher = hashlib.sha256()
            for chunk in _tapped(chunks, kept if keep else None):
                hasher.update(chunk)
            digest = hasher.hexdigest()
        self.hashes[member.header_offset] = digest
        if keep and member.complete:
            self.captured[member.safe_name or ""] = b"".join(kept)


def _tapped(chunks: Iterator[bytes], kept: list[bytes] | None) -> Iterator[bytes]:
    for chunk in chunks:
        if kept is not None:
            kept.append(chunk)
        yield chunk


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _not_regular(path: Path, mode: int) -> InputError:
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return InputError(f"{path} is {kind}, not an archive file: only regular files (and directories of them) "
                      "can be ingested")


def open_archive(path: Path) -> tuple[BinaryIO, int]:
    """The regular file at `path` (a symbolic link is followed), open for reading, and its size. Anything
    else is refused before it is read: a device never ends, and opening a FIFO would block. The file is opened
    without blocking and checked again once open, so that it cannot be swapped for a FIFO in between."""
    try:
        if not stat.S_ISREG(mode := os.stat(path).st_mode):
            raise _not_regular(path, mode)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise InputError(f"{path} does not exist") from None
    except OSError as error:
        raise os_failure(error, path, doing="read") from None
    opened = os.fstat(fd)
    if not stat.S_ISREG(opened.st_mode):
        os.close(fd)
        raise _not_regular(path, opened.st_mode)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb"), opened.st_size


def _member_record(member: Member, digest: str | None, status: str) -> dict:
    record = {**asdict(member), "status": status}
    if digest is not None:
        record["hash"] = digest
    return record


def _status(member: Member, verified_until: int, report: ScanReport) -> str:
    """What the archive proves about a member's data (docs/design.md, "Archives"): `verified_until` is the end
    of the decompressed bytes that a matching gzip checksum covers (0 for a plain tar: no checksum over data)."""
    if not member.complete:
        return index.LOST
    if member.data_offset + member.size <= verified_until:
        return index.VERIFIED
    return index.UNVERIFIED if report.checksum_failed else index.READ


def ingest_file(store: Store, path: Path, *, origin: str = "ingest") -> Stored:
    """Store and index one archive file; returns it, `already` when it was there before."""
    raw, size = open_archive(path)
    with raw:
        return _ingest_open(store, path, raw, size, origin)


def _ingest_open(store: Store, path: Path, raw: BinaryIO, size: int, origin: str) -> dict:
    try:
        compressed = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
    except OSError as error:
        raise os_failure(error, path, doing="read") from None
    collector = _Collector(store, as_objects=compressed)
    staged = store.backend.stage()
    try:
        tee = _Tee(raw, staged.file)
        stream = Inflater(tee, *_final_zeros(raw, size)) if compressed else tee
        report = scan(stream, collector, total_size=None if compressed else size)  # type: ignore[arg-type]
        tee.drain()
    except _StoreWriteFailed as failed:
        staged.discard()
        raise os_failure(failed.error, f"the copy of {path}", store=str(store.location)) from None
    except OSError as error:
        staged.discard()
        raise os_failure(error, path, doing="read") from None
    archive_id = tee.hasher.hexdigest()
    if not report.members:
        staged.discard()
        why = report.problems[0][1] if report.problems else "no member"
        raise InputError(f"{path} is not a tar or tar.gz archive ({why})")
    if records.exists(store, archive_id):
        staged.discard()
        return Stored(records.load(store, archive_id), already=True)
    staged.commit(records.tar_key(archive_id))
    verified_until = stream.verified_until if isinstance(stream, Inflater) else 0
    members = [_member_record(m, collector.hashes.get(m.header_offset), _status(m, verified_until, report))
               for m in report.members]
    problems = [text if str(offset) in text else f"at offset {offset}: {text}" for offset, text in report.problems]
    if isinstance(stream, Inflater) and stream.trailing_at is not None:
        problems.append(f"data after the end of the gzip stream at offset {stream.trailing_at} ignored")
    record = index.build_record(archive_id, members, problems, collector.captured, file=path.name,
                                compression="gzip" if compressed else "none", origin=origin, size=size,
                                source=str(path), damage_offsets=_damage_offsets(report))
    records.save(store, record)
    return Stored(record, already=False)


def _final_zeros(raw: BinaryIO, size: int) -> tuple[int, int]:
    """Where the file's final run of zero bytes starts, and its length (the file is left at offset 0)."""
    end = size
    while end > 0:
        raw.seek(max(0, end - BLOCK))
        block = raw.read(end - max(0, end - BLOCK))
        kept = block.rstrip(b"\0")
        if kept:
            end = end - len(block) + len(kept)
            break
        end -= len(block)
    raw.seek(0)
    return end, size - end


def _damage_offsets(report: ScanReport) -> list[float]:
    """Where the scan lost something: broken headers, and the cut of an archive with no end marker."""
    found: list[float] = [offset for offset, text in report.problems if "unreadable header" in text]
    return found if report.clean_end else [*found, float("inf")]


def archive_files(paths: list[Path]) -> list[Path]:
    """The paths named, and everything but directories under the directories named (copies of whole discs);
    `ingest_file` refuses what is not a regular file, so that nothing found is passed over in silence."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_symlink() or not p.is_dir()))
        elif os.path.lexists(path):
            found.append(path)
        else:
            raise InputError(f"{path} does not exist")
    return found
