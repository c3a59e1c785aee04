"""Dates as Pinnacle writes them, normalised to ISO 8601."""

from __future__ import annotations

import re
from datetime import date, datetime

_PARTS = re.compile(r"\s*(\d{1,4})[-/ .](\d{1,2})[-/ .](\d{1,4})(?:[ T.]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*\Z")


class DateProblem(ValueError):
    """A date that is present but cannot be read without guessing."""


def _ymd(text: str) -> tuple[tuple[int, int, int], tuple[int, int, int] | None]:
    match = _PARTS.match(text)
    if match is None:
        raise DateProblem(f"unreadable date {text!r}")
    a, b, c = match.group(1), match.group(2), match.group(3)
    time_parts = match.group(4, 5, 6)
    hms = None if time_parts[0] is None else tuple(int(x or 0) for x in time_parts)
    if len(a) == 4:
        return (int(a), int(b), int(c)), hms  # type: ignore[return-value]
    if len(c) == 4:
        first, second = int(a), int(b)
        if first > 12 >= second:
            return (int(c), second, first), hms  # type: ignore[return-value]
        if second > 12 >= first:
            return (int(c), first, second), hms  # type: ignore[return-value]
        if first == second:
            return (int(c), first, second), hms  # type: ignore[return-value]
        raise DateProblem(f"ambiguous date {text!r}: day and month order unknown")
    raise DateProblem(f"unreadable date {text!r}: no four-digit year")


def normalise_date(text: str) -> str | None:
    """`1950-03-12`, `1950/03/12`, `1950 03 12` or `12/03/1950` → `1950-03-12`; empty → None.

    Raises DateProblem when the text is present but unreadable, impossible or ambiguous.
    """
    if not text.strip():
        return None
    (year, month, day), _ = _ymd(text)
    try:
        return date(year, month, day).isoformat()
    except ValueError as error:
        raise DateProblem(f"impossible date {text!r}") from error


def normalise_datetime(text: str) -> str | None:
    """`2020-01-01 10:00:00` → `2020-01-01T10:00:00`; a date alone stays a date; empty → None."""
    if not text.strip():
        return None
    (year, month, day), hms = _ymd(text)
    try:
        if hms is None:
            return date(year, month, day).isoformat()
        return datetime(year, month, day, *hms).isoformat()
    except ValueError as error:
        raise DateProblem(f"impossible date {text!r}") from error
