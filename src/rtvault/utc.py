"""The one UTC timestamp format rtvault writes, on disk and in the catalog: ISO 8601 ending in `Z`
(`2026-11-23T17:00:00Z`; with microseconds where a format asks for them, as a manifest's `time`).

Earlier versions also wrote `+00:00` (`2026-11-23T17:00:00+00:00`: a store's format file, archive indexes,
the verification state, key files, replication records), and stores keep those files: every reader accepts
both, through `parse`. Both forms of one instant differ only after the seconds, so they sort together.
`span` writes a duration for a person (`3h 05m`).
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime, timespec: str = "seconds") -> str:
    """`moment` (aware; a naive one is taken as local time) in UTC, as written: `...Z`."""
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def now_iso(timespec: str = "seconds") -> str:
    return iso(datetime.now(UTC), timespec)


def parse(text: str) -> datetime:
    """A timestamp as written by any version (`Z`, `+00:00` or another offset); naive when it carries no zone.
    ValueError when it is not ISO 8601."""
    return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))


def span(seconds: float) -> str:
    """A duration for a person: `45s`, `12m`, `3h 05m`, `4d 2h`."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"
