"""Reading a treatment's files and their fields: one file parsed with problems collected, and typed values taken
from a `PObject` (a key missing or of the wrong kind is None or "", never an exception)."""

from __future__ import annotations

import math
from collections.abc import Callable

from rtvault.errors import Problem
from rtvault.pinnacle.grammar import ParseResult, PObject
from rtvault.pinnacle.treatment_source import PatientFiles

MAX_VOXELS = 1 << 30  # no CT or dose grid holds a billion voxels; a header claiming more is garbage


def text(obj: PObject | None, key: str) -> str:
    value = None if obj is None else obj.get(key)
    if value is None or isinstance(value, PObject | list):
        return ""
    return str(value).strip()


def integer(obj: PObject | None, key: str) -> int | None:
    value = None if obj is None else obj.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def number(obj: PObject | None, key: str) -> float | None:
    value = None if obj is None else obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def child(obj: PObject | None, *path: str) -> PObject | None:
    for key in path:
        obj = None if obj is None else obj.child(key)
    return obj


def objects(obj: PObject | None) -> list[PObject]:
    """The items of a `*List` object (`Beam ={}` repeated, or `#N ={}`)."""
    return [] if obj is None else [v for v in obj.items_list() if isinstance(v, PObject)]


def read_parsed(
    source: PatientFiles, names: set[str], name: str, problems: list[Problem],
    parser: Callable[[bytes, str], ParseResult], required: bool = True,
) -> PObject | None:
    """A file of the patient parsed; None, with a problem when `required`, when it is absent or unreadable."""
    if name not in names:
        if required:
            problems.append(Problem(name, "missing: what it holds is left out"))
        return None
    try:
        data = source.read(name)
    except OSError as error:
        problems.append(Problem(name, f"cannot be read ({error.strerror or error}): what it holds is left out"))
        return None
    parsed = parser(data, name)
    problems.extend(parsed.problems)
    return parsed.root
