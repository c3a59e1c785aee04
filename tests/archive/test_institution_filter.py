"""The filtered Institution file of an archive is built from the source cut to the archived patient's block
(`_cut`) instead of parsing thousands of PatientLite blocks: the bytes must be those of the whole parse, on the
generated and the real Institution files and on hostile ones (where the cut must step aside)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from unittest.mock import patch

import pytest

from rtvault.archive import institution
from rtvault.archive.institution import filtered_institution
from rtvault.demo.files import LiteEntry, institution_bytes

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "pinnacle" / "pinnacle_io-01" / "Institution"
WHEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
IDENTITY = {"patient_id": 77, "last_name": "NOBODY", "first_name": "Jo", "mrn": "X1",
            "last_modified": "2025-01-02T03:04:05Z"}
PATIENTS = 300


def _path(n: int) -> str:
    return f"Institution_1/Mount_0/Patient_{n}"


@pytest.fixture(scope="module")
def generated() -> bytes:
    entries = [LiteEntry(n, _path(n), f"LAST{n}&&First&&&&MRN{n}&&DR X&&2024-01-01 10:00:00", n / 7)
               for n in range(1, PATIENTS + 1)]
    return institution_bytes(entries, datetime(2025, 6, 1, 12, 0, 0), b"Zz")


def _whole(source: bytes | None, path: str) -> bytes:
    """What the filter wrote before the cut: the whole file parsed."""
    with patch.object(institution, "_cut", lambda text, path: None):
        return filtered_institution(source, path, IDENTITY, "p.tar.gz", WHEN)


def _same(source: bytes | None, path: str) -> bytes:
    fast = filtered_institution(source, path, IDENTITY, "p.tar.gz", WHEN)
    assert fast == _whole(source, path)
    return fast


def _cuts(source: bytes, path: str) -> bool:
    return institution._cut(source.decode("latin-1"), path) is not None


@pytest.mark.parametrize("number", [1, 2, 150, PATIENTS, 999])
def test_generated_file_is_cut_and_filtered_as_by_the_whole_parse(generated: bytes, number: int) -> None:
    text = generated.decode("latin-1")
    cut = institution._cut(text, _path(number))
    assert cut is not None and len(cut) < len(text) // 20  # the fast path is taken: a few blocks parsed
    out = _same(generated, _path(number))
    assert (f'PatientPath = "{_path(number)}";'.encode() in out)
    assert (b"PatientID = 77;" in out) == (number > PATIENTS)  # an absent patient's block from its identity
    assert out.count(b"PatientLite ={") == 1


def test_real_sample_is_cut_and_filtered_as_by_the_whole_parse() -> None:
    source = SAMPLE.read_bytes()
    for path in ("Institution_1/Mount_0/Patient_1", "Institution_1/Mount_0/Patient_2"):
        assert _cuts(source, path)
        _same(source, path)


def _edit(source: bytes, old: bytes, new: bytes, count: int = -1) -> bytes:
    assert old in source
    return source.replace(old, new, count)


BENIGN = {  # the cut is still taken
    "crlf": lambda s: s.replace(b"\n", b"\r\n"),
    "odd spacing": lambda s: _edit(_edit(s, b"PatientLite ={", b"PatientLite\t=  {\r\n"), b" = ", b"="),
    "non-utf-8 bytes": lambda s: _edit(s, b"&&First&&", b"&&\xe9\xff\x80\x00&&"),
    "escaped quotes": lambda s: _edit(s, b"LAST2&&", b'LA\\"ST\\\\2 PatientPath = \\"x\\";&&'),
    "leading slash and backslashes": lambda s: _edit(s, b'"Institution_1/Mount_0/Patient_2"',
                                                     b'"/PrimaryPatientData\\\\Institution_1\\\\Mount_0/Patient_2/"'),
    "patient twice": lambda s: _edit(s, b'Patient_1"', b'Patient_2"'),  # the first block is the one kept
    "bare path": lambda s: _edit(s, b'"Institution_1/Mount_0/Patient_2"', b"Institution_1/Mount_0/Patient_2"),
    "bare number path": lambda s: _edit(s, b'"Institution_1/Mount_0/Patient_5"', b"0005"),
    "block without a path": lambda s: _edit(s, b'PatientPath = "Institution_1/Mount_0/Patient_2";', b""),
    "empty list": lambda s: s[:s.index(b"PatientLiteList")] + b"PatientLiteList ={\n};\n"
                            + s[s.index(b"MountPointList"):],
    "list first": lambda s: s[s.index(b"PatientLiteList"):],
}
HOSTILE = {  # the cut steps aside, the whole parse decides
    "missing list": lambda s: s[:s.index(b"PatientLiteList")] + s[s.index(b"MountPointList"):],
    "comment in list": lambda s: _edit(s, b"PatientLite ={", b"/* x */ PatientLite ={", 1),
    "line comment before": lambda s: _edit(s, b"PatientLiteList ={", b"// PatientLiteList ={\nPatientLiteList ={"),
    "two lists": lambda s: _edit(s, b"MountPointList ={", b"PatientLiteList ={\n};\nMountPointList ={"),
    "dotted key after": lambda s: _edit(s, b"MountPointList ={",
                                        b'PatientLiteList.PatientLite.PatientPath = "Institution_1/Mount_0/Patient_2";'
                                        b"\nMountPointList ={"),
    "nested object": lambda s: _edit(s, b"MountPoint = ", b"Extra ={ A = 1; };\nMountPoint = ", 1),
    "unterminated string before": lambda s: _edit(s, b'Country = "France";', b'Country = "France;'),
    "open comment before": lambda s: _edit(s, b'Country = "France";', b"/* Country"),
    "inside an object": lambda s: _edit(s, b"PatientLiteList ={", b"Outer ={\nPatientLiteList ={"),
    "two-token value": lambda s: _edit(s, b"DirSize = ", b"DirSize = 1 ", 1),
    "missing semicolon": lambda s: _edit(s, b'"Mount_0";\n', b'"Mount_0"\n', 1),
    "truncated in list": lambda s: s[:s.index(b"Patient_150")],
    "list not at line start": lambda s: _edit(s, b";\nPatientLiteList", b"; PatientLiteList"),
    "byte order mark": lambda s: b"\xef\xbb\xbf" + s,
    "other item in list": lambda s: _edit(s, b"PatientLite ={", b"Count = 3;\nPatientLite ={", 1),
}


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_odd_but_plain_files_are_cut_and_filtered_alike(generated: bytes, name: str) -> None:
    source = BENIGN[name](generated)
    for path in (_path(2), _path(5), _path(999)):
        assert _cuts(source.split(b"/* Zz */")[0], path)
        _same(source, path)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_are_filtered_as_by_the_whole_parse(generated: bytes, name: str) -> None:
    source = HOSTILE[name](generated)
    assert not _cuts(source.split(b"/* Zz */")[0], _path(2))
    for path in (_path(2), _path(999)):
        _same(source, path)


def test_the_real_sample_crlf_and_without_its_list() -> None:
    source = SAMPLE.read_bytes()
    _same(source.replace(b"\n", b"\r\n"), "Institution_1/Mount_0/Patient_1")
    start, end = source.index(b"PatientLiteList"), source.index(b"MountPointList")
    _same(source[:start] + source[end:], "Institution_1/Mount_0/Patient_1")
    _same(None, "Institution_1/Mount_0/Patient_1")
