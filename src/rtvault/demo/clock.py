"""The fixed clinical calendar of synthetic databases: never the wall clock.

Day 0 is Monday 2026-01-05, the "today" of a freshly generated database; its history lies on earlier working
days, and `rtvault demo evolve --day D` plays the D-th working day after it. Times are naive and converted to
file mtimes as UTC, so results do not depend on the machine's time zone.
"""

from __future__ import annotations

import calendar
import functools
import os
from datetime import date, datetime, timedelta
from pathlib import Path

DAY_ZERO = date(2026, 1, 5)
_OPENING_MINUTES = 7 * 60 + 30  # the department opens at 07:30
_CLOSING_MINUTES = 19 * 60


@functools.lru_cache(maxsize=4096)
def working_day(offset: int) -> date:
    """The working day `offset` working days from day 0 (negative offsets go back in time)."""
    current = DAY_ZERO
    step = 1 if offset >= 0 else -1
    remaining = abs(offset)
    while remaining:
        current += timedelta(days=step)
        if current.weekday() < 5:
            remaining -= 1
    return current


def at(day: date, minute_of_day: int, second: int = 0) -> datetime:
    """A moment of a working day, clamped to opening hours."""
    minute = min(max(minute_of_day, _OPENING_MINUTES), _CLOSING_MINUTES)
    return datetime(day.year, day.month, day.day) + timedelta(minutes=minute, seconds=second % 60)


def office_minute(fraction: float) -> int:
    """A minute of the day within opening hours; `fraction` in [0, 1)."""
    return _OPENING_MINUTES + int(fraction * (_CLOSING_MINUTES - _OPENING_MINUTES))


def text(moment: datetime) -> str:
    """Pinnacle's time stamp text: `YYYY-MM-DD HH:MM:SS`."""
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def epoch(moment: datetime) -> int:
    return calendar.timegm(moment.timetuple())


def set_mtime(path: Path, moment: datetime) -> None:
    seconds = epoch(moment)
    os.utime(path, (seconds, seconds))
