"""The files of a version 2 store's packs (docs/design.md, "The store"): a pack's bytes and header, the
index files' keys, and the readers and the writer of one pack. `store/packs.py` builds the packed store on them.

A pack is its blobs back to back (each exactly the bytes a version 1 store holds in the object's own file),
then a header naming them (ASCII JSON `{"blobs": [[key, offset, length], ...]}`), its length (8 bytes,
little-endian) and the magic `RTVPACK1`: a pack alone says what it holds, so a lost index costs nothing.
p is the SHA-256 of the pack's bytes. An index file is a zstd frame of ASCII JSON
`{"format": "rtvault-index", "version": 1, "supersedes": [ids], "packs": {p: [[key, offset, length], ...]}}`,
named by the SHA-256 of its stored bytes; it lists only live blobs. An index named in another's
`supersedes` is ignored (a writer killed before deleting it).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import secrets
import struct
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import zstandard

from rtvault.errors import StoreError
from rtvault.store.backend import Backend, Staged
from rtvault.store.readers import PositionedReader, read_exact

PACKED = ("data/", "trees/")
HIDDEN = ("packs/", "index/")  # what the logical view of the store does not show
PACK_TARGET = 16 << 20  # a pack is sealed once it holds this much
BLOB_MAX = 4 << 20  # a stored object larger than this keeps its own file (one fsync per 4 MiB is cheap)
MAGIC = b"RTVPACK1"
HEX64 = re.compile("[0-9a-f]{64}")
TAIL = struct.Struct("<Q8s")
INDEX_FORMAT = "rtvault-index"


def pack_key(pack: str) -> str:
    return f"packs/{pack[:2]}/{pack}"


def index_key(ident: str) -> str:
    return f"index/{ident}"


def checked(key: str) -> str:
    """`key` when it names a file inside the store (no absolute path, no `..`), else StoreError."""
    if key.startswith("/") or ".." in key.split("/"):
        raise StoreError(f"invalid store key {key!r}")
    return key


def packable(key: str) -> bool:
    return key.startswith(PACKED)


def json_bytes(data: object) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("ascii")


class Where(NamedTuple):
    pack: str
    offset: int
    length: int


def parse_header(tail: bytes, pack: str) -> list[tuple[str, int, int]]:
    """The blobs a pack names, from its last bytes (at least its header, length and magic)."""
    length, magic = TAIL.unpack(tail[-TAIL.size:])
    if magic != MAGIC or length > len(tail) - TAIL.size:
        raise ValueError(f"{pack_key(pack)} does not end with a pack header")
    blobs = json.loads(tail[-TAIL.size - length:-TAIL.size])["blobs"]
    return [(str(key), int(offset), int(size)) for key, offset, size in blobs]


class Slice(PositionedReader):
    """One blob of a pack: `where.length` bytes from `where.offset`, read by `read_at(offset, size)` (a seek and
    a read on an open pack, or pread(2) on a shared descriptor); `done` runs when the slice is closed."""

    def __init__(self, where: Where, read_at: Callable[[int, int], bytes], done: Callable[[], None] | None = None):
        self.start, self.length, self.read_at, self.done = where.offset, where.length, read_at, done

    @classmethod
    def of_file(cls, raw: BinaryIO, where: Where) -> Slice:
        def read_at(offset: int, size: int) -> bytes:
            raw.seek(offset)
            return read_exact(raw, size)

        return cls(where, read_at, raw.close)

    @classmethod
    def of_fd(cls, fd: int, where: Where) -> Slice:
        return cls(where, lambda offset, size: os.pread(fd, size, offset))

    def readinto(self, buffer: Any) -> int:
        size = min(len(buffer), self.length - self.position)
        if size <= 0:
            return 0
        data = self.read_at(self.start + self.position, size)
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)

    def close(self) -> None:
        if self.done is not None:
            self.done()
            self.done = None
        super().close()


class PackFiles:
    """Open descriptors of a directory store's packs, one per pack for the life of the backend: a restore or a
    check reads thousands of blobs from a few packs, and opening the pack for each cost more than reading it.
    Packs are immutable, so a descriptor stays right even once a prune deleted its file."""

    LIMIT = 256  # beyond this many packs, each blob opens its pack again

    def __init__(self, root: Path) -> None:
        self.root, self.fds, self.lock = root, {}, threading.Lock()  # type: ignore[var-annotated]
        weakref.finalize(self, _close_all, self.fds)

    def fd(self, pack: str) -> int | None:
        with self.lock:
            if pack not in self.fds and len(self.fds) < self.LIMIT:
                try:
                    self.fds[pack] = os.open(self.root / pack_key(pack), os.O_RDONLY | os.O_CLOEXEC)
                except OSError:
                    return None  # missing or unreadable: the backend's own open says so, in its words
            return self.fds.get(pack)


def _close_all(fds: dict[str, int]) -> None:
    for fd in fds.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()


class PackWriter:
    """The pack being filled for one kind of blob (objects or trees)."""

    def __init__(self, inner: Backend) -> None:
        self.staged = inner.stage()
        self.hasher = hashlib.sha256()
        self.size = 0
        self.blobs: dict[str, tuple[int, bytes]] = {}  # readable until the pack is sealed

    def add(self, key: str, data: bytes) -> None:
        self.staged.file.write(data)
        self.hasher.update(data)
        self.blobs[key] = (self.size, data)
        self.size += len(data)

    def seal(self) -> tuple[str, list[tuple[str, int, int]]]:
        entries = [(key, offset, len(data)) for key, (offset, data) in self.blobs.items()]
        # The salt makes every pack a new name: a pack written again with the same blobs in the same order (a
        # repair's repack rebuilding a damaged pack) must not take the name of the damaged file it replaces.
        header = json_bytes({"blobs": entries, "salt": secrets.token_hex(16)})
        tail = header + TAIL.pack(len(header), MAGIC)
        self.staged.file.write(tail)
        self.hasher.update(tail)
        pack = self.hasher.hexdigest()
        self.staged.commit(pack_key(pack))
        return pack, entries


def read_header(inner: Backend, pack: str) -> list[tuple[str, int, int]]:
    """The blobs a pack names, from its own header (when no index names the pack)."""
    size = inner.size(pack_key(pack))
    with inner.open(pack_key(pack)) as raw:
        raw.seek(max(0, size - TAIL.size))
        length, _magic = TAIL.unpack(read_exact(raw, TAIL.size).rjust(TAIL.size, b"\0"))
        raw.seek(max(0, size - TAIL.size - min(length, size)))
        return parse_header(read_exact(raw, TAIL.size + min(length, size)), pack)


def encode_index(packs: dict[str, list], supersedes: list[str]) -> tuple[str, bytes]:
    """An index file's name and bytes."""
    raw = zstandard.ZstdCompressor(level=3).compress(
        json_bytes({"format": INDEX_FORMAT, "version": 1, "supersedes": supersedes, "packs": packs}))
    return hashlib.sha256(raw).hexdigest(), raw


def decode_index(raw: bytes, ident: str) -> dict:
    """An index file's content; ValueError (or zstandard.ZstdError) when it is damaged or not an index."""
    if hashlib.sha256(raw).hexdigest() != ident:
        raise ValueError("its content does not match its name")
    data = json.loads(zstandard.ZstdDecompressor().decompress(raw, max_output_size=1 << 31))
    if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT or not isinstance(data.get("packs"), dict):
        raise ValueError("not an rtvault index")
    for pack in data["packs"]:
        if not HEX64.fullmatch(pack):
            raise ValueError(f"names a pack {pack[:80]!r} that is no SHA-256")
    return data


class SpillStaged:
    """A staged file kept in memory while it is small enough to be a blob, spilled to the backend's own
    staging once it is not (a large object keeps a file of its own)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.buffer: io.BytesIO | None = io.BytesIO()
        self.spilled: Staged | None = None
        self.file: BinaryIO = self  # type: ignore[assignment]

    def write(self, data: Any) -> int:
        if self.spilled is not None:
            return self.spilled.file.write(data)
        assert self.buffer is not None
        written = self.buffer.write(data)
        if self.buffer.tell() > BLOB_MAX:
            self.spilled = self.backend.inner.stage()
            self.spilled.file.write(self.buffer.getbuffer())
            self.buffer = None
        return written

    def flush(self) -> None:
        pass

    def commit(self, key: str, *, durable: bool = False) -> bool:
        if self.spilled is not None:
            new = self.spilled.commit(key, durable=durable)
            if packable(key):
                self.backend.committed_loose(key)
            return new
        assert self.buffer is not None
        data, self.buffer = self.buffer.getvalue(), None
        if packable(key):
            return self.backend.add(key, data)
        if self.backend.inner.exists(key):
            return False
        self.backend.put(key, data, durable=durable)
        return True

    def discard(self) -> None:
        if self.spilled is not None:
            self.spilled.discard()
        self.buffer = None
