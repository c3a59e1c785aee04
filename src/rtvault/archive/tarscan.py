"""A salvaging tar scanner (v7, ustar, GNU, pax): every readable member of a damaged or hostile tar, and
the damage as sentences. Unlike `tarfile` it goes on after a broken header; it reads the (possibly
decompressed) stream sequentially, never seeks, holds at most 1 MiB at a time and never raises on bad input.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from rtvault.archive.inflate import StreamDamage

BLOCK = 512
CHUNK = 1 << 20  # largest piece of member data handed to on_file
NOT_TAR_LIMIT = 1 << 20  # no valid header within this many bytes: not a tar archive
MAX_SIZE = 1 << 40  # a declared size above 1 TiB is absurd whatever the archive
MAX_META = 1 << 20  # longest GNU long name / pax extended header read into memory
ZERO_BLOCK = bytes(BLOCK)
_CORRUPT = (StreamDamage, zlib.error, EOFError, gzip.BadGzipFile, OSError)
_KINDS = {b"0": "file", b"\0": "file", b"7": "file", b"1": "hardlink", b"2": "symlink", b"3": "chardev",
          b"4": "blockdev", b"5": "dir", b"6": "fifo"}
_NEVER_CREATED = {"chardev": "device file (never created)", "blockdev": "device file (never created)",
                  "fifo": "named pipe (never created)"}
_META_FLAGS = (b"L", b"K", b"x", b"X", b"g")  # X: Solaris extended header, read as pax "x"
_PAX_KEYS = ("path", "linkpath", "size", "mtime")
_Next = tuple[int, bytes] | None  # the next block to look at (offset, bytes), or None: the scan is over


@dataclass
class Member:
    """One member; header_offset includes its GNU long-name / pax headers; size is 0 unless kind is "file"."""
    name: str
    kind: str
    size: int
    mode: int
    mtime: int
    link: str
    header_offset: int
    data_offset: int
    complete: bool
    safe_name: str | None
    problems: list[str] = field(default_factory=list)


@dataclass
class ScanReport:
    members: list[Member] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)
    bytes_scanned: int = 0
    clean_end: bool = False
    damage: str | None = None  # how reading the stream broke: truncated, checksum, corrupt or "read error"

    @property
    def checksum_failed(self) -> bool:
        """The gzip CRC-32 or length did not match: every byte was decoded, but some byte is wrong."""
        return self.damage == "checksum"


def _damage_kind(error: BaseException) -> str:
    if isinstance(error, StreamDamage):
        return error.kind
    if isinstance(error, gzip.BadGzipFile) and ("CRC" in str(error) or "length" in str(error)):
        return "checksum"
    if isinstance(error, EOFError):
        return "truncated"
    if isinstance(error, zlib.error | gzip.BadGzipFile):
        return "corrupt"
    return "read error"


@dataclass
class _Header:
    name: bytes
    link: bytes
    flag: bytes
    size: int
    mode: int
    mtime: int


def _number(raw: bytes) -> int | None:
    """An octal or GNU base-256 numeric field; None when it is neither."""
    if raw and raw[0] in (0x80, 0xFF):
        value = int.from_bytes(raw[1:], "big")
        return value - 256 ** (len(raw) - 1) if raw[0] == 0xFF else value
    digits = raw.split(b"\0", 1)[0].strip(b" ")
    if digits.translate(None, b"01234567"):
        return None
    return int(digits, 8) if digits else 0


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _parse_header(block: bytes) -> _Header | None:
    """The header in a full block, or None when its checksum (signed or unsigned sum) or size is broken."""
    if len(block) < BLOCK:
        return None
    sums = (256 + sum(block[:148]) + sum(block[156:]), 256 + sum(struct.unpack("148b8x356b", block)))
    size = _number(block[124:136])
    if _number(block[148:156]) not in sums or size is None or size < 0:
        return None
    name, prefix = block[:100].partition(b"\0")[0], block[345:500].partition(b"\0")[0]
    if block[257:263] == b"ustar\0" and prefix and block[156:157] not in _META_FLAGS:
        name = prefix + b"/" + name
    mode = (_number(block[100:108]) or 0) & 0o7777
    return _Header(name, block[157:257].partition(b"\0")[0], block[156:157], size, mode, _number(block[136:148]) or 0)


def _pax_records(data: bytes) -> dict[str, bytes] | None:
    """The `length key=value\\n` records of a pax extended header; None when malformed."""
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(data) and data[pos] != 0:
        space = data.find(b" ", pos)
        digits = data[pos:space]
        if space < 0 or not digits.isdigit() or len(digits) > 20 or int(digits) <= space - pos:
            return None
        end = pos + int(digits)
        record = data[space + 1 : end]
        if end > len(data) or not record.endswith(b"\n") or b"=" not in record:
            return None
        key, _, value = record[:-1].partition(b"=")
        records[key.decode("utf-8", "replace")] = value
        pos = end
    return records


def _human(size: int) -> str:
    units = ("B", "KB", "MB", "GB", "TB", "PB", "EB")
    power = min(max(size.bit_length() - 1, 0) // 10, len(units) - 1)
    return f"{size / 1024**power:.1f}".removesuffix(".0") + " " + units[power]


def _safe_name(name: str, kind: str) -> tuple[str | None, list[str]]:
    """The normalised relative name, or None and the reasons it cannot be used as a path."""
    parts = [part for part in name.split("/") if part not in ("", ".")]
    checks = (("\0" in name, "NUL in the name"), (name.startswith("/"), "absolute path"),
              (".." in parts, "'..' in the path"))
    problems = [sentence for failed, sentence in checks if failed]
    if problems:
        return None, problems
    if not parts:
        return (".", []) if kind == "dir" and name else (None, ["empty name"])
    return "/".join(parts), []


def _kind_problems(kind: str, link: str, flag: bytes) -> list[str]:
    if kind == "symlink":
        return [f"symbolic link to {link} (never created)"]
    if kind == "hardlink" and _safe_name(link, "file")[0] is None:
        return [f"hard link to {link}, outside the archive (never created)"]
    if kind == "other":
        return [f"unsupported member type {flag.decode('latin-1')!r} (never created)"]
    return [_NEVER_CREATED[kind]] if kind in _NEVER_CREATED else []


def _apply_pax(pax: dict[str, bytes], header: _Header) -> tuple[int, int, list[str]]:
    """Size and mtime after pax overrides, and the problems of unreadable pax values."""
    size, mtime, problems = header.size, header.mtime, []
    if "size" in pax and pax["size"].isdigit() and len(pax["size"]) < 40:
        size = int(pax["size"])
    elif "size" in pax:
        problems.append(f"unreadable pax size {_decode(pax['size'])!r}: header size used")
    try:
        mtime = int(float(pax["mtime"])) if "mtime" in pax else mtime
    except (ValueError, OverflowError):
        problems.append(f"unreadable pax mtime {_decode(pax['mtime'])!r}: header mtime used")
    return size, mtime, problems


class _Data:
    """The data of one member, read in pieces; a short read marks the member incomplete."""

    def __init__(self, read: Callable[[int], bytes], member: Member, size: int) -> None:
        self.read, self.member, self.size, self.left, self.closed = read, member, size, size, False

    def chunks(self) -> Iterator[bytes]:
        while self.left > 0 and not self.closed:
            want = min(self.left, CHUNK)
            piece = self.read(want)
            self.left -= len(piece)
            if len(piece) < want:
                self.closed = True
                self.member.complete = False
                self.member.problems.append(f"data cut short: {self.size - self.left} of {self.size} bytes")
            if piece:
                yield piece

    def finish(self) -> bool:
        """Skip what the callback left unread; True when all the data was there."""
        for _ in self.chunks():
            pass
        return self.left == 0  # 0 left, or cut: either way a kept iterator reads nothing more


class _Scanner:
    def __init__(self, stream: BinaryIO, on_file: Callable[[Member, Iterator[bytes]], None] | None,
                 total_size: int | None) -> None:
        self.stream, self.on_file, self.total_size, self.report = stream, on_file, total_size, ScanReport()
        self.offset, self.eof = 0, False
        self.corrupt_at: int | None = None  # where reading the stream broke (see ScanReport.damage)
        self.read_error = ""
        self.tarish = False  # a header was seen, or the first block has the ustar magic (if a broken one)
        self.pending: dict[str, bytes] = {}  # GNU long name / long link and pax values for the next member
        self.pending_offset: int | None = None

    def run(self) -> ScanReport:
        step: _Next = self._block()
        self.tarish = step[1][257:262] == b"ustar"
        while step is not None:
            step = self._step(*step)
        self.report.bytes_scanned = self.offset
        return self.report

    def read(self, size: int) -> bytes:
        """Exactly `size` bytes, fewer only at the end of the stream or where it is corrupt."""
        parts = []
        while size > 0 and self.corrupt_at is None and not self.eof:
            try:
                piece = self.stream.read(size) or b""
            except _CORRUPT as error:
                self.corrupt_at, self.report.damage = self.offset, _damage_kind(error)
                self.read_error = (error.strerror or str(error)) if isinstance(error, OSError) else ""
                break
            self.eof = not piece
            parts.append(piece)
            size -= len(piece)
            self.offset += len(piece)
        return b"".join(parts)

    def _block(self) -> tuple[int, bytes]:
        return self.offset, self.read(BLOCK)

    def _problem(self, offset: int, sentence: str) -> None:
        self.report.problems.append((offset, sentence))

    def _step(self, offset: int, block: bytes) -> _Next:
        if len(block) < BLOCK:
            return self._ended()
        if block == ZERO_BLOCK:
            return self._zero(offset)
        header = _parse_header(block)
        if header is None:
            self.pending, self.pending_offset = {}, None
            return self._resync(offset)
        self.tarish = True
        return self._meta(offset, header) if header.flag in _META_FLAGS else self._member(offset, header)

    def _ended(self) -> _Next:
        """The stream ended (or broke) before the end-of-archive marker: always None."""
        at, damage, whole = self.corrupt_at, self.report.damage, self.report.clean_end
        if at is not None and damage == "checksum":
            self._problem(at, f"gzip checksum mismatch at offset {at}: every member was decompressed, but some "
                              "byte is wrong and nothing says which, so the members it covers are unverified")
        elif at is not None and damage == "truncated" and whole:
            self._problem(at, f"archive truncated at offset {at}: the gzip stream ends before its checksum, "
                              "so what was read cannot be verified")
        elif at is not None and damage == "truncated":
            self._problem(at, f"archive truncated at offset {at}: the compressed stream ends early, the rest "
                              "of the archive is lost")
        elif at is not None and damage == "read error":
            self._problem(at, f"read error at offset {at} ({self.read_error}): the rest of the archive is lost")
        elif at is not None:
            self._problem(at, f"corrupt compressed data at offset {at}: the rest of the archive is lost")
        elif not self.tarish:
            self.report.members, self.report.problems = [], [(0, "not a tar archive")]
        else:
            self._problem(self.offset, f"archive truncated at offset {self.offset}: it ends without its "
                                       "end-of-archive marker")
        return None

    def _zero(self, offset: int) -> _Next:
        next_offset, block = self._block()
        if self.corrupt_at is None and not block.strip(b"\0"):
            self.report.clean_end = True
            return self._trailer()
        if len(block) == BLOCK:  # a short block: the stream ended or broke, which _step reports
            self._problem(offset, f"lone zero block at offset {offset}: scanning on")
        return next_offset, block

    def _trailer(self) -> _Next:
        """Read on to the end: a compressed stream is verified there, and appended data is reported."""
        offset, reported = self.offset, False
        while piece := self.read(CHUNK):
            if not reported and piece.strip(b"\0"):
                at = offset + len(piece) - len(piece.lstrip(b"\0"))
                self._problem(at, f"data after the end-of-archive marker at offset {at} ignored")
                reported = True
            offset += len(piece)
        return self._ended() if self.corrupt_at is not None else None

    def _resync(self, bad: int) -> _Next:
        """Skip block by block from the broken header at `bad` to the next valid header."""
        zeros = 0
        while True:
            offset, block = self._block()
            header = _parse_header(block)
            found = header is not None and header.name != b""
            if found or len(block) < BLOCK or (offset - bad >= NOT_TAR_LIMIT and not self.tarish):
                break
            zeros = zeros + 1 if block == ZERO_BLOCK else 0
        skipped = (offset - bad) // BLOCK - (0 if found else zeros)  # zero blocks before the end: the end marker
        self._problem(bad, f"unreadable header at offset {bad}: {skipped} blocks skipped")
        if found:
            return offset, block
        if zeros and not block.strip(b"\0") and self.corrupt_at is None and self.tarish:
            self.report.clean_end = True  # the damage ran up to the end-of-archive marker
            return None
        return self._ended()

    def _meta(self, offset: int, header: _Header) -> _Next:
        """A GNU long name / long link or a pax header: remembered for the member that follows."""
        if self.pending_offset is None and header.flag != b"g":  # a global header belongs to no member
            self.pending_offset = offset
        if header.flag == b"g" or header.size > MAX_META:
            if header.flag != b"g":
                self._problem(offset, f"oversized extended header at offset {offset} ignored")
            return self._block() if self._skip(header.size) else self._ended()
        data = self.read(header.size)
        if len(data) < header.size or not self._skip(0, header.size):
            return self._ended()
        if header.flag in (b"L", b"K"):
            self.pending["path" if header.flag == b"L" else "linkpath"] = data.partition(b"\0")[0]
        else:
            records = _pax_records(data)
            if records is None:
                self._problem(offset, f"unreadable pax header at offset {offset}: ignored")
            self.pending.update({key: value for key, value in (records or {}).items() if key in _PAX_KEYS})
        return self._block()

    def _skip(self, size: int, padded: int | None = None) -> bool:
        """Read and drop `size` bytes then the padding after `padded` (default `size`) bytes."""
        left = size + (-(size if padded is None else padded) % BLOCK)
        while left > 0:
            piece = self.read(min(left, CHUNK))
            if not piece:
                return False
            left -= len(piece)
        return True

    def _member(self, offset: int, header: _Header) -> _Next:
        start = offset if self.pending_offset is None else self.pending_offset
        pax, self.pending, self.pending_offset = self.pending, {}, None
        name = _decode(pax.get("path", header.name))
        v7_dir = header.flag == b"\0" and name.endswith("/")  # v7: a directory is a file with a trailing slash
        kind = "dir" if v7_dir else _KINDS.get(header.flag, "other")
        size, mtime, problems = _apply_pax(pax, header)
        link = _decode(pax.get("linkpath", header.link)) if kind in ("symlink", "hardlink") else ""
        safe_name, name_problems = _safe_name(name, kind)
        member = Member(name, kind, size if kind == "file" else 0, header.mode, mtime, link, start,
                        self.offset, True, safe_name,
                        name_problems + _kind_problems(kind, link, header.flag) + problems)
        self.report.members.append(member)
        return self._member_data(member, size if kind in ("file", "other") else 0)

    def _member_data(self, member: Member, size: int) -> _Next:
        remaining = None if self.total_size is None else self.total_size - member.data_offset
        absurd = size > MAX_SIZE or (remaining is not None and size > remaining)
        if absurd:
            member.problems.append(f"declared size {_human(size)} exceeds the archive")
        data = _Data(self.read, member, size)
        if member.kind == "file" and self.on_file:
            self.on_file(member, data.chunks())
        if not data.finish() or absurd:
            member.complete = False
            return self._ended()
        return self._block() if self._skip(0, size) else self._ended()


def scan(stream: BinaryIO, on_file: Callable[[Member, Iterator[bytes]], None] | None = None,
         total_size: int | None = None) -> ScanReport:
    """Every member readable in the tar `stream`, and the damage found; never raises on bad input.

    `on_file(member, chunks)` is called for each regular file with its data in pieces of at most 1 MiB;
    `total_size` (the size of the uncompressed tar, when known) lets absurd declared sizes be caught early.
    """
    return _Scanner(stream, on_file, total_size).run()
