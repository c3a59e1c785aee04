"""The two line-oriented dialects beside the main grammar.

`ImageSet_N.header` mixes `key = value;` lines with `key : value` lines (value to the end of the line, no
quotes, no semicolon). `plan.roi` is lowercase, nests `roi={ ... curve={ ... points={ x y z ... }; }; };`,
uses `key: value` and `key = value;` and ends blocks with `}; // End of ...` comments.
"""

from __future__ import annotations

import re

from rtvault.pinnacle.grammar import MAX_DEPTH, ParseResult, PObject, _Problems, coerce_scalar, split_stamp, unquote

_HEADER_ASSIGN = re.compile(r"\s*([A-Za-z_][\w.]*)\s*=\s*(.*?)\s*;\s*\Z")
_HEADER_COLON = re.compile(r"\s*([A-Za-z_][\w.]*)\s*:(.*)\Z")
_ROI_OPEN = re.compile(r"([A-Za-z_]\w*)\s*=\s*\{\Z")
_ROI_CLOSE = re.compile(r"\};?\Z")
_ROI_COLON = re.compile(r"([A-Za-z_]\w*)\s*:(.*)\Z")
_ROI_ASSIGN = re.compile(r"([A-Za-z_]\w*)\s*=\s*(\S.*?)\s*;?\Z")


def _lines(data: bytes) -> list[str]:
    body, _ = split_stamp(data)
    return body.decode("latin-1").split("\n")


def _scalar(text: str) -> str | int | float:
    text = text.strip()
    if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        return unquote(text)
    return coerce_scalar(text)


def parse_header(data: bytes, name: str) -> ParseResult:
    """Parse an `ImageSet_N.header`: a flat list of `key = value;` and `key : value` lines."""
    problems = _Problems(name)
    root = PObject(1)
    for number, line in enumerate(_lines(data), start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        if match := _HEADER_ASSIGN.match(line):
            root.add(match.group(1), _scalar(match.group(2)))
        elif match := _HEADER_COLON.match(line):
            root.add(match.group(1), match.group(2).strip())
        else:
            problems.add(number, f"unreadable header line {line.strip()[:60]!r}")
    return ParseResult(root, problems.result(), split_stamp(data)[1])


def _strip_comment(line: str) -> str:
    cut = line.find("//")
    return (line if cut < 0 else line[:cut]).strip()


def parse_roi(data: bytes, name: str) -> ParseResult:
    """Parse a `plan.roi`: nested `roi`/`curve` blocks whose `points` hold one `x y z` triple per line."""
    problems = _Problems(name)
    root = PObject(1)
    stack: list[tuple[PObject, int]] = []
    points: list[list[float]] | None = None
    current = root
    too_deep = False
    for number, raw in enumerate(_lines(data), start=1):
        line = _strip_comment(raw)
        if not line:
            continue
        if points is not None:
            if _ROI_CLOSE.match(line):
                points = None
                continue
            try:
                points.append([float(x) for x in line.split()])
            except ValueError:
                problems.add(number, f"not a point: {line[:60]!r}")
            continue
        if match := _ROI_OPEN.match(line):
            if match.group(1) == "points":
                points = []
                current.add("points", points)
                continue
            if len(stack) >= MAX_DEPTH:  # flatten what is deeper, say so once
                if not too_deep:
                    problems.add(number, f"blocks nested deeper than {MAX_DEPTH} levels: {match.group(1)!r} ignored")
                too_deep = True
                stack.append((current, number))
                continue
            child = PObject(number)
            current.add(match.group(1), child)
            stack.append((current, number))
            current = child
        elif _ROI_CLOSE.match(line):
            if not stack:
                problems.add(number, "unexpected '}' with no block open")
                continue
            current, _ = stack.pop()
        elif match := _ROI_COLON.match(line):
            current.add(match.group(1), match.group(2).strip())
        elif match := _ROI_ASSIGN.match(line):
            current.add(match.group(1), _scalar(match.group(2)))
        else:
            problems.add(number, f"unreadable line {line[:60]!r}")
    if stack or points is not None:
        opened = stack[-1][1] if stack else None
        problems.add(None, f"file ends inside an unclosed block (opened at line {opened})")
    return ParseResult(root, problems.result(), split_stamp(data)[1])
