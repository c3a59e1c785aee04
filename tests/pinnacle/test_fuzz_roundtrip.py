"""Property-based tests of the Pinnacle reader: well-formed text, generated from trees and serialised to
Pinnacle text, round-trips to the data it was written from; repeated keys and the stamp comment."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtvault.pinnacle.grammar import parse_bytes

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
