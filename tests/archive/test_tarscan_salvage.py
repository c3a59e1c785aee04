"""The salvaging tar scanner against hand-damaged copies of real archives: truncated, with corrupt headers or
compressed streams, not a tar at all, and damaged at random (a property: never wrong data for an untouched member).

Oracles: Python's `tarfile` reading the intact archive (names, offsets, kinds, contents), the bytes each member
was written from, and the byte positions of the damage made by the test itself.
"""

from __future__ import annotations

import gzip
import io
import random
import shutil
import subprocess
import tarfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kit.tarscan import (
    FORMATS,
    KIND_OF_TYPE,
    MTIME,
    Collector,
    Original,
    check_against_tarfile,
    ends_without,
    fix_checksum,
    info,
    originals,
    patient_entries,
    scan_bytes,
    write_tar,
)
from rtvault.archive.inflate import Inflater
from rtvault.archive.tarscan import CHUNK, scan

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
