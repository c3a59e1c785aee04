"""Readers over stored bytes: exact reads, and the seekable reader that S3 ranged GETs, decrypted chunks and
pack slices build on."""

from __future__ import annotations

import io
from typing import BinaryIO


def read_exact(reader: BinaryIO, size: int) -> bytes:
    """`size` bytes from `reader`, fewer only at its end (raw and network readers may return short reads)."""
    parts = []
    while size > 0 and (part := reader.read(size)):
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


class PositionedReader(io.RawIOBase):
    """A seekable raw reader over `length` bytes; a subclass's `readinto` reads at `position` and advances it
    (S3 ranged GETs, decrypted chunks)."""

    length: int
    position: int = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.length}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self.position = base + offset
        return self.position
