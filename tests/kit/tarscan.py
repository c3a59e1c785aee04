"""What the tar scanner tests share: archives written with Python's tarfile, their members as tarfile reads
them (the oracle), a collector of what the scanner delivers, and a header checksum fixer for hand-made damage."""

from __future__ import annotations

import io
import posixpath
import random
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rtvault.archive.tarscan import CHUNK, Member, ScanReport, scan

MTIME = 1_234_567_890


def ends_without(offset: int) -> str:
    return f"archive truncated at offset {offset}: it ends without its end-of-archive marker"


FORMATS = [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT]
KIND_OF_TYPE = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.CONTTYPE: "file",
                tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink",
                tarfile.CHRTYPE: "chardev", tarfile.BLKTYPE: "blockdev", tarfile.FIFOTYPE: "fifo"}


@dataclass
class Original:
    """One member of an intact archive, as Python's tarfile reads it."""

    name: str
    kind: str
    header_offset: int
    data_offset: int
    size: int
    content: bytes

    @property
    def data_end(self) -> int:
        return self.data_offset + self.size


class Collector:
    """An on_file callback keeping the data each file member delivered, by header offset."""

    def __init__(self) -> None:
        self.data: dict[int, bytes] = {}
        self.complete_after_iteration: dict[int, bool] = {}

    def __call__(self, member: Member, chunks: Iterator[bytes]) -> None:
        pieces = list(chunks)
        assert all(0 < len(piece) <= CHUNK for piece in pieces)
        self.data[member.header_offset] = b"".join(pieces)
        self.complete_after_iteration[member.header_offset] = member.complete


def scan_bytes(data: bytes, total_size: int | None = None) -> tuple[ScanReport, Collector]:
    collector = Collector()
    return scan(io.BytesIO(data), collector, total_size=total_size), collector


def info(name: str, kind: bytes = tarfile.REGTYPE, *, mode: int = 0o644, link: str = "") -> tarfile.TarInfo:
    entry = tarfile.TarInfo(name)
    entry.type, entry.mode, entry.mtime, entry.linkname = kind, mode, MTIME, link
    entry.uname = entry.gname = "physicist"
    return entry


def write_tar(path: Path, fmt: int, entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w", format=fmt, encoding="utf-8", errors="surrogateescape") as tar:
        for entry, content in entries:
            if content is not None:
                entry.size = len(content)
            tar.addfile(entry, io.BytesIO(content) if content is not None else None)
    return path


def originals(path: Path) -> list[Original]:
    found = []
    with tarfile.open(path, encoding="utf-8", errors="surrogateescape") as tar:
        for entry in tar:
            content = tar.extractfile(entry).read() if entry.isreg() else b""  # type: ignore[union-attr]
            found.append(Original(entry.name, KIND_OF_TYPE.get(entry.type, "other"), entry.offset,
                                  entry.offset_data, len(content), content))
    return found


def patient_entries(seed: int = 7) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    rng = random.Random(seed)
    plan = b"Plan ={\n  Name = \"Prostate\";\n  Beam ={ Gantry = 180.0; };\n};\n"
    chardev, blockdev = info("dev/null0", tarfile.CHRTYPE), info("dev/sda0", tarfile.BLKTYPE)
    chardev.devmajor, chardev.devminor, blockdev.devmajor = 1, 3, 8
    return [
        (info("Institution_1/", tarfile.DIRTYPE, mode=0o755), None),
        (info("Institution_1/Institution", mode=0o600), plan * 3),
        (info("Institution_1/Mount_0/Patient_1/empty"), b""),
        (info("Institution_1/Mount_0/Patient_1/one"), b"x"),
        (info("Institution_1/Mount_0/Patient_1/block"), rng.randbytes(512)),
        (info("Institution_1/Mount_0/Patient_1/odd", mode=0o640), rng.randbytes(513)),
        (info("Institution_1/Mount_0/Patient_1/ImageSet_0.img"), rng.randbytes(70_000)),
        (info("Institution_1/Mount_0/Patient_1/Plan_0/plan.Trial", mode=0o4755), plan * 40),
        (info("Institution_1/link", tarfile.SYMTYPE, link="Institution"), None),
        (info("Institution_1/hard", tarfile.LNKTYPE, link="Institution_1/Institution"), None),
        (info("Institution_1/pipe", tarfile.FIFOTYPE), None),
        (chardev, None),
        (blockdev, None),
    ]


def check_against_tarfile(path: Path, report: ScanReport, collector: Collector | None = None) -> None:
    """Every member the scanner found matches tarfile's reading of the intact archive, field by field."""
    data = path.read_bytes()
    expected = originals(path)
    with tarfile.open(path, encoding="utf-8", errors="surrogateescape") as tar:
        entries = tar.getmembers()
    assert [m.header_offset for m in report.members] == [o.header_offset for o in expected]
    for member, original, entry in zip(report.members, expected, entries, strict=True):
        assert member.name.rstrip("/") == original.name.rstrip("/")
        assert member.kind == original.kind
        assert (member.mode, member.mtime) == (entry.mode, int(entry.mtime))
        assert member.link == (entry.linkname if entry.issym() or entry.islnk() else "")
        assert member.data_offset == original.data_offset
        assert member.size == original.size
        assert member.complete
        assert data[member.data_offset : member.data_offset + member.size] == original.content
        if collector is not None and member.kind == "file":
            assert collector.data[member.header_offset] == original.content
        assert member.safe_name == posixpath.normpath(original.name)


def fix_checksum(data: bytearray, header: int) -> None:
    data[header + 148 : header + 156] = b" " * 8
    data[header + 148 : header + 156] = b"%06o\0 " % sum(data[header : header + 512])
