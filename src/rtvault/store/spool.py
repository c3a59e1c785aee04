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
        view, done = memoryview(record), 0
        try:
            while done < len(record):  # Linux writes at most 0x7ffff000 bytes a call: an object over 2 GiB comes short
                written = os.write(self._fd, view[done:])
                if written <= 0:
                    raise OSError(28, "short write (no space left on device?)")
                done += written
        except OSError as error:
            self._cut(offset)
            raise os_failure(error, self.path, store=str(self.path.parent)) from None
        self.size += len(record)
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
        """The whole records of a spool file, in order. A torn or damaged tail (never answered) ends them; a damaged
        stretch followed by whole records is passed over, its (start, end) appended to `skipped`."""
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise os_failure(error, path, store=str(path.parent)) from None
        if not raw.startswith(MAGIC):
            return
        at = len(MAGIC)
        while at < len(raw):
            found = _whole(raw, at)
            if found is None:
                if _declared_end(raw, at) > len(raw):
                    return  # a torn tail: its own bytes are never searched for records (an object may hold some)
                following = _next_whole(raw, at + 1)
                if following is None:
                    return  # a torn tail
                if skipped is not None:
                    skipped.append((at, following))
                at = following
                continue
            meta_len, end = found
            payload = raw[at + _HEAD.size:end]
            if encrypted is not None:
                payload = unseal(encrypted.master, f"{key}@{at}", payload, str(path))
            try:
                meta = json.loads(payload[:meta_len])
            except ValueError:
                meta = None
            if not isinstance(meta, dict):
                if skipped is not None:
                    skipped.append((at, end + 32))
                at = end + 32
                continue
            yield Record(at, meta, payload[meta_len:])
            at = end + 32

    @staticmethod
    def record_at(path: Path, key: str, encrypted: EncryptedBackend | None, offset: int) -> Record:
        """The record at `offset` (read alone: the rest of the spool is neither read nor decrypted); StoreError
        when it is not there whole."""
        try:
            with open(path, "rb") as file:
                file.seek(offset)
                head = file.read(_HEAD.size)
                if len(head) == _HEAD.size:
                    tag, meta_len, data_len = _HEAD.unpack(head)
                    if tag == _RECORD and meta_len <= MAX_META and data_len <= MAX_DATA:
                        rest = file.read(meta_len + data_len + 32)
                        payload = rest[:-32]
                        if len(rest) == meta_len + data_len + 32 and hashlib.sha256(payload).digest() == rest[-32:]:
                            if encrypted is not None:
                                payload = unseal(encrypted.master, f"{key}@{offset}", payload, str(path))
                            return Record(offset, json.loads(payload[:meta_len]), payload[meta_len:])
        except (OSError, ValueError) as error:
            raise StoreError(f"{path}: the record at {offset} cannot be read ({error})") from None
        raise StoreError(f"{path}: no whole record at {offset}")


def _whole(raw: bytes, at: int) -> tuple[int, int] | None:
    """(meta length, end of payload) of the whole record at `at` (its checksum matching), else None."""
    if at + _HEAD.size > len(raw):
        return None
    tag, meta_len, data_len = _HEAD.unpack_from(raw, at)
    if tag != _RECORD or meta_len > MAX_META or data_len > MAX_DATA:
        return None
    start = at + _HEAD.size
    end = start + meta_len + data_len  # sealed, data_len counts the seal's own bytes too
    if end + 32 > len(raw) or hashlib.sha256(raw[start:end]).digest() != raw[end:end + 32]:
        return None
    return meta_len, end


def _declared_end(raw: bytes, at: int) -> int:
    """Where the record at `at` says it ends (0 when its head is not a record's)."""
    if at + _HEAD.size > len(raw):
        return len(raw) + 1
    tag, meta_len, data_len = _HEAD.unpack_from(raw, at)
    if tag != _RECORD or meta_len > MAX_META or data_len > MAX_DATA:
        return 0
    return at + _HEAD.size + meta_len + data_len + 32


def _next_whole(raw: bytes, at: int) -> int | None:
    """Where the next whole record after a damaged one starts (None: only a torn tail follows)."""
    while (at := raw.find(_RECORD, at)) >= 0:
        if _whole(raw, at) is not None:
            return at
        at += 1
    return None


def spool_files(root: Path) -> list[Path]:
    folder = root / SPOOL_DIR
    try:
        return sorted(p for p in folder.iterdir() if p.suffix == ".spool") if folder.is_dir() else []
    except OSError as error:
        raise os_failure(error, folder, store=str(root)) from None
