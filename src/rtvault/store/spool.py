"""The DICOM node's spool: received instances made durable one fsync at a time, before they are sealed into the
store's packs and receipts (docs/design.md, "The DICOM node").

A spool file `dicom/spool/<receipt id>.spool` lies in the store's directory and is only ever appended to, by the
one receiver holding `locks/receiver.json`. It starts with MAGIC; each record is

    b"RS" | meta length (u32 LE) | data length (u64 LE) | meta (ASCII JSON) | data | SHA-256 of meta + data

where data is the instance as received (a DICOM Part 10 file) and meta what the receipt will say of it. In an
encrypted store, meta + data are sealed with the store's key (named by the spool key and the record's offset),
so nothing of a patient lies there in clear. A record is answered to its peer only once fsynced; a torn last
record (a crash mid-write: never answered) is ignored by the reader and cut off by the next append. A damaged
record followed by whole ones (a disk's damage, not a crash) is skipped, the reader finding the next whole record
by its checksum, and named to the caller (`skipped`), who must not take the file for fully read.

Records are written (`append_stream`) and read (`records`, `record_at`, `Record.open`) in blocks: an object of any
size goes through the spool in bounded memory. The folder also holds the node's `*.incoming` files (a C-STORE's
data set as it arrives: `jobs/dicom_node_net.py`), never spool files; `clean_incoming` removes those left.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from rtvault.errors import StoreError, os_failure
from rtvault.store.backend import Backend, DirectoryBackend, _fsync_dir
from rtvault.store.crypto import CHUNK_SHIFT, HEADER, TAG, TRAILER, EncryptedBackend, _Sealer, _Unsealed, unseal
from rtvault.store.readers import PositionedReader, read_exact

SPOOL_DIR = "dicom/spool"
MAGIC = b"RTVSPOOL1\n"
_HEAD = struct.Struct("<2sIQ")
_RECORD = b"RS"
MAX_META = 1 << 20
MAX_DATA = 1 << 34


COPY = 1 << 20  # bytes read or written at a time: an object of any size is spooled and sealed in bounded memory
PRELOAD = 16 << 20  # a record up to this size is read whole, once (checked and kept), larger ones in blocks
INCOMING = ".incoming"  # a C-STORE's data set as it arrives, in the spool's folder (removed once spooled)


@dataclass(frozen=True)
class Record:
    """A whole record of a spool file: its meta, and its data read from the file when asked (`open`, `data`)."""

    offset: int
    meta: dict
    size: int  # bytes of data
    path: Path
    key: str
    encrypted: EncryptedBackend | None
    start: int  # where its payload starts in the file
    end: int  # where its payload ends (its checksum follows)
    meta_len: int
    preloaded: bytes | None = None  # the data of a small record, read with its checksum

    def open(self) -> BinaryIO:
        """The record's data as a stream (decrypted a chunk at a time in an encrypted store)."""
        if self.preloaded is not None:
            return io.BytesIO(self.preloaded)
        if self.encrypted is None:
            return io.BufferedReader(_Window(self.path, self.start + self.meta_len, self.end), COPY)
        unsealed = _Unsealed(self.encrypted.master, _Window(self.path, self.start, self.end),
                             f"{self.key}@{self.offset}", self.end - self.start, str(self.path))
        unsealed.seek(self.meta_len)
        return io.BufferedReader(unsealed, COPY)

    @property
    def data(self) -> bytes:
        if self.preloaded is not None:
            return self.preloaded
        with self.open() as stream:
            return read_exact(stream, self.size)


class _Window(PositionedReader):
    """Bytes `start` to `end` of a file, read as a seekable file of their own."""

    def __init__(self, path: Path, start: int, end: int) -> None:
        self.file = open(path, "rb")  # noqa: SIM115 (closed with the window)
        self.start, self.length, self.position = start, end - start, 0

    def readinto(self, buffer: Any) -> int:
        count = max(0, min(len(buffer), self.length - self.position))
        if not count:
            return 0
        self.file.seek(self.start + self.position)
        got = self.file.readinto(memoryview(buffer)[:count])
        self.position += got or 0
        return got or 0

    def close(self) -> None:
        self.file.close()
        super().close()


class _Sink:
    """Writes every byte to the spool's descriptor (Linux writes at most 0x7ffff000 bytes a call: a short write is
    continued, a write of nothing is a full disk) and hashes what it wrote."""

    def __init__(self, fd: int) -> None:
        self.fd, self.hasher, self.written = fd, hashlib.sha256(), 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.hasher.update(view)
        _write_all(self.fd, view)
        self.written += view.nbytes
        return view.nbytes


def _write_all(fd: int, data: Any) -> None:
    view, done = memoryview(data).cast("B"), 0
    while done < view.nbytes:
        written = os.write(fd, view[done:])
        if written <= 0:
            raise OSError(28, "short write (no space left on device?)")
        done += written


def sealed_size(plain: int) -> int:
    """The size of `plain` bytes sealed (crypto.py: header, 1 MiB chunks each with its tag, trailer)."""
    return HEADER + plain + max(1, -(-plain // (1 << CHUNK_SHIFT))) * TAG + TRAILER


def directory_of(backend: Backend) -> tuple[Path, EncryptedBackend | None]:
    """The directory a store's files lie in, and its encryption layer when it has one; StoreError for a store
    that is not a directory (an S3 store cannot be appended to: receive into a directory store, replicate on)."""
    encrypted = None
    layer: object = backend
    while not isinstance(layer, DirectoryBackend):
        if isinstance(layer, EncryptedBackend):
            encrypted = layer
        inner = getattr(layer, "inner", None)
        if inner is None:
            raise StoreError(f"{backend.location} is not a directory store: the DICOM node receives into a store on "
                             "a local disk or a NAS ([dicom] store); replication then copies what it received to S3")
        layer = inner
    return layer.root, encrypted


class Spool:
    """One spool file, opened for appending (`create`) or read back (`records`)."""

    def __init__(self, path: Path, key: str, encrypted: EncryptedBackend | None, fd: int, size: int) -> None:
        self.path, self.key, self.encrypted, self._fd, self.size = path, key, encrypted, fd, size

    @classmethod
    def create(cls, root: Path, ident: str, encrypted: EncryptedBackend | None) -> Spool:
        key = f"{SPOOL_DIR}/{ident}.spool"
        path = root / key
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
            os.write(fd, MAGIC)
            os.fsync(fd)
            _fsync_dir(path.parent)
        except OSError as error:
            raise os_failure(error, path, store=str(root)) from None
        return cls(path, key, encrypted, fd, len(MAGIC))

    def append(self, meta: dict, data: bytes) -> int:
        """Write one record (not yet durable: `sync`); its offset. On failure (a full disk) the file is cut back
        to where it was, so a later record never follows a torn one, and StoreError names the spool."""
        return self.append_stream(meta, [data], len(data))

    def append_stream(self, meta: dict, blocks: Iterable[bytes], size: int) -> int:
        """`append` of data given as blocks (`size` bytes in all), written as they come: an object of any size is
        spooled in bounded memory (sealed a chunk at a time in an encrypted store). The record is the one
        `append` writes of the same bytes."""
        body = json.dumps(meta, sort_keys=True, ensure_ascii=True).encode("ascii")
        plain = len(body) + size
        payload = sealed_size(plain) if self.encrypted is not None else plain
        offset = self.size
        try:
            _write_all(self._fd, _HEAD.pack(_RECORD, len(body), payload - len(body)))
            sink = _Sink(self._fd)
            out: Any = _Sealer(self.encrypted.master, sink) if self.encrypted is not None else sink
            out.write(body)
            given = 0
            for block in blocks:
                out.write(block)
                given += len(block)
            if given != size:
                raise StoreError(f"{self.path}: the object to spool changed size ({given} bytes, not {size})")
            if self.encrypted is not None:
                out.finish(f"{self.key}@{offset}")
            if sink.written != payload:
                raise StoreError(f"{self.path}: internal error: a record of {sink.written} bytes, {payload} expected")
            _write_all(self._fd, sink.hasher.digest())
        except OSError as error:
            self._cut(offset)
            raise os_failure(error, self.path, store=str(self.path.parent)) from None
        except BaseException:
            self._cut(offset)
            raise
        self.size = offset + _HEAD.size + payload + 32
        return offset

    def _cut(self, size: int) -> None:
        """Cut the file back to `size`; when it cannot be cut, `size` follows the file's real end, so that the next
        record's offset (what an encrypted record is sealed under) is where O_APPEND writes it."""
        try:
            os.ftruncate(self._fd, size)
            self.size = size
        except OSError:  # the reader skips the torn record left there
            with contextlib.suppress(OSError):
                self.size = os.fstat(self._fd).st_size

    def sync(self) -> None:
        try:
            os.fdatasync(self._fd)
        except OSError as error:
            raise os_failure(error, self.path, store=str(self.path.parent)) from None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    @staticmethod
    def records(path: Path, key: str, encrypted: EncryptedBackend | None,
                skipped: list[tuple[int, int]] | None = None) -> Iterator[Record]:
        """The whole records of a spool file, in order, each checked against its checksum (read a block at a
        time: no record is held in memory). A torn or damaged tail (never answered) ends them; a damaged stretch
        followed by whole records is passed over, its (start, end) appended to `skipped`."""
        try:
            with open(path, "rb") as file:
                size = os.fstat(file.fileno()).st_size
                if file.read(len(MAGIC)) != MAGIC:
                    return
                at = len(MAGIC)
                while at < size:
                    found = _whole(file, at, size)
                    if found is None:
                        if _declared_end(file, at, size) > size:
                            return  # a torn tail: its bytes are never searched for records (an object may hold some)
                        following = _next_whole(file, at + 1, size)
                        if following is None:
                            return  # a torn tail
                        if skipped is not None:
                            skipped.append((at, following))
                        at = following
                        continue
                    meta_len, end, body = found
                    record = _record(file, path, key, encrypted, at, meta_len, end, body)
                    if record is None:
                        if skipped is not None:
                            skipped.append((at, end + 32))
                    else:
                        yield record
                    at = end + 32
        except OSError as error:
            raise os_failure(error, path, store=str(path.parent)) from None

    @staticmethod
    def record_at(path: Path, key: str, encrypted: EncryptedBackend | None, offset: int) -> Record:
        """The record at `offset` (checked alone: the rest of the spool is neither read nor decrypted); StoreError
        when it is not there whole."""
        try:
            with open(path, "rb") as file:
                size = os.fstat(file.fileno()).st_size
                found = _whole(file, offset, size)
                record = _record(file, path, key, encrypted, offset, *found) if found is not None else None
        except (OSError, ValueError) as error:
            raise StoreError(f"{path}: the record at {offset} cannot be read ({error})") from None
        if record is None:
            raise StoreError(f"{path}: no whole record at {offset}")
        return record


def _head(file: BinaryIO, at: int, size: int) -> tuple[int, int] | None:
    """(meta length, payload length) of a record's head at `at`, None when it is not one."""
    if at + _HEAD.size > size:
        return None
    file.seek(at)
    tag, meta_len, data_len = _HEAD.unpack(read_exact(file, _HEAD.size))
    if tag != _RECORD or meta_len > MAX_META or data_len > MAX_DATA:
        return None
    return meta_len, meta_len + data_len


def _whole(file: BinaryIO, at: int, size: int) -> tuple[int, int, bytes | None] | None:
    """(meta length, end of payload, the payload when at most PRELOAD bytes) of the whole record at `at` (its
    checksum matching), else None."""
    head = _head(file, at, size)
    if head is None:
        return None
    meta_len, payload = head
    start = at + _HEAD.size
    end = start + payload  # sealed, the payload counts the seal's own bytes too
    if end + 32 > size:
        return None
    if payload <= PRELOAD:  # read once: checked here, kept for the caller
        body = read_exact(file, payload)
        whole = len(body) == payload and hashlib.sha256(body).digest() == read_exact(file, 32)
        return (meta_len, end, body) if whole else None
    hasher, left = hashlib.sha256(), payload
    while left > 0:
        block = file.read(min(left, COPY))
        if not block:
            return None
        hasher.update(block)
        left -= len(block)
    return (meta_len, end, None) if hasher.digest() == read_exact(file, 32) else None


def _declared_end(file: BinaryIO, at: int, size: int) -> int:
    """Where the record at `at` says it ends (0 when its head is not a record's)."""
    if at + _HEAD.size > size:
        return size + 1
    head = _head(file, at, size)
    return 0 if head is None else at + _HEAD.size + head[1] + 32


def _next_whole(file: BinaryIO, at: int, size: int) -> int | None:
    """Where the next whole record after a damaged one starts (None: only a torn tail follows)."""
    while at < size:
        file.seek(at)
        block = file.read(COPY + len(_RECORD) - 1)
        found = block.find(_RECORD)
        if found < 0:
            at += max(len(block) - len(_RECORD) + 1, 1)
            continue
        if _whole(file, at + found, size) is not None:
            return at + found
        at += found + 1
    return None


def _record(file: BinaryIO, path: Path, key: str, encrypted: EncryptedBackend | None, at: int, meta_len: int,
            end: int, body: bytes | None = None) -> Record | None:
    """The whole record at `at` with its meta read (decrypted in an encrypted store); None when its meta is not a
    JSON object. `body`: its payload, already read (a small record)."""
    start = at + _HEAD.size
    preloaded = None
    if body is not None:
        plain = unseal(encrypted.master, f"{key}@{at}", body, str(path)) if encrypted is not None else body
        body, preloaded = plain[:meta_len], plain[meta_len:]
        size = len(preloaded)
    elif encrypted is None:
        file.seek(start)
        body = read_exact(file, meta_len)
        size = end - start - meta_len
    else:
        with _Unsealed(encrypted.master, _Window(path, start, end), f"{key}@{at}", end - start, str(path)) as plain:
            body = read_exact(plain, meta_len)
            size = plain.length - meta_len
    try:
        meta = json.loads(body)
    except ValueError:
        return None
    if not isinstance(meta, dict):
        return None
    return Record(at, meta, size, path, key, encrypted, start, end, meta_len, preloaded)


def clean_incoming(root: Path) -> list[Path]:
    """Remove the data sets a C-STORE left arriving (a node killed mid-object); the paths removed."""
    folder = root / SPOOL_DIR
    removed = []
    try:
        found = [p for p in folder.iterdir() if p.name.endswith(INCOMING)] if folder.is_dir() else []
    except OSError as error:
        raise os_failure(error, folder, store=str(root)) from None
    for path in found:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def spool_files(root: Path) -> list[Path]:
    folder = root / SPOOL_DIR
    try:
        return sorted(p for p in folder.iterdir() if p.suffix == ".spool") if folder.is_dir() else []
    except OSError as error:
        raise os_failure(error, folder, store=str(root)) from None
