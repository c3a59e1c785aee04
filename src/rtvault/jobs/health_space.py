"""Free space of each store (`space:<store>`) and the day its disk is forecast full, from the samples the daemon
takes (`sample_stores`, one row of the catalog's `store_samples` per store every health interval, at most one
per 10 minutes, kept 90 days).

A directory store's disk is measured with `shutil.disk_usage`; an S3 bucket reports no free space, so its check
is OK "no limit known" (an UNKNOWN there would alarm for ever about what cannot be measured: the provider's quota
is watched where it is set). The forecast is a least-squares line through the free bytes of the last 30 days of
samples: with fewer than two samples, samples spanning less than a day, or free space that is not shrinking,
there is no forecast.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from rtvault.catalog import Catalog
from rtvault.config import Config
from rtvault.errors import RtvaultError
from rtvault.jobs.health_survey import Survey
from rtvault.jobs.health_types import Check, Status, worst
from rtvault.store.repository import FORMAT_FILE
from rtvault.utc import iso, parse

SAMPLE_EVERY = timedelta(minutes=10)
STORE_BYTES_EVERY = timedelta(hours=6)  # a store's own size needs a stat of every file: measured this often
KEEP = timedelta(days=90)
WINDOW = timedelta(days=30)
MIN_SPAN_S = 86400.0


@dataclass(frozen=True)
class Disk:
    """A directory store's disk as measured now."""

    total: int
    free: int

    @property
    def free_percent(self) -> float:
        return 100.0 * self.free / self.total


def measure(path: Path) -> Disk:
    """The disk of a directory store; OSError when it cannot be measured (or is not the store's: unmounted)."""
    if not (path / FORMAT_FILE).is_file():  # an unmounted NAS: its empty mount point is the root disk's
        raise FileNotFoundError(f"{path} holds no store (is it mounted?)")
    usage = shutil.disk_usage(path)
    if usage.total <= 0:
        raise OSError(f"{path} reports a disk of no size")
    return Disk(usage.total, usage.free)


def forecast_days(samples: list[tuple[float, int]], free_now: int) -> float | None:
    """Days until no space is left, from (epoch seconds, free bytes) samples by a least-squares line; None when
    there are fewer than two samples, they span less than a day, or free space does not shrink."""
    if len(samples) < 2:
        return None
    times = [t for t, _ in samples]
    if max(times) - min(times) < MIN_SPAN_S:
        return None
    mean_t = sum(times) / len(times)
    mean_f = sum(f for _, f in samples) / len(samples)
    spread = sum((t - mean_t) ** 2 for t in times)
    slope = sum((t - mean_t) * (f - mean_f) for t, f in samples) / spread  # bytes per second
    if slope >= 0:
        return None
    return free_now / -slope / 86400


def sample_key(config: Config, name: str) -> str:
    """How the catalog names a store's samples: by the id of its `rtvault-store.json` (sites sharing one catalog
    may both call their store `primary`); by its name when the id cannot be read (no samples are taken then)."""
    settings = config.stores.get(name)
    if settings is not None and settings.path is not None:
        try:
            found = json.loads((settings.path / FORMAT_FILE).read_text(encoding="utf-8")).get("id")
        except (OSError, ValueError, AttributeError):
            return name
        if isinstance(found, str) and found:
            return found
    return name


def samples_of(catalog: Catalog, store: str, since: str) -> list[tuple[float, int]]:
    rows = catalog.execute("SELECT time, free_bytes FROM store_samples WHERE store = ? AND time >= ? ORDER BY time",
                           (store, since))
    return [(parse(time).timestamp(), int(free)) for time, free in rows]


def _size(count: float) -> str:
    return f"{count / 1e12:.2f} TB" if count >= 1e12 else f"{count / 1e9:.1f} GB"


def _forecast(survey: Survey, store: str, disk: Disk) -> tuple[float | None, str]:
    try:
        days = forecast_days(samples_of(survey.catalog(), sample_key(survey.config, store),
                                        survey.since(WINDOW.total_seconds())), disk.free)
    except RtvaultError as error:
        return None, f"no forecast (the catalog cannot be read: {error})"
    if days is None:
        return None, "not filling up (or not a day of samples yet: the daemon takes them)"
    return days, f"full in about {days:.0f} days at the pace of the last 30 days"


def space_check(survey: Survey, store: str) -> Check:
    """Free space on the store's disk and the days until it is full."""
    name, settings, health = f"space:{store}", survey.config.stores[store], survey.config.health
    if settings.path is None:
        return Check(name, Status.OK, None, None, f"{store} is an S3 bucket: no limit known (a bucket reports no "
                                                  "free space; watch the quota where the provider sets it)", "%")
    try:
        disk = measure(settings.path)
    except OSError as error:
        return Check(name, Status.UNKNOWN, None, None,
                     f"cannot measure the disk of store {store}: {error.strerror or error}")
    percent = disk.free_percent
    by_percent = Status.CRITICAL if percent < health.free_critical_percent else \
        Status.WARNING if percent < health.free_warn_percent else Status.OK
    days, forecast = _forecast(survey, store, disk)
    by_days = Status.OK if days is None else Status.CRITICAL if days <= health.full_critical_days else \
        Status.WARNING if days <= health.full_warn_days else Status.OK
    status = worst(by_percent, by_days)
    level = health.free_critical_percent if by_percent is Status.CRITICAL else health.free_warn_percent
    said = (f"{percent:.1f} % free on the disk of {store} ({_size(disk.free)} of {_size(disk.total)}), {forecast} "
            f"(WARNING below {health.free_warn_percent:g} % or full within {health.full_warn_days} days, CRITICAL "
            f"below {health.free_critical_percent:g} % or within {health.full_critical_days} days)")
    if status is not Status.OK:
        said += ": free space on that disk (`rtvault forget` then `rtvault prune` apply the retention rules) or "\
                "move the store to a larger one"
    return Check(name, status, round(percent, 1), float(level), said, "%")


def _store_bytes(path: Path) -> int | None:
    """The bytes of every file of a directory store; None when a folder cannot be listed."""
    total = 0
    try:
        for folder, _dirs, files in os.walk(path, onerror=_raise):
            total += sum(os.lstat(os.path.join(folder, name)).st_size for name in files)
    except OSError:
        return None
    return total


def _raise(error: OSError) -> None:
    raise error


def _sample(catalog: Catalog, store: str, path: Path, now: datetime) -> tuple | None:
    """The row of a new sample of one store, or None when it was sampled less than 10 minutes ago or cannot be."""
    last = catalog.one("SELECT MAX(time) FROM store_samples WHERE store = ?", (store,))
    if last and last[0] and last[0] > iso(now - SAMPLE_EVERY):
        return None
    try:
        disk = measure(path)
    except OSError:
        return None  # unmounted or unreadable: the space check says so; never a sample of another disk
    sized = catalog.one("SELECT MAX(time) FROM store_samples WHERE store = ? AND store_bytes IS NOT NULL", (store,))
    due = not (sized and sized[0]) or sized[0] <= iso(now - STORE_BYTES_EVERY)
    return store, iso(now), disk.total, disk.free, _store_bytes(path) if due else None


def sample_stores(config: Config, catalog: Catalog, now: datetime) -> list[str]:
    """Record the disk space of every directory store (the daemon calls it every [health] interval): one
    `store_samples` row per store (by its id, `sample_key`), at most one per 10 minutes, the store's own size
    every 6 hours (NULL in between), rows older than 90 days deleted. Returns the stores sampled. The disks are
    measured before the catalog's write lock is taken (a store's size takes a walk of it)."""
    keys = {store: sample_key(config, store) for store, settings in config.stores.items() if settings.path}
    rows = [row for store, key in keys.items() if key != store
            and (row := _sample(catalog, key, config.stores[store].path, now)) is not None]  # type: ignore[arg-type]
    with catalog.transaction():
        for store, key in keys.items():  # the samples written by name before stores were known by id
            catalog.execute("UPDATE store_samples SET store = ? WHERE store = ?", (key, store))
        catalog.many("INSERT INTO store_samples (store, time, total_bytes, free_bytes, store_bytes) "
                     "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows)
        catalog.execute("DELETE FROM store_samples WHERE time < ?", (iso(now - KEEP),))
    return [store for store, key in keys.items() if any(row[0] == key for row in rows)]
