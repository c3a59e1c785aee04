"""The DICOM node's spool: received instances made durable one fsync at a time, before they are sealed into the
store's packs and receipts (docs/design.md, "The DICOM node").

A spool file `dicom/spool/<receipt id>.spool` lies in the store's directory and is only ever appended to, by the
one receiver holding `locks/receiver.json`. It starts with MAGIC; each record is

    b"RS" | meta length (u32 LE) | data length (u64 LE) | meta (ASCII JSON) | data | SHA-256 of meta + data

where data is the instance as received (a DICOM Part 10 file) and meta what the receipt will say of it. In an
encrypted store, meta + data are sealed with the store's key (named by the spool key and the record's offset),
so nothing of a patient lies there in clear. A record is answered to its peer only once fsynced; a torn last
record (a crash mid-write: never answered) is ignored by the reader and cut off by the next append.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rtvault.errors import StoreError, os_failure
from rtvault.store.backend import Backend, DirectoryBackend, _fsync_dir
from rtvault.store.crypto import EncryptedBackend, seal, unseal

SPOOL_DIR = "dicom/spool"
MAGIC = b"RTVSPOOL1\n"
_HEAD = struct.Struct("<2sIQ")
_RECORD = b"RS"
MAX_META = 1 << 20
MAX_DATA = 1 << 34


@dataclass(frozen=True)
class Record:
    offset: int
    meta: dict
    data: bytes


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
        body = json.dumps(meta, sort_keys=True, ensure_ascii=True).encode("ascii")
        payload = body + data
        if self.encrypted is not None:
            payload = seal(self.encrypted.master, f"{self.key}@{self.size}", payload)
        record = _HEAD.pack(_RECORD, len(body), len(payload) - len(body)) + payload + hashlib.sha256(payload).digest()
        offset = self.size
        try:
            written = os.write(self._fd, record)
            if written != len(record):
                raise OSError(28, "short write (no space left on device?)")
        except OSError as error:
            self._cut(offset)
            raise os_failure(error, self.path, store=str(self.path.parent)) from None
        self.size += len(record)
        return offset

    def _cut(self, size: int) -> None:
        with contextlib.suppress(OSError):  # the reader ignores a torn tail anyway
            os.ftruncate(self._fd, size)

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
    def records(path: Path, key: str, encrypted: EncryptedBackend | None) -> Iterator[Record]:
        """The whole records of a spool file, in order; stops at a torn or damaged tail (never answered)."""
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise os_failure(error, path, store=str(path.parent)) from None
        if not raw.startswith(MAGIC):
            return
        at = len(MAGIC)
        while at + _HEAD.size <= len(raw):
            tag, meta_len, data_len = _HEAD.unpack_from(raw, at)
            start = at + _HEAD.size
            if tag != _RECORD or meta_len > MAX_META or data_len > MAX_DATA:
                return
            end = start + meta_len + data_len  # sealed, data_len counts the seal's own bytes too
            if end + 32 > len(raw):
                return
            payload = raw[start:end]
            if hashlib.sha256(payload).digest() != raw[end:end + 32]:
                return
            if encrypted is not None:
                payload = unseal(encrypted.master, f"{key}@{at}", payload, str(path))
            try:
                meta = json.loads(payload[:meta_len])
            except ValueError:
                return
            yield Record(at, meta, payload[meta_len:])
            at = end + 32


def record_at(path: Path, key: str, encrypted: EncryptedBackend | None, offset: int) -> Record | None:
    """The whole record at `offset` (one `records` gave), reading that record alone: a C-GET of an object still
    spooled reads its bytes, not the whole spool (up to 256 MiB) for each object. None when no sound record lies
    there (the spool sealed and removed meanwhile raises StoreError, as `records` does)."""
    try:
        with path.open("rb") as spool:
            spool.seek(offset)
            head = spool.read(_HEAD.size)
            if len(head) < _HEAD.size:
                return None
            tag, meta_len, data_len = _HEAD.unpack(head)
            if tag != _RECORD or meta_len > MAX_META or data_len > MAX_DATA:
                return None
            payload = spool.read(meta_len + data_len)
            checksum = spool.read(32)
    except OSError as error:
        raise os_failure(error, path, store=str(path.parent)) from None
    if len(payload) < meta_len + data_len or hashlib.sha256(payload).digest() != checksum:
        return None
    if encrypted is not None:
        payload = unseal(encrypted.master, f"{key}@{offset}", payload, str(path))
    try:
        meta = json.loads(payload[:meta_len])
    except ValueError:
        return None
    return Record(offset, meta, payload[meta_len:])


def spool_files(root: Path) -> list[Path]:
    folder = root / SPOOL_DIR
    try:
        return sorted(p for p in folder.iterdir() if p.suffix == ".spool") if folder.is_dir() else []
    except OSError as error:
        raise os_failure(error, folder, store=str(root)) from None
