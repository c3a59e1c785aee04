"""Writing Pinnacle-format archives: a POSIX (pax/ustar) tar whose first member is the filtered
`Institution` file, then `Institution_<I>/Mount_0/Patient_<P>/...` with the original bytes, modes and mtimes.
Returns the index (member → data offset, size, SHA-256) as it writes, so nothing is read twice; a member whose
source already verifies a known hash (a store object) is not hashed a second time."""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

COPY_BLOCK = 1 << 20  # tarfile copies 16 KiB at a time by default: a compressor called 64 times less often


@dataclass
class Entry:
    name: str
    kind: str  # "file" | "dir"
    mode: int
    mtime: float
    size: int = 0
    chunks: Callable[[], Iterator[bytes]] | None = None
    hash: str | None = None  # the SHA-256 that `chunks` checks once exhausted (else the writer hashes them)


class ChunkReader:
    """A file-like view of an iterator of byte chunks, hashing what goes through unless told not to."""

    def __init__(self, chunks: Iterator[bytes], *, hashing: bool = True) -> None:
        self.chunks = chunks
        self.chunk = b""
        self.position = 0
        self.hasher = hashlib.sha256() if hashing else None

    def read(self, size: int = -1) -> bytes:
        parts = []
        while size != 0:
            if self.position >= len(self.chunk):
                self.chunk, self.position = next(self.chunks, b""), 0
                if not self.chunk:
                    break
            end = len(self.chunk) if size < 0 else min(len(self.chunk), self.position + size)
            parts.append(self.chunk[self.position:end])
            size -= 0 if size < 0 else end - self.position
            self.position = end
        data = b"".join(parts)
        if self.hasher is not None:
            self.hasher.update(data)
        return data

    def finish(self) -> None:
        """Run the source to its end: a verifying source checks its hash only once exhausted."""
        for _ in self.chunks:
            raise OSError("the source of a tar member has more data than its declared size")


def _info(entry: Entry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.name)
    info.type = tarfile.DIRTYPE if entry.kind == "dir" else tarfile.REGTYPE
    info.mode = entry.mode
    info.mtime = int(entry.mtime)
    info.size = entry.size if entry.kind == "file" else 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class _Counted:
    """`out` with the position tarfile asks for, for a sink that cannot tell (a threaded gzip writer)."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.position = 0

    def write(self, data: bytes) -> int:
        self.out.write(data)
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position


def write_tar(out: BinaryIO, entries: list[Entry]) -> list[dict]:
    """Write the entries as a tar to `out` (which needs only `write`); returns one index record per member,
    in order."""
    index = []
    with tarfile.open(fileobj=_Counted(out), mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8",  # type: ignore[call-overload]
                      errors="surrogateescape", copybufsize=COPY_BLOCK) as tar:
        for entry in entries:
            info = _info(entry)
            reader = ChunkReader(entry.chunks(), hashing=entry.hash is None) \
                if entry.kind == "file" and entry.chunks else None
            tar.addfile(info, reader)  # type: ignore[arg-type]
            if reader is not None:
                reader.finish()
            padded = -(-info.size // 512) * 512
            record = {"name": entry.name, "kind": entry.kind, "mode": entry.mode, "mtime": int(entry.mtime),
                      "size": info.size, "data_offset": tar.offset - padded}
            if reader is not None:
                record["hash"] = entry.hash or reader.hasher.hexdigest()  # type: ignore[union-attr]
            index.append(record)
    return index
