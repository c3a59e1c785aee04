"""Idle patients: unchanged in Pinnacle for `[reconcile] idle_months`, and still exactly as the latest backup saw
them, so that the version that backup stored (and its archive) is what Pinnacle holds. `rtvault reconcile` and
`rtvault archive now --idle` ask these questions of the source's listing (jobs/source.py); neither reads a file."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

from rtvault.jobs.source import Listing, unchanged
from rtvault.store.formats import Tree


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (the last day of a shorter month)."""
    year, month = divmod(moment.year * 12 + moment.month - 1 - months, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def last_change(listing: Listing) -> datetime | None:
    """The newest modification time of the patient's files and folders (the folder itself included, whose time a
    file created or deleted in it changes); None when nothing of it could be listed."""
    newest = max((entry.mtime_ns for entry in (*listing.files, *listing.dirs)), default=None)
    return None if newest is None else datetime.fromtimestamp(newest / 1e9, UTC)


def differs(listing: Listing, tree: Tree) -> str | None:
    """Why the patient directory is not exactly as the backup that recorded `tree` saw it (a file or folder added,
    removed, changed, or unreadable then or now), or None when it is: every file with the same size, times and
    inode, every folder with the same mode and time."""
    if (unreadable := listing.unreadable or tree.unreadable):
        return f"{unreadable[0].name} could not be read ({unreadable[0].error})"
    recorded = tree.by_name()
    if recorded.keys() != {entry.name for entry in listing.files}:
        added = sorted({entry.name for entry in listing.files} - recorded.keys())
        return f"{added[0]} was added" if added else \
            f"{sorted(recorded.keys() - {entry.name for entry in listing.files})[0]} was removed"
    changed = next((entry.name for entry in listing.files if not unchanged(entry, recorded[entry.name])), None)
    if changed is not None:
        return f"{changed} changed"
    if tuple(listing.dirs) != tree.dirs:
        now = {d.name: d for d in listing.dirs}
        moved = next((d.name for d in tree.dirs if now.get(d.name) != d), None) or \
            next(d.name for d in listing.dirs if d not in tree.dirs)
        return f"folder {moved} changed"
    return None
