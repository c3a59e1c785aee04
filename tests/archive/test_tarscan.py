"""The salvaging tar scanner against real archives (Python's tarfile in its three formats, GNU tar) and
hand-damaged copies of them.

Oracles: Python's `tarfile` reading the intact archive (names, offsets, kinds, contents), the bytes each member
was written from, and the byte positions of the damage made by the test itself.
"""

from __future__ import annotations

import gzip
import io
import os
import posixpath
import random
import shutil
import subprocess
import tarfile
import tracemalloc
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtvault.archive.inflate import Inflater
from rtvault.archive.tarscan import CHUNK, Member, ScanReport, scan

MTIME = 1_234_567_890


def ends_without(offset: int) -> str:
    return f"archive truncated at offset {offset}: it ends without its end-of-archive marker"


FORMATS = [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT]
KIND_OF_TYPE = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.CONTTYPE: "file",
                tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink",
                tarfile.CHRTYPE: "chardev", tarfile.BLKTYPE: "blockdev", tarfile.FIFOTYPE: "fifo"}
GNU_TAR = shutil.which("tar")


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


# --- clean archives ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS, ids=["gnu", "pax", "ustar"])
def test_clean_archive_every_member_and_byte(tmp_path: Path, fmt: int) -> None:
    path = write_tar(tmp_path / "a.tar", fmt, patient_entries())
    report, collector = scan_bytes(path.read_bytes(), total_size=path.stat().st_size)
    check_against_tarfile(path, report, collector)
    assert report.clean_end and report.problems == []
    assert len(report.members) == 13
    by_name = {m.safe_name: m for m in report.members}
    assert by_name["Institution_1"].kind == "dir" and by_name["Institution_1"].problems == []
    assert by_name["Institution_1/Mount_0/Patient_1/Plan_0/plan.Trial"].mode == 0o4755
    assert by_name["Institution_1/link"].problems == ["symbolic link to Institution (never created)"]
    assert by_name["Institution_1/hard"].problems == []
    assert by_name["Institution_1/pipe"].problems == ["named pipe (never created)"]
    assert by_name["dev/null0"].problems == ["device file (never created)"]
    assert by_name["dev/sda0"].problems == ["device file (never created)"]
    assert all(m.problems == [] for m in report.members if m.kind == "file")
    assert report.bytes_scanned == path.stat().st_size  # read to the end: trailing padding included


@pytest.mark.parametrize("fmt", FORMATS, ids=["gnu", "pax", "ustar"])
def test_clean_archive_through_gzip(tmp_path: Path, fmt: int) -> None:
    path = write_tar(tmp_path / "a.tar", fmt, patient_entries())
    gz = tmp_path / "a.tar.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    collector = Collector()
    with gzip.open(gz, "rb") as stream:
        report = scan(stream, collector)
    check_against_tarfile(path, report, collector)
    assert report.clean_end and report.problems == []


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT], ids=["gnu", "pax"])
def test_long_names_and_long_link_targets(tmp_path: Path, fmt: int) -> None:
    deep = "/".join(f"Patient_{i}_with_a_rather_long_directory_name" for i in range(6))
    target = deep + "/target_" + "t" * 150
    entries = [(info(deep + "/ImageSet_0.header"), b"x_dim = 512;\n" * 10),
               (info(deep + "/link", tarfile.SYMTYPE, link=target), None),
               (info(deep + "/hard", tarfile.LNKTYPE, link=deep + "/ImageSet_0.header"), None)]
    path = write_tar(tmp_path / "long.tar", fmt, entries)
    report, collector = scan_bytes(path.read_bytes())
    check_against_tarfile(path, report, collector)
    assert [m.name for m in report.members] == [deep + "/ImageSet_0.header", deep + "/link", deep + "/hard"]
    assert report.members[1].link == target
    assert report.members[0].header_offset == 0 and report.members[0].data_offset > 1024  # long-name headers


def test_ustar_prefix_joins_the_name(tmp_path: Path) -> None:
    name = "Institution_1/" + "Mount_0_" * 14 + "/Patient_1/plan.Trial"
    path = write_tar(tmp_path / "u.tar", tarfile.USTAR_FORMAT, [(info(name), b"Trial ={};\n")])
    header = path.read_bytes()[:512]
    assert header[345:500].rstrip(b"\0") and len(name) > 100  # the name really was split into prefix + name
    report, collector = scan_bytes(path.read_bytes())
    assert report.members[0].name == name and collector.data[0] == b"Trial ={};\n"


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT], ids=["gnu", "pax"])
def test_non_utf8_names_round_trip_to_the_original_bytes(tmp_path: Path, fmt: int) -> None:
    raw_names = [b"Patient_1/Dupr\xe9.txt", "Patient_1/Müller.txt".encode(), b"Patient_1/\xff\xfe"]
    entries = [(info(os.fsdecode(raw)), raw) for raw in raw_names]
    path = write_tar(tmp_path / "latin1.tar", fmt, entries)
    report, collector = scan_bytes(path.read_bytes())
    assert [os.fsencode(m.name) for m in report.members] == raw_names
    assert [collector.data[m.header_offset] for m in report.members] == raw_names
    assert [os.fsencode(m.safe_name or "") for m in report.members] == raw_names


@pytest.mark.skipif(GNU_TAR is None, reason="GNU tar is not installed")
@pytest.mark.parametrize("fmt", ["gnu", "posix", "ustar"])
def test_real_gnu_tar_archive(tmp_path: Path, fmt: str) -> None:
    source = tmp_path / "src"
    deep = source / "Institution_1" / ("Mount_0_" * 8) / ("Patient_12345_" * 5)
    deep.mkdir(parents=True)
    (deep / ("ImageSet_0." + "img" * 40)).write_bytes(random.Random(1).randbytes(5000))
    (deep / "plan.Trial").write_text("Trial ={ Name = \"A\"; };\n")
    (source / "short").write_bytes(b"s" * 100)
    fd = os.open(os.fsencode(source) + b"/Dupr\xe9", os.O_WRONLY | os.O_CREAT, 0o640)
    os.write(fd, b"latin-1 name")
    os.close(fd)
    os.symlink("short", source / "link")
    os.utime(source / "short", (MTIME, MTIME))
    path = tmp_path / "gnu.tar"
    if fmt == "ustar":  # ustar cannot hold the long names: leave them out
        shutil.rmtree(source / "Institution_1")
    subprocess.run([GNU_TAR, f"--format={fmt}", "-C", str(source), "-cf", str(path), "."], check=True)
    report, collector = scan_bytes(path.read_bytes(), total_size=path.stat().st_size)
    check_against_tarfile(path, report, collector)
    assert report.clean_end and report.problems == []
    root = report.members[0]
    assert (root.name, root.kind, root.safe_name, root.problems) == ("./", "dir", ".", [])
    names = {os.fsencode(m.safe_name or "") for m in report.members}
    assert b"Dupr\xe9" in names and b"short" in names
    assert next(m for m in report.members if m.safe_name == "short").mtime == MTIME
    if fmt != "ustar":
        assert any(len(m.name) > 200 for m in report.members)


def test_pax_size_and_fractional_mtime_override_the_header(tmp_path: Path) -> None:
    entry = info("ImageSet_0.img")
    entry.pax_headers = {"size": "5", "mtime": "1234567890.75"}
    path = write_tar(tmp_path / "p.tar", tarfile.PAX_FORMAT, [(entry, b"12345"), (info("next"), b"n")])
    data = bytearray(path.read_bytes())
    header = originals(path)[0].data_offset - 512
    set_size_field(data, header, b"00000000000\0")  # as for a file above 8 GiB: the size lives in the pax header
    report, collector = scan_bytes(bytes(data))
    first = report.members[0]
    assert (first.size, first.mtime, first.header_offset, collector.data[0]) == (5, MTIME, 0, b"12345")
    assert report.members[1].name == "next" and report.problems == []


@pytest.mark.parametrize(("pax", "problem"), [
    ({"size": "9" * 5000}, "unreadable pax size"), ({"mtime": "1e999"}, "unreadable pax mtime"),
    ({"mtime": "nan"}, "unreadable pax mtime")])
def test_unreadable_pax_values_keep_the_header_values(tmp_path: Path, pax: dict[str, str], problem: str) -> None:
    entry = info("a")
    entry.pax_headers = pax
    path = write_tar(tmp_path / "p.tar", tarfile.PAX_FORMAT, [(entry, b"abc"), (info("b"), b"b")])
    report, collector = scan_bytes(path.read_bytes())
    first = report.members[0]
    assert (first.size, first.mtime, collector.data[0], report.members[1].name) == (3, MTIME, b"abc", "b")
    assert len(first.problems) == 1 and first.problems[0].startswith(problem)


def test_pax_record_length_with_thousands_of_digits(tmp_path: Path) -> None:
    entry = info("a")
    entry.pax_headers = {"comment": "c"}
    path = write_tar(tmp_path / "p.tar", tarfile.PAX_FORMAT, [(entry, b"abc")])
    data = bytearray(path.read_bytes())
    record = data.index(b" comment=")
    data[record - 2 : record] = b"0" * 2  # "00 comment=": a length that cannot hold the record
    report, _ = scan_bytes(bytes(data))
    assert report.problems == [(0, "unreadable pax header at offset 0: ignored")] and report.members[0].name == "a"
    huge = b"1" + b"0" * 5000 + b" comment=c\n"  # int() of it would exceed Python's digit limit
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type, pax.size = tarfile.XHDTYPE, len(huge)
    crafted = pax.tobuf(tarfile.USTAR_FORMAT) + huge + bytes(-len(huge) % 512) + info("b").tobuf() + bytes(1024)
    report, _ = scan_bytes(crafted)
    assert report.problems == [(0, "unreadable pax header at offset 0: ignored")] and report.members[0].name == "b"


def test_gnu_base256_negative_mtime(tmp_path: Path) -> None:
    entry = info("old")
    entry.mtime = -86_400 * 365  # a file dated 1969: GNU writes it in base-256
    path = write_tar(tmp_path / "g.tar", tarfile.GNU_FORMAT, [(entry, b"x")])
    assert path.read_bytes()[136] == 0xFF
    assert scan_bytes(path.read_bytes())[0].members[0].mtime == -86_400 * 365


def test_pax_global_header_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "g.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "rtvault"}) as tar:
        for entry, content in [(info("a"), b"a"), (info("b"), b"b")]:
            entry.size = len(content)
            tar.addfile(entry, io.BytesIO(content))
    assert path.read_bytes()[156:157] == b"g"
    report, collector = scan_bytes(path.read_bytes())
    check_against_tarfile(path, report, collector)
    assert report.members[0].header_offset == 1024 and report.problems == []


def test_oversized_long_name_is_ignored_not_held_in_memory(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "l.tar", tarfile.GNU_FORMAT, [(info("n" * (2 << 20)), b"data"), (info("b"), b"b")])
    report, collector = scan_bytes(path.read_bytes())
    assert report.problems == [(0, "oversized extended header at offset 0 ignored")]
    assert report.members[0].name == "n" * 100 and collector.data[report.members[0].header_offset] == b"data"
    assert report.members[1].name == "b" and report.clean_end


def test_unreadable_pax_header_keeps_the_member_under_its_ustar_name(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "p.tar", tarfile.PAX_FORMAT, [(info("Müller/plan"), b"plan"), (info("b"), b"b")])
    data = path.read_bytes()
    record = data.index(b" path=")
    damaged = data[: record - 2] + b"99" + data[record:]  # the record length now runs past the header
    report, collector = scan_bytes(damaged)
    assert report.problems == [(0, "unreadable pax header at offset 0: ignored")]
    assert report.members[0].header_offset == 0 and collector.data[0] == b"plan"
    assert [m.name for m in report.members][1:] == ["b"]


def test_v7_directory_and_unknown_member_types(tmp_path: Path) -> None:
    entries = [(info("old_dir/", tarfile.AREGTYPE), None), (info("label", b"Z"), b"z" * 700), (info("after"), b"a")]
    path = write_tar(tmp_path / "v7.tar", tarfile.GNU_FORMAT, entries)
    report, collector = scan_bytes(path.read_bytes())
    assert [(m.name, m.kind, m.size) for m in report.members] == [
        ("old_dir/", "dir", 0), ("label", "other", 0), ("after", "file", 1)]
    assert report.members[1].problems == ["unsupported member type 'Z' (never created)"]
    assert collector.data[report.members[2].header_offset] == b"a" and report.clean_end


# --- hostile archives ------------------------------------------------------------------------------------


def test_hostile_names_and_links(tmp_path: Path) -> None:
    entries = [(info("/etc/passwd"), b"root::0:0\n"), (info("../../etc/passwd"), b"x"), (info("a/../../b"), b"y"),
               (info(".//Patient_1///plan.Trial/"), b"z"), (info("evil", tarfile.SYMTYPE, link="/etc/passwd"), None),
               (info("hard", tarfile.LNKTYPE, link="../x"), None), (info("ok"), b"ok")]
    path = write_tar(tmp_path / "hostile.tar", tarfile.GNU_FORMAT, entries)
    report, collector = scan_bytes(path.read_bytes())
    members = {m.name: m for m in report.members}
    assert (members["/etc/passwd"].safe_name, members["/etc/passwd"].problems) == (None, ["absolute path"])
    for name in ("../../etc/passwd", "a/../../b"):
        assert (members[name].safe_name, members[name].problems) == (None, ["'..' in the path"])
    assert members[".//Patient_1///plan.Trial/"].safe_name == "Patient_1/plan.Trial"
    assert members["evil"].safe_name == "evil"
    assert members["evil"].problems == ["symbolic link to /etc/passwd (never created)"]
    assert members["hard"].problems == ["hard link to ../x, outside the archive (never created)"]
    assert collector.data[members["ok"].header_offset] == b"ok" and report.clean_end


def test_signed_checksum_of_old_tars_is_accepted(tmp_path: Path) -> None:
    """Old Sun and other tars summed the header as signed bytes: a name with high bytes tells them apart."""
    path = write_tar(tmp_path / "a.tar", tarfile.USTAR_FORMAT, [(info(os.fsdecode(b"Dupr\xe9")), b"e")])
    data = bytearray(path.read_bytes())
    data[148:156] = b" " * 8
    signed = sum(b - 256 if b > 127 else b for b in data[:512])  # fix_checksum writes the unsigned sum
    assert signed != sum(data[:512])
    data[148:156] = b"%06o\0 " % signed
    report, collector = scan_bytes(bytes(data))
    assert report.problems == [] and os.fsencode(report.members[0].name) == b"Dupr\xe9"
    assert collector.data[0] == b"e"


def test_pax_name_with_nul_and_empty_name_are_unsafe(tmp_path: Path) -> None:
    entries = [(info("nul"), b"1"), (info("empty"), b"2")]
    entries[0][0].pax_headers = {"path": "a\0b"}
    entries[1][0].pax_headers = {"path": ""}
    path = write_tar(tmp_path / "nul.tar", tarfile.PAX_FORMAT, entries)
    report, _ = scan_bytes(path.read_bytes())
    assert [(m.name, m.safe_name, m.problems) for m in report.members] == [
        ("a\0b", None, ["NUL in the name"]), ("", None, ["empty name"])]


def set_size_field(data: bytearray, header: int, field: bytes) -> None:
    """Write a size field into the header at `header` and give it a correct checksum again."""
    data[header + 124 : header + 136] = field
    fix_checksum(data, header)


@pytest.mark.parametrize(("field", "total", "human"), [
    (b"77777777777\0", True, "8 GB"),  # octal, beyond what remains of a file of known size
    (b"\x80" + (2**63).to_bytes(11, "big"), False, "8 EB"),  # GNU base-256, above 1 TiB in any case
])
def test_absurd_declared_size(tmp_path: Path, field: bytes, total: bool, human: str) -> None:
    path = write_tar(tmp_path / "a.tar", tarfile.GNU_FORMAT, patient_entries())
    expected = originals(path)
    victim = expected[4]  # "block": 512 bytes
    data = bytearray(path.read_bytes())
    set_size_field(data, victim.header_offset, field)
    report, collector = scan_bytes(bytes(data), total_size=len(data) if total else None)
    assert [m.header_offset for m in report.members] == [o.header_offset for o in expected[:5]]
    member = report.members[4]
    assert f"declared size {human} exceeds the archive" in member.problems
    assert not member.complete and not report.clean_end
    assert collector.data[victim.header_offset] == bytes(data[victim.data_offset :])  # what exists is read
    for found, original in zip(report.members[:4], expected, strict=False):
        assert found.complete and data[found.data_offset : found.data_offset + found.size] == original.content
    assert (len(data), ends_without(len(data))) in report.problems


# --- truncated archives ----------------------------------------------------------------------------------


def cut_points(expected: list[Original], end: int) -> list[int]:
    points = set(range(0, end + 1100, 97))
    for original in expected:
        for base in (original.header_offset, original.data_offset, original.data_end):
            points.update(p for p in (base - 1, base, base + 1, base + 511) if p >= 0)
    return sorted(points)


def check_truncated(data: bytes, expected: list[Original], cut: int, end_marker: int) -> None:
    report, collector = scan_bytes(data[:cut])
    found = {m.header_offset: m for m in report.members}
    for original in expected:
        member = found.get(original.header_offset)
        if original.data_offset > cut:
            assert member is None
            continue
        assert member is not None and member.name.rstrip("/") == original.name
        got = collector.data.get(original.header_offset, b"")
        if original.data_end <= cut:
            assert member.complete
            if member.kind == "file":
                assert member.problems == [] and got == original.content
        else:
            assert not member.complete and got == original.content[: cut - original.data_offset]
            assert collector.complete_after_iteration[original.header_offset] is False  # seen by the callback
            assert member.problems == [f"data cut short: {cut - original.data_offset} of {original.size} bytes"]
    assert report.clean_end == (cut >= end_marker + 512)
    if not report.clean_end:
        sentences = {text for _, text in report.problems}
        assert sentences == {ends_without(cut)} or (cut < 512 and sentences <= {ends_without(cut), "not a tar archive"})


@pytest.mark.parametrize("fmt", FORMATS, ids=["gnu", "pax", "ustar"])
def test_truncated_at_many_offsets(tmp_path: Path, fmt: int) -> None:
    entries = [e for e in patient_entries() if e[0].name != "Institution_1/Mount_0/Patient_1/ImageSet_0.img"]
    if fmt != tarfile.USTAR_FORMAT:
        entries.insert(2, (info("Institution_1/" + "Long_" * 40 + "/plan.roi"), b"roi={};\n" * 30))
    path = write_tar(tmp_path / "t.tar", fmt, entries)
    data, expected = path.read_bytes(), originals(path)
    end_marker = -(-expected[-1].data_end // 512) * 512  # where the end-of-archive zero blocks start
    for cut in cut_points(expected, end_marker):
        check_truncated(data, expected, cut, end_marker)


def gzip_dc(packed: bytes) -> bytes:
    """What `gzip -dc` writes out of a (possibly damaged) gzip stream."""
    if shutil.which("gzip") is None:
        pytest.skip("gzip is not installed")
    return subprocess.run(["gzip", "-dc"], input=packed, capture_output=True, check=False).stdout


def compressible_entries(count: int = 40) -> list[tuple[tarfile.TarInfo, bytes]]:
    rng = random.Random(3)
    words = [b"Trial", b"Beam", b"Gantry", b"Couch", b"Dose", b"ROI", b"= 1.5;", b"{", b"};", b"\n"]
    return [(info(f"Patient_{i}/plan.Trial"), b" ".join(rng.choice(words) for _ in range(800)) + rng.randbytes(300))
            for i in range(count)]


@pytest.mark.parametrize("fraction", [0.13, 0.5, 0.77, 0.999])
def test_truncated_gzip_recovers_what_gzip_recovers_and_says_truncated(tmp_path: Path, fraction: float) -> None:
    path = write_tar(tmp_path / "a.tar", tarfile.GNU_FORMAT, compressible_entries())
    packed = gzip.compress(path.read_bytes(), mtime=0)
    cut = packed[: int(len(packed) * fraction)]
    recovered = len(gzip_dc(cut))
    collector = Collector()
    stream = Inflater(io.BytesIO(cut))
    report = scan(stream, collector)  # type: ignore[arg-type]
    assert report.damage == "truncated" and not report.clean_end and stream.verified_until == 0
    [(offset, sentence)] = report.problems
    assert offset >= recovered
    assert sentence == f"archive truncated at offset {offset}: the compressed stream ends early, the rest of the " \
                       "archive is lost"
    found = {m.header_offset: m for m in report.members}
    for original in originals(path):
        member = found.get(original.header_offset)
        if original.data_end <= recovered:
            assert member is not None and member.complete, original.name  # all that gzip -dc recovers
            assert collector.data[original.header_offset] == original.content
        elif member is not None and original.data_offset < recovered:
            got = collector.data[original.header_offset]
            assert not member.complete and len(got) >= recovered - original.data_offset
            assert got == original.content[: len(got)]


def test_gzip_stream_without_its_trailer_is_a_truncation_after_the_end_marker(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "a.tar", tarfile.GNU_FORMAT, patient_entries())
    stream = Inflater(io.BytesIO(gzip.compress(path.read_bytes())[:-8]))
    collector = Collector()
    report = scan(stream, collector)  # type: ignore[arg-type]
    check_against_tarfile(path, report, collector)
    [(offset, sentence)] = report.problems
    assert report.clean_end and report.damage == "truncated" and stream.verified_until == 0
    assert sentence == (f"archive truncated at offset {offset}: the gzip stream ends before its checksum, so what "
                        "was read cannot be verified")


def test_verified_until_covers_each_gzip_member_whose_checksum_matched(tmp_path: Path) -> None:
    """`cat a.gz b.gz`: gzip -dc reads both; a checksum failing in the second leaves the first proven."""
    path = write_tar(tmp_path / "a.tar", tarfile.GNU_FORMAT, patient_entries())
    data = path.read_bytes()
    half = data.index(bytes(1024)) // 2 // 512 * 512  # a block boundary inside the members
    second = bytearray(gzip.compress(data[half:]))
    second[-8] ^= 0xFF
    stream = Inflater(io.BytesIO(gzip.compress(data[:half]) + bytes(second) + bytes(100)))
    collector = Collector()
    report = scan(stream, collector)  # type: ignore[arg-type]
    check_against_tarfile(path, report, collector)
    assert stream.verified_until == half and report.checksum_failed and report.clean_end


# --- corrupt headers and compressed streams --------------------------------------------------------------


def flip(data: bytes, start: int, count: int = 4) -> bytes:
    damaged = bytearray(data)
    for i in range(start, start + count):
        damaged[i] ^= 0x5A
    return bytes(damaged)


@pytest.mark.parametrize("victim", [0, 3, 6, 12])
def test_corrupt_header_is_skipped_and_the_rest_is_found(tmp_path: Path, victim: int) -> None:
    path = write_tar(tmp_path / "a.tar", tarfile.GNU_FORMAT, patient_entries())
    expected = originals(path)
    bad = expected[victim].header_offset
    report, collector = scan_bytes(flip(path.read_bytes(), bad + 10))
    survivors = [o for i, o in enumerate(expected) if i != victim]
    assert [m.header_offset for m in report.members] == [o.header_offset for o in survivors]
    for member, original in zip(report.members, survivors, strict=True):
        assert member.complete and member.name.rstrip("/") == original.name
        assert collector.data.get(member.header_offset, b"") == original.content
    following = expected[victim + 1].header_offset if victim + 1 < len(expected) else None
    if following is not None:
        skipped = (following - bad) // 512
        assert report.problems == [(bad, f"unreadable header at offset {bad}: {skipped} blocks skipped")]
    else:
        assert report.problems == [(bad, f"unreadable header at offset {bad}: 1 blocks skipped")]
    assert report.clean_end


def test_corrupt_long_name_header_keeps_the_member_under_its_short_name(tmp_path: Path) -> None:
    long_name = "Patient_1/" + "p" * 150
    path = write_tar(tmp_path / "a.tar", tarfile.GNU_FORMAT, [(info(long_name), b"data"), (info("b"), b"b")])
    report, collector = scan_bytes(flip(path.read_bytes(), 20))  # inside the ././@LongLink header
    assert report.problems[0][0] == 0 and "unreadable header at offset 0" in report.problems[0][1]
    assert long_name.startswith(report.members[0].name) and len(report.members[0].name) == 100
    assert collector.data[report.members[0].header_offset] == b"data" and report.members[1].name == "b"


def fix_checksum(data: bytearray, header: int) -> None:
    data[header + 148 : header + 156] = b" " * 8
    data[header + 148 : header + 156] = b"%06o\0 " % sum(data[header : header + 512])


@pytest.mark.parametrize("v7", [False, True], ids=["gnu", "v7"])
@pytest.mark.parametrize("victim", [0, 1])
def test_broken_header_before_more_than_a_mib_of_data(tmp_path: Path, victim: int, v7: bool) -> None:
    """The 1 MiB "not a tar" limit applies only while nothing says the file is a tar."""
    big = random.Random(2).randbytes(3 * CHUNK // 2)
    entries = [(info("a"), b"a"), (info("big"), big), (info("c"), b"c")][1 - victim :]
    path = write_tar(tmp_path / "a.tar", tarfile.GNU_FORMAT, entries)
    expected = originals(path)
    data = bytearray(path.read_bytes())
    if v7:  # no magic anywhere: only the headers already read say it is a tar
        for original in expected:
            data[original.header_offset + 257 : original.header_offset + 265] = bytes(8)
            fix_checksum(data, original.header_offset)
    bad = expected[victim].header_offset
    report, collector = scan_bytes(flip(bytes(data), bad + 1))
    if v7 and victim == 0:
        assert report.problems == [(0, "not a tar archive")] and report.members == []
        return
    assert [m.name for m in report.members] == [o.name for o in expected if o.name != "big"]
    assert report.problems == [(bad, f"unreadable header at offset {bad}: {1 + len(big) // 512} blocks skipped")]
    assert collector.data[report.members[-1].header_offset] == b"c" and report.clean_end


def test_gnu_atime_field_is_not_a_ustar_prefix(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "a.tar", tarfile.GNU_FORMAT, [(info("plan"), b"p")])
    data = bytearray(path.read_bytes())
    data[345:357] = b"%011o\0" % MTIME  # old GNU incremental archives keep atime where ustar keeps prefix
    fix_checksum(data, 0)
    assert scan_bytes(bytes(data))[0].members[0].name == "plan"


@pytest.mark.parametrize("reader", ["Inflater", "GzipFile"])
def test_bad_gzip_checksum_after_the_end_marker_is_reported(tmp_path: Path, reader: str) -> None:
    path = write_tar(tmp_path / "a.tar", tarfile.GNU_FORMAT, patient_entries())
    packed = bytearray(gzip.compress(path.read_bytes()))
    packed[-8] ^= 0xFF  # the CRC-32 of the whole tar, checked once every byte was decompressed
    collector = Collector()
    source = io.BytesIO(bytes(packed))
    stream = Inflater(source) if reader == "Inflater" else gzip.GzipFile(fileobj=source)
    report = scan(stream, collector)  # type: ignore[arg-type]
    check_against_tarfile(path, report, collector)
    [(offset, sentence)] = report.problems  # offset: where the read that failed began, within the padding
    assert offset <= path.stat().st_size and report.clean_end and report.checksum_failed
    assert sentence == (f"gzip checksum mismatch at offset {offset}: every member was decompressed, but some byte "
                        "is wrong and nothing says which, so the members it covers are unverified")
    if isinstance(stream, Inflater):
        assert stream.verified_until == 0


def test_zeroed_header_is_a_lone_zero_block(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "a.tar", tarfile.GNU_FORMAT, patient_entries())
    expected = originals(path)
    empty = expected[2]  # an empty file: its header is followed directly by the next header
    data = bytearray(path.read_bytes())
    data[empty.header_offset : empty.header_offset + 512] = bytes(512)
    report, _ = scan_bytes(bytes(data))
    assert [m.header_offset for m in report.members] == [o.header_offset for o in expected if o is not empty]
    assert report.problems == [(empty.header_offset, f"lone zero block at offset {empty.header_offset}: scanning on")]


def test_data_after_the_end_marker_is_reported(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "a.tar", tarfile.GNU_FORMAT, [(info("a"), b"a")])
    report, _ = scan_bytes(path.read_bytes() + path.read_bytes())
    assert report.clean_end and len(report.members) == 1
    size = path.stat().st_size
    assert report.problems == [(size, f"data after the end-of-archive marker at offset {size} ignored")]


def first_difference(packed: bytes, original: bytes) -> int:
    """Where the decompressed damaged stream first departs from the original tar (or stops)."""
    decompressor, out = zlib.decompressobj(31), b""
    try:
        for i in range(0, len(packed), 256):
            out += decompressor.decompress(packed[i : i + 256])
    except zlib.error:
        pass
    pairs = enumerate(zip(out, original, strict=False))
    return next((i for i, (a, b) in pairs if a != b), min(len(out), len(original)))


@pytest.mark.parametrize("reader", ["Inflater", "GzipFile"])
@pytest.mark.parametrize("where", [0.3, 0.5, 0.7])
def test_corrupt_gzip_keeps_members_before_the_damage(tmp_path: Path, where: float, reader: str) -> None:
    rng = random.Random(3)
    words = [b"Trial", b"Beam", b"Gantry", b"Couch", b"Dose", b"ROI", b"= 1.5;", b"{", b"};", b"\n"]
    entries = [(info(f"Patient_{i}/plan.Trial"), b" ".join(rng.choice(words) for _ in range(800))) for i in range(30)]
    path = write_tar(tmp_path / "a.tar", tarfile.GNU_FORMAT, entries)
    tar_bytes, expected = path.read_bytes(), originals(path)
    packed = gzip.compress(tar_bytes, mtime=0)
    damaged = flip(packed, int(len(packed) * where), 8)
    intact_until = first_difference(damaged, tar_bytes)
    collector = Collector()
    source = io.BytesIO(damaged)
    report = scan(Inflater(source) if reader == "Inflater" else gzip.GzipFile(fileobj=source), collector)  # type: ignore[arg-type]
    assert any(("corrupt compressed data at offset" in text or "gzip checksum mismatch" in text)
               for _, text in report.problems)
    slack = 0 if reader == "Inflater" else 512 + 16384  # GzipFile loses the read that meets the damage
    found = {m.header_offset: m for m in report.members}
    for original in expected:
        if original.data_end + slack <= intact_until:
            assert found[original.header_offset].complete
        member = found.get(original.header_offset)
        if member is not None and member.complete and original.data_end <= intact_until:
            assert collector.data[original.header_offset] == original.content
    assert sum(1 for o in expected if o.data_end + 512 + 16384 <= intact_until) > 3


# --- not a tar -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [
    random.Random(5).randbytes(5000), b"Patient list\n" * 300, b"", b"hello", random.Random(6).randbytes(3 << 20)],
    ids=["random", "text", "empty", "tiny", "random-3MiB"])
def test_not_a_tar(content: bytes) -> None:
    report, _ = scan_bytes(content)
    assert (report.members, report.problems, report.clean_end) == ([], [(0, "not a tar archive")], False)
    assert report.bytes_scanned <= (1 << 20) + 512  # gave up after the first MiB


def test_gzip_of_text_is_not_a_tar() -> None:
    with gzip.GzipFile(fileobj=io.BytesIO(gzip.compress(b"not a tar\n" * 1000))) as stream:
        report = scan(stream)
    assert report.members == [] and report.problems == [(0, "not a tar archive")]


def test_not_gzip_at_all_is_corrupt_compressed_data() -> None:
    with gzip.GzipFile(fileobj=io.BytesIO(b"plain text, no gzip magic" * 40)) as stream:
        report = scan(stream)
    assert report.members == []
    assert report.problems == [(0, "corrupt compressed data at offset 0: the rest of the archive is lost")]


# --- the on_file callback and memory ---------------------------------------------------------------------


def test_on_file_consuming_part_of_the_chunks(tmp_path: Path) -> None:
    rng = random.Random(9)
    big, other = rng.randbytes(3 * CHUNK + 17), rng.randbytes(CHUNK + 1)
    entries = [(info("big"), big), (info("other"), other), (info("small"), b"small"), (info("last"), b"last")]
    path = write_tar(tmp_path / "a.tar", tarfile.PAX_FORMAT, entries)
    kept: dict[str, bytes] = {}
    late: list[Iterator[bytes]] = []

    def partial(member: Member, chunks: Iterator[bytes]) -> None:
        if member.name == "big":
            kept["big"] = next(chunks)
            late.append(chunks)
        elif member.name != "other":  # "other" is not consumed at all
            kept[member.name] = b"".join(chunks)

    report = scan(io.BytesIO(path.read_bytes()), partial)
    assert [m.name for m in report.members] == ["big", "other", "small", "last"]
    assert all(m.complete for m in report.members) and report.clean_end and report.problems == []
    assert kept == {"big": big[:CHUNK], "small": b"small", "last": b"last"}
    assert list(late[0]) == []  # a kept iterator never reads from the stream once the scan moved on


def test_chunks_are_at_most_one_mib_and_memory_stays_bounded() -> None:
    size = 48 * CHUNK + 5
    header = tarfile.TarInfo("ImageSet_0.img")
    header.size = size
    head = header.tobuf(tarfile.GNU_FORMAT)

    class Zeros(io.RawIOBase):
        def __init__(self) -> None:
            self.left = len(head) + size + (-size % 512) + 1024

        def read(self, n: int = -1) -> bytes:
            n = min(n, self.left)
            start = len(head) + size + (-size % 512) + 1024 - self.left
            self.left -= n
            prefix = head[start : start + n] if start < len(head) else b""
            return prefix + bytes(n - len(prefix))

    seen = {"bytes": 0, "largest": 0}

    def count(member: Member, chunks: Iterator[bytes]) -> None:
        for chunk in chunks:
            seen["bytes"] += len(chunk)
            seen["largest"] = max(seen["largest"], len(chunk))

    tracemalloc.start()
    try:
        report = scan(Zeros(), count)  # type: ignore[arg-type]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.clean_end and report.members[0].size == size and seen == {"bytes": size, "largest": CHUNK}
    assert peak < 8 * CHUNK


@pytest.mark.parametrize("exception", [OSError(5, "Input/output error"), zlib.error("invalid code"), EOFError()])
@pytest.mark.parametrize("where", ["in data", "at the end marker"])
def test_stream_errors_from_read_are_reported_not_raised(tmp_path: Path, exception: Exception, where: str) -> None:
    path = write_tar(tmp_path / "a.tar", tarfile.GNU_FORMAT, patient_entries())
    data, expected = path.read_bytes(), originals(path)
    stop = expected[6].data_offset + 1000 if where == "in data" else -(-expected[-1].data_end // 512) * 512 + 512

    class Failing(io.BytesIO):
        def read(self, n: int | None = -1) -> bytes:
            if self.tell() >= stop:
                raise exception
            return super().read(min(n if n is not None and n >= 0 else len(data), stop - self.tell()))

    report = scan(Failing(data), Collector())
    sentence = {OSError: f"read error at offset {stop} (Input/output error): the rest of the archive is lost",
                zlib.error: f"corrupt compressed data at offset {stop}: the rest of the archive is lost",
                EOFError: f"archive truncated at offset {stop}: the compressed stream ends early, the rest of the "
                          "archive is lost"}[type(exception)]
    assert report.problems == [(stop, sentence)]
    assert not report.clean_end and all(m.complete for m in report.members[:-1])
    assert len(report.members) == (7 if where == "in data" else 13)
    assert report.members[-1].complete == (where != "in data")


# --- property: damage never yields wrong data for an untouched member ------------------------------------


def _small_archive(fmt: int) -> tuple[bytes, list[Original]]:
    rng = random.Random(fmt)
    entries = [(info("Patient_1/" + "n" * 120), b"long name\n"), (info("Patient_1/Dupré"), rng.randbytes(700)),
               (info("Patient_1/", tarfile.DIRTYPE), None), (info("empty"), b""),
               (info("l", tarfile.SYMTYPE, link="empty"), None), (info("plan.Trial"), b"Trial ={};\n" * 60)]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for entry, content in entries:
            entry.size = len(content or b"")
            tar.addfile(entry, io.BytesIO(content) if content is not None else None)
    buffer.seek(0)
    found = []
    with tarfile.open(fileobj=buffer) as tar:
        for entry in tar:
            content = tar.extractfile(entry).read() if entry.isreg() else b""  # type: ignore[union-attr]
            found.append(Original(entry.name, KIND_OF_TYPE[entry.type], entry.offset, entry.offset_data,
                                  len(content), content))
    return buffer.getvalue(), found


SMALL = {fmt: _small_archive(fmt) for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT)}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fmt=st.sampled_from(sorted(SMALL)), mutations=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)),
       max_size=4), cut=st.one_of(st.none(), st.floats(0, 1)))
def test_damage_never_yields_wrong_data(fmt: int, mutations: list[tuple[float, int]], cut: float | None) -> None:
    original, expected = SMALL[fmt]
    data = bytearray(original)
    touched = set()
    for where, value in mutations:
        position = min(int(where * len(data)), len(data) - 1)
        data[position] = value
        if original[position] != value:
            touched.add(position)
    end = len(data) if cut is None else int(cut * len(data))
    report, collector = scan_bytes(bytes(data[:end]), total_size=end)
    by_key = {(o.name, o.header_offset): o for o in expected}
    for member in report.members:
        source = by_key.get((member.name.rstrip("/"), member.header_offset))
        if source is None or member.kind != "file" or any(source.header_offset <= p < source.data_end for p in touched):
            continue
        got = collector.data[member.header_offset]
        assert got == source.content[: len(got)]
        assert member.complete == (source.data_end <= end)
        if member.complete:
            assert got == source.content
    if len(touched) <= 1:  # one damaged byte loses at most the member it hits
        found = {(m.name.rstrip("/"), m.header_offset) for m in report.members}
        for source in expected:
            span = range(source.header_offset, source.data_end + -source.data_end % 512)
            if span.stop <= end and not any(p in span for p in touched):
                assert (source.name, source.header_offset) in found
