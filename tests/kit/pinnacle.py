"""What the Pinnacle reader's property tests share: the three parsers, the check every parse must pass
whatever its input, and hypothesis settings."""

from __future__ import annotations

import json
from collections.abc import Callable

from hypothesis import HealthCheck, settings

from rtvault.errors import Problem
from rtvault.pinnacle.dialects import parse_header, parse_roi
from rtvault.pinnacle.grammar import ParseResult, PObject, parse_bytes

MAX_PROBLEMS = 11  # ten problems, then one "N more problems not shown"

Parser = Callable[[bytes, str], ParseResult]
PARSERS: dict[str, Parser] = {"grammar": parse_bytes, "header": parse_header, "roi": parse_roi}
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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
