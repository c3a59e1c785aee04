"""A gzip reader for damaged archives: every byte `gzip -dc` recovers, and what the gzip checksums prove.

`gzip.GzipFile` drops the bytes decoded by the read that meets the damage (up to a whole buffer) and cannot
say where its checksum check stopped. This reader feeds zlib 16 KiB at a time from a copy of the decoder's
state: when zlib fails, the piece is decoded again byte by byte up to the failure, so every byte decoded
before the damage is returned. It then raises `StreamDamage` saying what the damage is: the stream ends early
(`truncated`), a member's CRC-32 or length does not match (`checksum`: every byte was decoded but some byte is
wrong, nobody knows which), or the compressed data is invalid (`corrupt`). `verified_until` is the end, in
the decompressed stream, of the last gzip member whose checksum matched: the bytes before it are proven
intact. Concatenated gzip members are read as one stream, like `gzip -dc`; zero padding after the last member
(tapes, discs) is ignored, other trailing data is ignored and reported in `trailing_at`.

A copy cut short and then filled with zeros to its size (a disc image, `dd conv=sync`) would otherwise be
decoded on into the zeros, which zlib takes for compressed data: garbage that can complete the cut member
with wrong bytes. Given `zeros_from` (where the file's final run of zero bytes starts), the reader stops
there: a stream that those zeros do not finish (its trailer may end with zero bytes) is truncated at that point.
"""

from __future__ import annotations

import zlib
from typing import BinaryIO

PIECE = 1 << 14  # compressed bytes fed at a time
MAX_OUT = 1 << 20  # decompressed bytes produced at a time
MAGIC = b"\x1f\x8b"


class StreamDamage(Exception):
    """The compressed stream is damaged: `kind` is "truncated", "checksum" or "corrupt"."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


def _damage(error: zlib.error) -> StreamDamage:
    text = str(error)
    if "incorrect data check" in text or "incorrect length check" in text:
        return StreamDamage("checksum", "the gzip checksum does not match")
    return StreamDamage("corrupt", f"invalid compressed data ({text.split(': ', 1)[-1]})")


class Inflater:
    """A read-only file object over the decompressed bytes of a gzip stream (see the module)."""

    def __init__(self, source: BinaryIO, zeros_from: int | None = None, zeros: int = 0) -> None:
        """`zeros_from`: where the source's final run of `zeros` zero bytes starts, when known."""
        self.source, self.zeros_from, self.zeros = source, zeros_from, zeros
        self.decoder: zlib._Decompress | None = zlib.decompressobj(31)
        self.pending = b""  # compressed bytes read from the source and not yet given to the decoder
        self.out = bytearray()
        self.produced = 0  # decompressed bytes decoded so far (handed out or buffered)
        self.verified_until = 0
        self.trailing_at: int | None = None  # where, in the compressed stream, ignored trailing data starts
        self.read_total = 0  # compressed bytes read from the source
        self.damage: StreamDamage | None = None
        self.ended = False

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (all with -1); b"" at the end; raises `StreamDamage` once all the bytes before
        the damage have been returned."""
        while (size < 0 or len(self.out) < size) and not self.ended:
            self._step()
        if not self.out and self.damage is not None:
            raise self.damage
        size = len(self.out) if size < 0 else size
        data = bytes(self.out[:size])
        del self.out[:size]
        return data

    def _read_source(self) -> bytes:
        want = PIECE if self.zeros_from is None else min(PIECE, self.zeros_from - self.read_total)
        data = (self.source.read(want) or b"") if want > 0 else b""
        self.read_total += len(data)
        return data

    def _more(self) -> bytes:
        if not self.pending:
            self.pending = self._read_source()
        return self.pending

    def _emit(self, data: bytes) -> None:
        self.out += data
        self.produced += len(data)

    def _step(self) -> None:
        if self.decoder is None:
            self._between_members()
            return
        decoder = self.decoder
        if decoder.unconsumed_tail:
            piece = decoder.unconsumed_tail
        else:
            piece = self._more()
            if not piece:
                self._end_in_zeros(decoder)
                return
            self.pending = b""
        saved = decoder.copy()
        try:
            self._emit(decoder.decompress(piece, MAX_OUT))
        except zlib.error as error:
            self.decoder = saved
            self._replay(piece, error)
            return
        if decoder.eof:  # zlib has checked this member's CRC-32 and length
            self.verified_until = self.produced
            self.pending = decoder.unused_data + self.pending
            self.decoder = None

    def _end_in_zeros(self, decoder: zlib._Decompress) -> None:
        """The input ended inside a member: a truncation, unless the final zero bytes (at most a trailer's 8)
        finish it, which a copy of the decoder tells without feeding zeros to the real one."""
        trial = decoder.copy()
        try:
            out = trial.decompress(bytes(min(8, self.zeros))) if self.zeros_from is not None else b""
        except zlib.error:
            out = b""
        if trial.eof and not out:
            self.verified_until, self.decoder, self.ended = self.produced, None, True
            return
        self._fail(StreamDamage("truncated", "the compressed stream ends early"))

    def _replay(self, piece: bytes, error: zlib.error) -> None:
        """Decode `piece` again one byte at a time from the saved state, up to the byte zlib fails on."""
        decoder = self.decoder
        assert decoder is not None
        try:
            for index in range(len(piece)):
                self._emit(decoder.decompress(piece[index : index + 1]))
        except zlib.error as again:
            error = again
        self._fail(_damage(error))

    def _between_members(self) -> None:
        """After a member: another member, zero padding, trailing data, or the end."""
        while len(self.pending) < 2:
            more = self._read_source()
            if not more:
                break
            self.pending += more
        data = self.pending
        if not data:
            self.ended = True
        elif data.startswith(MAGIC):
            self.decoder = zlib.decompressobj(31)
        elif not data.strip(b"\0"):
            self.pending = b""
        else:
            self.trailing_at = self.read_total - len(data.lstrip(b"\0"))
            self.pending, self.ended = b"", True

    def _fail(self, damage: StreamDamage) -> None:
        self.damage, self.ended, self.decoder = damage, True, None
