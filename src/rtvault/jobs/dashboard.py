"""What the web dashboard shows (`/dashboard`, `/api/dashboard`; docs/design.md, "Dashboard"): the health checks with
their state and since when, the last run of each job, each store with its size, free space and copies status, the
continuity targets, and the series of its four charts (web/charts.py draws them).

Everything is read afresh for each request: the health as `rtvault health` evaluates it, the run journal and the
disk samples from the catalog's indexed tables (a bounded number of rows whatever the size of the site), the
patients counted by status as `/metrics` counts them; except the `copies` check, a count over every version in
the catalog (0.2 s at 100,000 patients), which a server process measures at most once a minute.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rtvault.catalog import Catalog, destructions
from rtvault.catalog.runs import RunRow, last_runs, runs
from rtvault.config import Config
from rtvault.config.schedule import JOBS
from rtvault.configured import store_labels
from rtvault.errors import RtvaultError
from rtvault.jobs.alert_state import peek, state_file
from rtvault.jobs.health import CopiesReused, HealthReport
from rtvault.jobs.health_metrics import patients_by_status
from rtvault.jobs.health_space import KEEP, WINDOW, forecast_days, measure, sample_key, samples_of
from rtvault.jobs.health_types import Check, Status, worst
from rtvault.utc import iso, parse

CHARTS = ("size", "backup", "drill", "patients")
RUNS_CHARTED = 100  # the newest runs of a job a chart shows
STORE_KINDS = ("replication", "verify", "space")  # the checks about one store, its card's status


@dataclass(frozen=True)
class CheckLine:
    """A health check as the dashboard shows it: since when it has had its status (from the alerts' state,
    which the daemon keeps; None when unknown, or when the daemon last saw another status)."""

    check: Check
    since: str | None

    def to_json(self) -> dict[str, object]:
        return {**self.check.to_json(), "kind": self.check.kind, "subject": self.check.subject, "since": self.since}


@dataclass(frozen=True)
class JobLine:
    """The last run of one job (every field empty when it never ran); `scheduled`: [schedule] runs it."""

    job: str
    scheduled: bool
    started: str = ""
    ended: str = ""
    duration_s: float | None = None
    result: str = ""
    trigger: str = ""
    error: str = ""

    @classmethod
    def of(cls, job: str, scheduled: bool, row: RunRow | None) -> JobLine:
        if row is None:
            return cls(job, scheduled)
        duration = row.record.get("duration_s")
        return cls(job, scheduled, row.started, row.ended, float(duration) if _number(duration) else None,
                   row.result, row.trigger, row.error)

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class StoreCard:
    """One store: its own size (the daemon's latest sample, and when), its disk now, the day it is forecast full,
    and the status of its replication, verify and space checks (`copies`: the worst of them)."""

    name: str
    kind: str  # directory | s3
    copy_of: str
    size_bytes: int | None
    sized: str | None
    free_bytes: int | None
    disk_bytes: int | None
    full_in_days: float | None
    checks: dict[str, str]
    status: Status

    def to_json(self) -> dict[str, object]:
        return {**self.__dict__, "status": self.status.name,
                "full_in_days": None if self.full_in_days is None else round(self.full_in_days, 1)}


@dataclass(frozen=True)
class Overview:
    """The dashboard at one time."""

    time: str
    status: Status
    checks: tuple[CheckLine, ...]
    jobs: tuple[JobLine, ...]
    stores: tuple[StoreCard, ...]
    patients: dict[str, int] | None  # None: the catalog could not count them
    targets: dict[str, float]
    pending_destruction: tuple[dict, ...] = ()  # copies of destroyed archives still to remove (jobs/destruction.py)

    def to_json(self) -> dict[str, object]:
        return {"time": self.time, "status": self.status.name, "targets": self.targets,
                "checks": [c.to_json() for c in self.checks], "jobs": [j.to_json() for j in self.jobs],
                "stores": [s.to_json() for s in self.stores], "patients": self.patients,
                "pending_destruction": list(self.pending_destruction)}


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def targets(config: Config) -> dict[str, float]:
    """The recovery point (the [health] backup_max_age) and recovery times, in seconds."""
    return {"rpo_s": config.health.backup_max_age_s, "rto_patient_s": config.continuity.rto_patient_minutes * 60.0,
            "rto_full_s": config.continuity.rto_full_minutes * 60.0}


def _since(config: Config, report: HealthReport) -> tuple[CheckLine, ...]:
    state, _problems = peek(state_file(config.daemon.state_dir))
    lines = []
    for check in report.checks:
        known = state.checks.get(check.name)
        lines.append(CheckLine(check, iso(known.since) if known and known.status is check.status else None))
    return tuple(lines)


def _jobs(config: Config, catalog: Catalog) -> tuple[JobLine, ...]:
    try:
        last = last_runs(catalog)
    except RtvaultError:
        last = {}
    scheduled = {job for job in JOBS if getattr(config.schedule, job)}
    names = [job for job in JOBS if job in scheduled or job in last] + sorted(set(last) - set(JOBS))
    return tuple(JobLine.of(job, job in scheduled, last.get(job)) for job in names)


def _latest_size(catalog: Catalog, store: str) -> tuple[int | None, str | None]:
    try:
        row = catalog.one("SELECT store_bytes, time FROM store_samples WHERE store = ? AND store_bytes IS NOT NULL "
                          "ORDER BY time DESC LIMIT 1", (store,))
    except RtvaultError:
        return None, None
    return (int(row[0]), str(row[1])) if row else (None, None)


def full_in_days(catalog: Catalog, store: str, now: datetime) -> float | None:
    """Days until the store's disk is full from its latest sample, by health_space's line through the free bytes
    of the last 30 days; None without a forecast."""
    try:
        samples = samples_of(catalog, store, iso(now - WINDOW))
    except RtvaultError:
        return None
    if not samples:
        return None
    days = forecast_days(samples, samples[-1][1])
    return None if days is None else max(0.0, days - (now.timestamp() - samples[-1][0]) / 86400)


def _store(config: Config, catalog: Catalog, name: str, checks: dict[str, Check], now: datetime) -> StoreCard:
    settings = config.stores[name]
    key = sample_key(config, name)
    size, sized = _latest_size(catalog, key)
    free = disk = None
    if settings.path is not None:
        with contextlib.suppress(OSError):
            measured = measure(settings.path)
            free, disk = measured.free, measured.total
    mine = {kind: checks[f"{kind}:{name}"] for kind in STORE_KINDS if f"{kind}:{name}" in checks}
    return StoreCard(name, "directory" if settings.path is not None else "s3", settings.copy_of or "", size, sized,
                     free, disk, full_in_days(catalog, key, now), {k: c.status.name for k, c in mine.items()},
                     worst(*(c.status for c in mine.values())))


COPIES_REUSE_S = 60.0
_copies: dict[str, CopiesReused] = {}  # per configuration file, within this server process
_copies_lock = threading.Lock()


def _evaluate(config: Config, now: datetime) -> HealthReport:
    """The health, its `copies` check reused for a minute within this process (the page is refreshed often)."""
    with _copies_lock:
        reused = _copies.setdefault(str(config.file), CopiesReused())
    return reused.evaluate(config, now, COPIES_REUSE_S)


def overview(config: Config, catalog: Catalog, now: datetime | None = None) -> Overview:
    """The dashboard of the site at `now` (default: now)."""
    now = now or datetime.now(UTC)
    report = _evaluate(config, now)
    by_name = {check.name: check for check in report.checks}
    try:
        patients: dict[str, int] | None = patients_by_status(catalog)
    except RtvaultError:
        patients = None
    try:
        pending = tuple(destructions.pending_summary(catalog, store_labels(config, catalog), config.site.name))
    except RtvaultError:
        pending = ()
    return Overview(report.time, report.status, _since(config, report), _jobs(config, catalog),
                    tuple(_store(config, catalog, name, by_name, now) for name in config.stores), patients,
                    targets(config), pending)


# --- the charts' series ----------------------------------------------------------------------------------------

def size_series(config: Config, catalog: Catalog, now: datetime) -> dict[str, object]:
    """Per store, its size and its disk's use at each sample that measured the size (one per 6 hours, 90 days at
    most), and the forecast of the day its disk is full."""
    stores = {}
    for name in config.stores:
        rows = catalog.execute("SELECT time, store_bytes, total_bytes - free_bytes, total_bytes FROM store_samples "
                               "WHERE store = ? AND store_bytes IS NOT NULL AND time >= ? ORDER BY time",
                               (sample_key(config, name), iso(now - KEEP)))
        days = full_in_days(catalog, sample_key(config, name), now)
        stores[name] = {"points": [{"time": t, "store_bytes": int(s), "used_bytes": int(u), "disk_bytes": int(d)}
                                   for t, s, u, d in rows],
                        "full_in_days": None if days is None else round(days, 1),
                        "full_on": None if days is None else iso(now + timedelta(days=days))}
    return {"stores": stores}


def _bytes_added(row: RunRow) -> int | None:
    counts, summary = row.record.get("counts"), row.record.get("summary")
    for source in (counts, summary):
        if isinstance(source, dict) and _number(source.get("bytes_added")):
            return int(source["bytes_added"])
    return None


def backup_series(catalog: Catalog) -> dict[str, object]:
    """The newest backup runs, oldest first: when, how long, the bytes they added to the store, their result."""
    found = runs(catalog, job="backup", limit=RUNS_CHARTED)
    return {"runs": [{"started": row.started, "duration_s": JobLine.of("backup", True, row).duration_s,
                      "bytes_added": _bytes_added(row), "result": row.result} for row in reversed(found)]}


def drill_series(config: Config, catalog: Catalog) -> dict[str, object]:
    """Each drill of the newest drill runs, oldest first (its time, measured and extrapolated), and the RTOs."""
    drills = []
    for row in reversed(runs(catalog, job="drill", limit=RUNS_CHARTED)):
        summary = row.record.get("summary")
        for drill in summary.get("drills", []) if isinstance(summary, dict) else []:
            if isinstance(drill, dict) and _number(drill.get("seconds")):
                estimate = drill.get("full_estimate_s")
                drills.append({"time": row.started, "store": str(drill.get("store", "")),
                               "kind": str(drill.get("kind", "")), "seconds": float(drill["seconds"]),
                               "full_estimate_s": float(estimate) if _number(estimate) else None,
                               "result": str(drill.get("result", ""))})
    return {"drills": drills, **targets(config)}


def series(config: Config, catalog: Catalog, name: str, now: datetime | None = None) -> dict[str, object]:
    """The data of one chart of CHARTS."""
    now = now or datetime.now(UTC)
    if name == "size":
        return size_series(config, catalog, now)
    if name == "backup":
        return backup_series(catalog)
    if name == "drill":
        return drill_series(config, catalog)
    return {"patients": patients_by_status(catalog)}


def when(text: str) -> datetime:
    """A time of the catalog as an aware datetime (UTC when it names no zone)."""
    moment = parse(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
