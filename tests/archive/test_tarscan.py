"""The salvaging tar scanner against real, intact archives (Python's tarfile in its three formats, GNU tar),
hostile names and links, and the on_file callback and memory. Damaged archives: test_tarscan_salvage.py.

Oracles: Python's `tarfile` reading the intact archive (names, offsets, kinds, contents), the bytes each member
was written from, and the byte positions of the damage made by the test itself.
"""

from __future__ import annotations

import gzip
import io
import os
import random
import shutil
import subprocess
import tarfile
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit.tarscan import (
    FORMATS,
    MTIME,
    Collector,
    check_against_tarfile,
    ends_without,
    fix_checksum,
    info,
    originals,
    patient_entries,
    scan_bytes,
    write_tar,
)
from rtvault.archive.tarscan import CHUNK, Member, scan

GNU_TAR = shutil.which("tar")


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
