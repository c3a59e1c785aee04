"""Property-based tests of the Pinnacle reader on damaged real files: damage stays local and is reported.
Arbitrary bytes and damaged Patient files: test_fuzz_hostile.py; generated text: test_fuzz_roundtrip.py.

Oracles used below (each independent of the parser's own code):
- a *statement map* of every real fixture file: byte spans of its top-level statements, computed with
  simple line rules and checked against the intact parse. A change at byte offset `p` cannot alter the
  statements that end before `p`: they must come out of the damaged file exactly as from the intact one.
- truncation inside a statement must be reported; truncation between statements must not be, and must give
  exactly the statements before the cut.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kit.pinnacle import FUZZ, PARSERS, check_well_formed
from rtvault.pinnacle.dialects import parse_roi
from rtvault.pinnacle.grammar import ParseResult, PObject, split_stamp

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pinnacle"
SAMPLE = FIXTURES / "pinnacle_io-01"
PATIENT_REL = "Institution_1/Mount_0/Patient_1"
# name -> (path relative to the sample root, dialect)
FIXTURE_FILES: dict[str, tuple[str, str]] = {
    "Patient": (f"{PATIENT_REL}/Patient", "grammar"),
    "Institution": ("Institution", "grammar"),
    "plan.Trial": (f"{PATIENT_REL}/Plan_0/plan.Trial", "grammar"),
    "plan.Points": (f"{PATIENT_REL}/Plan_0/plan.Points", "grammar"),
    "plan.PatientSetup": (f"{PATIENT_REL}/Plan_0/plan.PatientSetup", "grammar"),
    "ImageSet_0.ImageInfo": (f"{PATIENT_REL}/ImageSet_0.ImageInfo", "grammar"),
    "ImageSet_0.header": (f"{PATIENT_REL}/ImageSet_0.header", "header"),
    "plan.roi": (f"{PATIENT_REL}/Plan_0/plan.roi", "roi"),
}


# ---------------------------------------------------------------------------------------------------------
# Shared checks


def plain(value: object) -> object:
    return value.to_data() if isinstance(value, PObject) else value


def view(entries: list[tuple[str, object]]) -> list[tuple[str, object]]:
    return [(key, plain(value)) for key, value in entries]


def assert_prefix(cut: PObject, whole: PObject) -> None:
    """`cut` holds what `whole` holds, in the same order, up to a point; only its very last leaf may differ
    (a value cut in two). Objects built by dotted keys (line None) may have been cut short anywhere."""
    assert len(cut.entries) <= len(whole.entries), (cut, whole)
    for index, ((key, value), (whole_key, whole_value)) in enumerate(zip(cut.entries, whole.entries, strict=False)):
        assert key == whole_key
        last = index == len(cut.entries) - 1
        if isinstance(value, PObject) and isinstance(whole_value, PObject) and (last or whole_value.line is None):
            assert_prefix(value, whole_value)
        elif last:
            assert not isinstance(value, PObject), (key, value, whole_value)
            if isinstance(value, list) and isinstance(whole_value, list):
                assert len(value) <= len(whole_value)
                assert value[:-1] == whole_value[: max(len(value) - 1, 0)]
        else:
            assert plain(value) == plain(whole_value), key


# ---------------------------------------------------------------------------------------------------------
# Statement maps of the real files


@dataclass(frozen=True)
class Statement:
    start: int  # first byte of the statement
    done: int  # from this offset on the statement is complete (after `}` of `};`, else after `;`)
    end: int  # after the statement's last byte (`;`, or the newline of a line-based statement)


@dataclass(frozen=True)
class Fixture:
    name: str
    rel: str
    dialect: str
    data: bytes
    body: bytes  # without the trailing stamp
    intact: ParseResult
    statements: tuple[Statement, ...]

    def parse(self, data: bytes) -> ParseResult:
        return PARSERS[self.dialect](data, self.rel)

    def complete_before(self, offset: int) -> int:
        """How many top-level statements a change at byte `offset` cannot touch."""
        return sum(1 for s in self.statements if s.end <= offset)


_TOP_LEVEL_START = re.compile(rb"^[A-Za-z_#]", re.M)
_ROI_OPENER = re.compile(r"\w+\s*=\s*\{")
_ROI_CLOSER = re.compile(r"\};?")


def _grammar_statements(body: bytes) -> list[Statement]:
    """Real Pinnacle files start each top-level statement at column 0 and indent everything nested."""
    starts = [m.start() for m in _TOP_LEVEL_START.finditer(body)]
    found = []
    for start, following in zip(starts, [*starts[1:], len(body)], strict=True):
        end = start + body[start:following].rindex(b";") + 1
        done = end - 1 if body[end - 2 : end] == b"};" else end
        found.append(Statement(start, done, end))
    return found


def _line_spans(body: bytes) -> list[tuple[int, int, str]]:
    spans, offset = [], 0
    for raw in body.split(b"\n"):
        spans.append((offset, offset + len(raw) + 1, raw.decode("latin-1")))
        offset += len(raw) + 1
    return spans


def _header_statements(body: bytes) -> list[Statement]:
    return [Statement(start, end, end) for start, end, line in _line_spans(body)
            if line.strip() and not line.lstrip().startswith("//")]


def _roi_code(line: str) -> str:
    cut = line.find("//")
    return (line if cut < 0 else line[:cut]).strip()


def roi_depth(text: bytes) -> int:
    """Open `name={` blocks at the end of `text`, by the plan.roi line rules (an independent model)."""
    depth = 0
    for _, _, line in _line_spans(text):
        code = _roi_code(line)
        if _ROI_OPENER.fullmatch(code):
            depth += 1
        elif _ROI_CLOSER.fullmatch(code):
            depth -= 1
    return depth


def _roi_statements(body: bytes) -> list[Statement]:
    found, depth, opened = [], 0, 0
    for start, end, line in _line_spans(body):
        code = _roi_code(line)
        if not code:
            continue
        if _ROI_OPENER.fullmatch(code):
            if depth == 0:
                opened = start
            depth += 1
        elif _ROI_CLOSER.fullmatch(code):
            depth -= 1
            if depth == 0:
                found.append(Statement(opened, end, end))
        elif depth == 0:
            found.append(Statement(start, end, end))
    return found


STATEMENT_MAPS = {"grammar": _grammar_statements, "header": _header_statements, "roi": _roi_statements}


@functools.cache
def _load(name: str) -> Fixture | None:
    rel, dialect = FIXTURE_FILES[name]
    path = SAMPLE / rel
    if not path.is_file():
        return None
    data = path.read_bytes()
    body, _ = split_stamp(data)
    intact = PARSERS[dialect](data, rel)
    return Fixture(name, rel, dialect, data, body, intact, tuple(STATEMENT_MAPS[dialect](body)))


def fixture(name: str) -> Fixture:
    found = _load(name)
    if found is None:
        pytest.skip("tests/fixtures/pinnacle is missing from this checkout")
    return found


def _outside_strings(fx: Fixture, char: bytes) -> list[int]:
    return _syntax_offsets(fx.name, char)


@functools.cache
def _syntax_offsets(name: str, char: bytes) -> list[int]:
    """Offsets of `char` in the body that are syntax: not inside a quoted string or a // comment."""
    fx = fixture(name)
    masked = bytearray(fx.body)
    patterns = [rb'"(?:[^"\\]|\\.)*"', rb"//[^\n]*"] if fx.dialect != "header" else []
    for pattern in patterns:
        for m in re.finditer(pattern, fx.body, re.S):
            masked[m.start() : m.end()] = b"\x00" * (m.end() - m.start())
    return [i for i, byte in enumerate(masked) if byte == char[0]]


def _interesting_offsets(fx: Fixture) -> list[int]:
    return _offsets_near_syntax(fx.name)


@functools.cache
def _offsets_near_syntax(name: str) -> list[int]:
    """Offsets next to syntax characters, where truncation changes meaning the most."""
    fx = fixture(name)
    return sorted({m.start() + d for m in re.finditer(rb'[;{}="\n]', fx.body) for d in (0, 1)})


def offsets(fx: Fixture) -> st.SearchStrategy[int]:
    return st.one_of(st.integers(0, len(fx.data)), st.sampled_from(_interesting_offsets(fx)))


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_statement_maps_match_the_intact_parse(name):
    """The oracle's own check: the intact files parse cleanly into exactly the mapped statements."""
    fx = fixture(name)
    assert fx.intact.problems == []
    assert len(fx.statements) == len(fx.intact.root.entries) > 0
    assert fx.statements[-1].end <= len(fx.body)


# ---------------------------------------------------------------------------------------------------------
# Garbled real files


def check_truncation(fx: Fixture, cut: int) -> None:
    data = fx.data[:cut]
    result = fx.parse(data)
    check_well_formed(result, data, fx.rel)
    got, whole = result.root.entries, fx.intact.root.entries
    complete = sum(1 for s in fx.statements if s.done <= cut)
    assert view(got[:complete]) == view(whole[:complete]), "a statement before the cut changed"
    assert len(got) >= complete, "a statement before the cut was lost"

    if cut >= len(fx.body):  # only the stamp was cut: the whole content is there
        assert view(got) == view(whole)
        return
    inside = any(s.start < cut < s.done for s in fx.statements)
    line_start = fx.body.rfind(b"\n", 0, cut) + 1
    partial_line = fx.body[line_start:cut].decode("latin-1")

    if fx.dialect == "grammar":
        if inside:
            assert result.problems, f"truncation inside a statement at byte {cut} went unreported"
            assert len(got) in (complete, complete + 1)
            if len(got) == complete + 1:
                assert got[-1][0] == whole[complete][0]
                if isinstance(whole[complete][1], PObject):
                    assert isinstance(got[-1][1], PObject)
                    assert_prefix(got[-1][1], whole[complete][1])
        else:
            assert result.problems == [], f"clean cut between statements at byte {cut}: {result.problems}"
            assert len(got) == complete

    elif fx.dialect == "header":
        if not partial_line.strip():
            assert result.problems == []
            assert len(got) == complete
        elif result.problems:
            assert len(got) == complete
            assert result.problems[0].line == fx.body[:cut].count(b"\n") + 1
        else:  # a `key : value` line has no terminator: its value may be cut short, nothing else
            assert len(got) == complete + 1
            key, value = got[-1]
            whole_key, whole_value = whole[complete]
            assert key == whole_key
            assert value == whole_value or (isinstance(value, str) and str(whole_value).startswith(value))

    else:  # plan.roi
        if roi_depth(fx.body[:cut]) > 0:
            assert result.problems, f"truncation inside a roi block at byte {cut} went unreported"
            assert len(got) in (complete, complete + 1)
            if len(got) == complete + 1:
                assert got[-1][0] == whole[complete][0]
                assert_prefix(got[-1][1], whole[complete][1])
        elif not _roi_code(partial_line) or _ROI_CLOSER.fullmatch(_roi_code(partial_line)):
            assert result.problems == [], f"clean cut at byte {cut}: {result.problems}"
            assert view(got) == view(whole[: len(got)])
            assert len(got) == len(_roi_statements(fx.body[:cut]))
        else:  # real plan.roi files hold only blocks at top level
            assert result.problems, f"top-level line cut to {partial_line!r} accepted without a problem"
            assert len(got) == complete


@pytest.mark.parametrize("name", FIXTURE_FILES)
@FUZZ
@given(draw=st.data())
def test_truncated_real_file(name, draw):
    fx = fixture(name)
    check_truncation(fx, draw.draw(offsets(fx), label="cut"))


def _edge_offsets(fx: Fixture) -> list[int]:
    """Every offset of a small file; else every offset on the first and last line of a few statements."""
    if len(fx.data) <= 3000:
        return list(range(len(fx.data) + 1))
    found = set(range(len(fx.body), len(fx.data) + 1))
    for s in {*fx.statements[:3], *fx.statements[-3:]}:
        first_end = fx.body.index(b"\n", s.start) + 1 if b"\n" in fx.body[s.start : s.end] else s.end
        last_start = fx.body.rfind(b"\n", s.start, max(s.start, s.end - 1)) + 1
        found.update(range(s.start, first_end + 1))
        found.update(range(max(last_start, s.start), s.end + 1))
    return sorted(found)


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_truncation_sweep(name):
    """The same oracle, at every offset where a statement begins or ends (every offset of small files)."""
    fx = fixture(name)
    for cut in _edge_offsets(fx):
        check_truncation(fx, cut)


def test_roi_cut_after_block_opener_equals_is_reported():
    data = b"// Region of Interest file\n roi={\n  name: a\n}; // End of ROI a\n roi="
    result = parse_roi(data, "plan.roi")
    assert result.problems


def _mutations(fx: Fixture) -> list[str]:
    kinds = ["flip", "insert", "duplicate"]
    if _outside_strings(fx, b";"):
        kinds.append("delete ;")
    if _outside_strings(fx, b"}"):
        kinds.append("delete }")
    return kinds


@pytest.mark.parametrize("name", FIXTURE_FILES)
@FUZZ
@given(draw=st.data())
def test_garbled_real_file(name, draw):
    fx = fixture(name)
    kind = draw.draw(st.sampled_from(_mutations(fx)), label="mutation")
    original = fx.data
    if kind == "flip":
        at = draw.draw(st.integers(0, len(original) - 1), label="at")
        mask = draw.draw(st.integers(1, 255), label="xor")
        data = original[:at] + bytes([original[at] ^ mask]) + original[at + 1 :]
    elif kind == "insert":
        at = draw.draw(offsets(fx), label="at")
        data = original[:at] + draw.draw(st.binary(min_size=1, max_size=40), label="bytes") + original[at:]
    elif kind == "duplicate":
        at = draw.draw(st.integers(0, len(original)), label="at")
        start = draw.draw(st.integers(0, len(original) - 1), label="span start")
        length = draw.draw(st.integers(1, 400), label="span length")
        data = original[:at] + original[start : start + length] + original[at:]
    else:
        at = draw.draw(st.sampled_from(_outside_strings(fx, kind[-1].encode())), label="at")
        data = original[:at] + original[at + 1 :]

    result = fx.parse(data)
    check_well_formed(result, data, fx.rel)
    got, whole = result.root.entries, fx.intact.root.entries
    untouched = fx.complete_before(at)
    assert view(got[:untouched]) == view(whole[:untouched]), f"{kind} at {at} changed an earlier statement"
    assert len(got) >= untouched

    harmless = kind == "delete ;" and (
        fx.dialect == "roi" or (fx.dialect == "grammar" and original[:at].rstrip().endswith(b"}")))
    if harmless:  # `};` -> `}` and the roi dialect's optional `;`: nothing is lost, nothing to report
        assert result.problems == []
        assert result.root.to_data() == fx.intact.root.to_data()
    elif kind.startswith("delete"):
        assert result.problems, f"deleting {kind[-1]!r} at byte {at} went unreported"


def test_real_image_info_lists_every_slice():
    fx = fixture("ImageSet_0.ImageInfo")
    slices = fx.intact.root.to_data()["ImageInfo"]
    assert all(isinstance(s, dict) for s in slices), [type(s).__name__ for s in slices][:3]
    assert [s["SliceNumber"] for s in slices] == list(range(1, 102))
