"""Property-based tests of the Pinnacle reader: it never raises on bad bytes, damage stays local and is
reported, and well-formed text round-trips to the data it was written from.

Oracles used below (each independent of the parser's own code):
- a *statement map* of every real fixture file: byte spans of its top-level statements, computed with
  simple line rules and checked against the intact parse. A change at byte offset `p` cannot alter the
  statements that end before `p`: they must come out of the damaged file exactly as from the intact one.
- truncation inside a statement must be reported; truncation between statements must not be, and must give
  exactly the statements before the cut.
"""

from __future__ import annotations

import functools
import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtvault.errors import Problem
from rtvault.pinnacle.dialects import parse_header, parse_roi
from rtvault.pinnacle.discover import scan
from rtvault.pinnacle.grammar import ParseResult, PObject, parse_bytes, split_stamp

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pinnacle"
SAMPLE = FIXTURES / "pinnacle_io-01"
PATIENT_REL = "Institution_1/Mount_0/Patient_1"
MAX_PROBLEMS = 11  # ten problems, then one "N more problems not shown"

Parser = Callable[[bytes, str], ParseResult]
PARSERS: dict[str, Parser] = {"grammar": parse_bytes, "header": parse_header, "roi": parse_roi}

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

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------------------------------------
# Shared checks


def check_well_formed(result: ParseResult, data: bytes, name: str) -> None:
    """What every parse must give, whatever the input: a tree, and few, well-placed, named problems."""
    assert isinstance(result, ParseResult)
    assert isinstance(result.root, PObject)
    assert len(result.problems) <= MAX_PROBLEMS, result.problems
    last_line = data.count(b"\n") + 1
    for problem in result.problems:
        assert isinstance(problem, Problem)
        assert problem.file == name
        assert isinstance(problem.message, str) and problem.message.strip()
        assert problem.line is None or (isinstance(problem.line, int) and 1 <= problem.line <= last_line + 1), (
            problem, last_line)
    json.dumps(result.root.to_data())  # plain data all the way down


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
# Arbitrary bytes

PINNACLE_SOUP = st.lists(
    st.one_of(
        st.sampled_from([
            b"Key", b" = ", b"={", b"};", b"}", b"{", b";", b'"', b'\\"', b"\\", b"/*", b"*/", b"//", b"\n",
            b"#0", b"#1 ={", b"Points[] ={", b" .X", b".", b"1.5e3", b"-2", b",", b":", b"roi={", b"points={",
            b"curve={", b"x_dim = 4;", b"name: PTV", b"/* J */\n", b"\xc8\xe9", b"\x00", b"\r\n", b"\t",
        ]),
        st.binary(max_size=6),
    ),
    max_size=80,
).map(b"".join)


@FUZZ
@given(data=st.one_of(st.binary(max_size=3000), PINNACLE_SOUP))
def test_parsers_never_raise_on_arbitrary_bytes(data):
    for dialect, parser in PARSERS.items():
        name = f"Plan_0/arbitrary.{dialect}"
        check_well_formed(parser(data, name), data, name)


@pytest.mark.parametrize("dialect", PARSERS)
def test_problem_flood_is_capped(dialect):
    data = b"@@ ; } x y z \"\n" * 500
    result = PARSERS[dialect](data, "flood")
    check_well_formed(result, data, "flood")
    assert len(result.problems) == MAX_PROBLEMS
    assert result.problems[-1].line is None and "more problems" in result.problems[-1].message


def test_deeply_nested_roi_blocks_are_parsed_without_recursion():
    data = b"roi={\n" * 5000
    result = parse_roi(data, "plan.roi")
    assert isinstance(result.root, PObject)
    assert [p.message for p in result.problems] == [
        "blocks nested deeper than 100 levels: 'roi' ignored",
        "file ends inside an unclosed block (opened at line 5000)",
    ]


@pytest.mark.parametrize("dialect, data", [
    pytest.param("grammar", b"A ={\n" * 3000, id="grammar"),
    pytest.param("roi", b"roi={\n" * 3000, id="roi"),
])
def test_deeply_nested_input_does_not_raise(dialect, data):
    result = PARSERS[dialect](data, "hostile")
    check_well_formed(result, data, "hostile")
    assert any("unclosed" in p.message for p in result.problems)


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


# ---------------------------------------------------------------------------------------------------------
# Round trip: generated trees, serialised to Pinnacle text, parse back to the data they came from

MAX_REPEATS = 6
LATIN1_ACCENTS = "éèêëàâäçîïôöùûüÿÉÈÊÀÂÇÎÔÙÛÜ«»°²µß'"
IDENT = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
TEXT = st.text(
    alphabet=st.one_of(st.characters(min_codepoint=0, max_codepoint=255), st.sampled_from(LATIN1_ACCENTS + '"\\\n')),
    max_size=24,
)
COMMENT_TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=20)


@dataclass(frozen=True)
class Stmt:
    key: str
    lines: tuple[str, ...]  # unindented lines; nested ones carry their own relative indentation
    expected: object


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def number_text(value: int | float) -> str:
    return repr(value)


SCALAR = st.one_of(
    st.integers(-(10**12), 10**12).map(lambda v: (str(v), v)),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: (number_text(v), v)),
    TEXT.map(lambda v: (quote(v), v)),
)
EQUALS = st.sampled_from([" = ", "=", "  =  ", "\t=\t", " =\n  "])
OPEN = st.sampled_from([" ={", "={", " = {"])


def _indent(lines: list[str]) -> list[str]:
    """Nested statements get two more spaces (only before their first line: strings keep their text)."""
    return ["  " + line for line in lines]


@st.composite
def scalar_stmt(draw, key: str | None = None) -> Stmt:
    key = key or draw(IDENT)
    text, value = draw(SCALAR)
    return Stmt(key, (f"{key}{draw(EQUALS)}{text};",), value)


@st.composite
def points_stmt(draw) -> Stmt:
    key = draw(IDENT)
    values = draw(st.lists(st.one_of(st.integers(-1000, 1000), st.floats(allow_nan=False, allow_infinity=False)),
                           max_size=12))
    per_line = draw(st.integers(1, 4))
    rows = [",".join(number_text(v) for v in values[i : i + per_line]) for i in range(0, len(values), per_line)]
    trailing = draw(st.booleans())
    body = [row + ("," if trailing or i < len(rows) - 1 else "") for i, row in enumerate(rows)]
    return Stmt(key, (f"{key}[]{draw(OPEN)}", *_indent(body), "};"), [float(v) for v in values])


DOTTED_TREE = st.dictionaries(
    IDENT,
    st.recursive(SCALAR, lambda inner: st.dictionaries(IDENT, inner, min_size=1, max_size=3), max_leaves=4),
    min_size=1,
    max_size=3,
)


def _flatten(tree: dict, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], tuple[str, object]]]:
    out = []
    for key, value in tree.items():
        if isinstance(value, dict):
            out.extend(_flatten(value, (*path, key)))
        else:
            out.append(((*path, key), value))
    return out


def _expected_dotted(tree: dict) -> dict:
    return {k: _expected_dotted(v) if isinstance(v, dict) else v[1] for k, v in tree.items()}


@st.composite
def dotted_stmt(draw) -> Stmt:
    """`DoseGrid .VoxelSize .X = 0.4;` lines, all under one fresh top name, in any order."""
    key = draw(IDENT)
    tree = draw(DOTTED_TREE)
    leaves = draw(st.permutations(_flatten(tree)))
    lines = []
    for path, (text, _) in leaves:
        joiner = draw(st.sampled_from([" .", "."]))
        lines.append(f"{key}{joiner}{joiner.join(path)}{draw(EQUALS)}{text};")
    return Stmt(key, tuple(lines), _expected_dotted(tree))


def _object_lines(key: str, opener: str, body: list[Stmt], comments: list[str]) -> list[str]:
    inner: list[str] = []
    for index, stmt in enumerate(body):
        if index < len(comments):
            inner.append(comments[index])
        inner.extend(stmt.lines)
    return [f"{key}{opener}", *_indent(inner), "};"]


def comments(max_size: int = 3) -> st.SearchStrategy[list[str]]:
    return st.lists(
        st.one_of(
            COMMENT_TEXT.map(lambda c: "// " + c),
            COMMENT_TEXT.filter(lambda c: "*/" not in c).map(lambda c: f"/* {c}\n   {c} */"),
            st.just(""),
        ),
        max_size=max_size,
    )


def body_strategy(depth: int) -> st.SearchStrategy[list[Stmt]]:
    kinds = [scalar_stmt(), points_stmt(), dotted_stmt()]
    if depth > 0:
        kinds += [object_stmt(depth - 1), hash_list_stmt(depth - 1), repeated_list_stmt(depth - 1)]
    return st.lists(st.one_of(kinds), max_size=4, unique_by=lambda s: s.key)


@st.composite
def object_stmt(draw, depth: int) -> Stmt:
    key = draw(IDENT)
    body = draw(body_strategy(depth))
    lines = _object_lines(key, draw(OPEN), body, draw(comments()))
    return Stmt(key, tuple(lines), {s.key: s.expected for s in body})


@st.composite
def hash_list_stmt(draw, depth: int) -> Stmt:
    """`ControlPointList ={ #0 ={ ... }; #1 ={ ... }; };` -> a list."""
    key = draw(IDENT) + draw(st.sampled_from(["List", "Array"]))
    items = draw(st.lists(body_strategy(depth), min_size=1, max_size=4))
    inner = []
    for index, item in enumerate(items):
        inner.extend(_object_lines(f"#{index}", draw(OPEN), item, []))
    return Stmt(key, (f"{key}{draw(OPEN)}", *_indent(inner), "};"), [{s.key: s.expected for s in i} for i in items])


@st.composite
def repeated_list_stmt(draw, depth: int) -> Stmt:
    """`PlanList ={ Plan ={ ... }; Plan ={ ... }; };` -> {"Plan": [..]}, or {"Plan": {..}} for one item."""
    key = draw(IDENT) + "List"
    child = draw(IDENT)
    items = draw(st.lists(body_strategy(depth), min_size=1, max_size=MAX_REPEATS))
    inner = []
    for item in items:
        inner.extend(_object_lines(child, draw(OPEN), item, []))
    values = [{s.key: s.expected for s in item} for item in items]
    return Stmt(key, (f"{key}{draw(OPEN)}", *_indent(inner), "};"), {child: values if len(values) > 1 else values[0]})


def serialise(body: list[Stmt], leading: list[str], stamp: bytes) -> bytes:
    lines: list[str] = []
    for index, stmt in enumerate(body):
        if index < len(leading):
            lines.append(leading[index])
        lines.extend(stmt.lines)
    text = "\n".join(lines) + "\n"
    return text.encode("latin-1") + b"\n/* " + stamp + b" */\n"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=body_strategy(3), leading=comments(6), stamp=st.binary(min_size=2, max_size=2))
def test_generated_text_round_trips(body, leading, stamp):
    data = serialise(body, leading, stamp)
    result = parse_bytes(data, "Plan_0/plan.Generated")
    assert result.problems == [], data.decode("latin-1")
    assert result.stamp == stamp
    assert result.root.to_data() == {s.key: s.expected for s in body}


@pytest.mark.parametrize("count", range(1, 8))
def test_repeated_keys_to_data(count):
    """to_data() of a key repeated N times is the list of its N values, as test_grammar shows for 2."""
    text = "PlanList ={\n" + "".join(f"  Plan ={{ PlanID = {i}; }};\n" for i in range(count)) + "};\n"
    result = parse_bytes(text.encode("latin-1"), "Patient")
    plans = [{"PlanID": i} for i in range(count)]
    assert result.root.to_data() == {"PlanList": {"Plan": plans if count > 1 else plans[0]}}


def test_real_image_info_lists_every_slice():
    fx = fixture("ImageSet_0.ImageInfo")
    slices = fx.intact.root.to_data()["ImageInfo"]
    assert all(isinstance(s, dict) for s in slices), [type(s).__name__ for s in slices][:3]
    assert [s["SliceNumber"] for s in slices] == list(range(1, 102))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('K = "/* x";\n', id="string-near-the-end"),
        pytest.param('A = 1;\n/* c */\n', id="block-comment-before-the-stamp"),
    ],
)
def test_stamp_split_takes_the_last_comment(text):
    data = text.encode("latin-1") + b"/* AB */\n"
    result = parse_bytes(data, "Patient")
    assert result.problems == []
    assert result.stamp == b"AB"
    assert result.root.to_data() == parse_bytes(text.encode("latin-1"), "Patient").root.to_data()


# ---------------------------------------------------------------------------------------------------------
# Patient level: a damaged Patient file still gives exactly one patient, with warnings naming that file

PATIENT_PATH = "Institution_1/Mount_0/Patient_3"
PATIENT_NAME = f"{PATIENT_PATH}/Patient"
IDENTITY = {"last_name": "LEFÈVRE", "first_name": "Hélène-Marie", "middle_name": "N'DIAYE", "mrn": "0012345",
            "radiation_oncologist": "DR MARTIN"}
PATIENT_TEXT = f"""PatientID = 3;
PatientPath = "{PATIENT_PATH}";
LastName = "LEFÈVRE";
FirstName = "Hélène-Marie";
MiddleName = "N'DIAYE";
MedicalRecordNumber = "0012345";
RadiationOncologist = "DR MARTIN";
Diagnosis = "Tumeur cérébrale";
Comment = "dit \\"Léa\\"
deuxième ligne";
Gender = "Female";
DateOfBirth = "1950-03-12";
ImageSetList ={{
  ImageSet ={{
    ImageSetID = 0;
    ImageName = "ImageSet_0";
    Modality = "CT";
    NumberOfImages = 101;
    ScanTimeFromScanner = "2020-01-01 10:00:00";
    SeriesDescription = "TÊTE";
  }};
}};
PlanList ={{
  Plan ={{
    PlanID = 0;
    PlanName = "CERVEAU";
    PlanIsLocked = 1;
  }};
  Plan ={{
    PlanID = 1;
    PlanName = "SEIN GAUCHE";
  }};
}};
""".encode("latin-1") + b"\n/* \x13~ */\n"
INSTITUTION_TEXT = f"""InstitutionID = 1;
InstitutionPath = "Institution_1";
PatientLiteList ={{
  PatientLite ={{
    PatientID = 3;
    PatientPath = "{PATIENT_PATH}";
    FormattedDescription = "LEFÈVRE&&Hélène-Marie&&N'DIAYE&&0012345&&DR MARTIN&&2020-01-01 10:00:00";
  }};
}};
""".encode("latin-1") + b"\n/* J\x06 */\n"


def _scan_patient_file(data: bytes):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        directory = root / PATIENT_PATH
        directory.mkdir(parents=True)
        (root / "Institution_1" / "Institution").write_bytes(INSTITUTION_TEXT)
        (directory / "Patient").write_bytes(data)
        return scan(root)


def test_intact_synthetic_patient_reads_cleanly():
    result = _scan_patient_file(PATIENT_TEXT)
    [patient] = result.patients
    assert result.warnings == []
    assert {k: getattr(patient, k) for k in IDENTITY} == IDENTITY
    assert patient.patient_id == 3
    assert patient.birth_date == "1950-03-12"
    assert patient.comment == 'dit "Léa"\ndeuxième ligne'
    assert [p.name for p in patient.plans] == ["CERVEAU", "SEIN GAUCHE"]


def _check_one_patient(result, data: bytes) -> object:
    [patient] = result.patients
    assert patient.path == PATIENT_PATH
    assert patient.listed_in_institution
    last_line = data.count(b"\n") + 1
    for warning in [*result.warnings, *patient.warnings]:
        assert warning.file == PATIENT_NAME, warning
        assert warning.line is None or 1 <= warning.line <= last_line + 1
    json.dumps(result.to_json())
    return patient


@settings(max_examples=80, deadline=None)
@given(cut=st.integers(0, len(PATIENT_TEXT)))
def test_truncated_patient_file_keeps_identity(cut):
    data = PATIENT_TEXT[:cut]
    patient = _check_one_patient(_scan_patient_file(data), data)
    # quoted values are never kept half-read, and what the Patient file lost the Institution file supplies
    assert {k: getattr(patient, k) for k in IDENTITY} == IDENTITY
    assert patient.patient_id == 3
    assert patient.birth_date in (None, "1950-03-12")
    assert {p.name for p in patient.plans} <= {"", "CERVEAU", "SEIN GAUCHE"}
    if cut < len(split_stamp(PATIENT_TEXT)[0]) and PATIENT_TEXT[:cut].rstrip()[-1:] not in (b";", b"}", b""):
        assert patient.warnings, f"Patient file cut at byte {cut} read without a warning"


@settings(max_examples=80, deadline=None)
@given(draw=st.data())
def test_garbled_patient_file_gives_one_patient(draw):
    kind = draw.draw(st.sampled_from(["flip", "insert", "delete", "duplicate"]), label="mutation")
    at = draw.draw(st.integers(0, len(PATIENT_TEXT) - 1), label="at")
    if kind == "flip":
        data = PATIENT_TEXT[:at] + bytes([PATIENT_TEXT[at] ^ draw.draw(st.integers(1, 255))]) + PATIENT_TEXT[at + 1 :]
    elif kind == "insert":
        data = PATIENT_TEXT[:at] + draw.draw(st.binary(min_size=1, max_size=30)) + PATIENT_TEXT[at:]
    elif kind == "delete":
        data = PATIENT_TEXT[:at] + PATIENT_TEXT[at + draw.draw(st.integers(1, 50)) :]
    else:
        start = draw.draw(st.integers(0, len(PATIENT_TEXT) - 1))
        data = PATIENT_TEXT[:at] + PATIENT_TEXT[start : start + draw.draw(st.integers(1, 200))] + PATIENT_TEXT[at:]
    patient = _check_one_patient(_scan_patient_file(data), data)
    for key in IDENTITY:
        assert isinstance(getattr(patient, key), str)


def _write_patient(root: Path, rel: str, image_name: bytes) -> None:
    directory = root / rel
    directory.mkdir(parents=True)
    (directory / "Patient").write_bytes(
        b'LastName = "DUPONT";\nImageSetList ={\n  ImageSet ={\n    ImageSetID = 0;\n'
        b'    ImageName = "' + image_name + b'";\n  };\n};\n')


def test_long_image_name_does_not_stop_the_scan(tmp_path):
    _write_patient(tmp_path, "Institution_1/Mount_0/Patient_1", b"ImageSet_0")
    _write_patient(tmp_path, "Institution_1/Mount_0/Patient_2", b"x" * 300)
    result = scan(tmp_path)
    assert [p.path for p in result.patients] == ["Institution_1/Mount_0/Patient_1", "Institution_1/Mount_0/Patient_2"]
    assert result.patients[1].last_name == "DUPONT"


@pytest.mark.parametrize("kind", ["relative", "absolute"])
def test_image_name_cannot_lead_outside_the_patient(tmp_path, kind):
    outside = tmp_path / "Institution_1" / "ImageSet_7.header"
    outside.parent.mkdir()
    outside.write_bytes(b"x_dim = 9;\ny_dim = 9;\nz_dim = 9;\n")
    name = "../../ImageSet_7" if kind == "relative" else str(outside)[: -len(".header")]
    _write_patient(tmp_path, "Institution_1/Mount_0/Patient_1", os.fsencode(name))
    [patient] = scan(tmp_path).patients
    assert [i.dimensions for i in patient.image_sets] == [None]
