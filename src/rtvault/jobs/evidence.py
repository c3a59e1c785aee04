"""`rtvault report --month YYYY-MM`: the month's evidence for the quality manager's file (docs/design.md,
"Monthly report"), read from the run journal as the catalog indexes it: every run (per job, per day, and each
one that was not ok), the restore drills against the continuity targets, the verification coverage of each
store, and the alerts with their resolution (the health checks' changes of status, from the journal's alert
records).

The month is the site's local month (00:00 on the first to 00:00 on the first of the next, in the machine's zone);
a month still running is reported up to now and says so. What the journal lacks is said, never silently left
out: a store that no verify covered, a month without runs (the daemon was not running), a drill missing.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from rtvault.catalog import runs as catalog_runs
from rtvault.catalog.runs import HealthEvent, RunRow
from rtvault.config import Config
from rtvault.configured import open_catalog_for
from rtvault.errors import InputError
from rtvault.jobs.schedule import local_zone
from rtvault.utc import iso, parse

SEVERITY = ("WARNING", "UNKNOWN", "CRITICAL")  # a problem's status, mildest first
RESULTS = ("ok", "partial", "failed", "unavailable")
NOTES = {
    "fr": {
        "no_runs": "aucune tâche n'est au journal pour {month} : le démon `rtvault daemon` tournait-il ? (les "
                   "tâches lancées à la main n'y sont pas ; `rtvault catalog sync` lit le journal des stockages)",
        "not_verified": "le stockage {store} n'a pas été vérifié en {month} : aucune vérification ne l'a relu",
        "no_drill": "aucun exercice de restauration n'est au journal pour {month}",
        "unresolved": "l'alerte sur « {check} » depuis le {since} n'est pas résolue à la fin de la période",
    },
    "en": {
        "no_runs": "no run is recorded in the journal for {month}: was `rtvault daemon` running? (runs made by "
                   "hand are not journalled; `rtvault catalog sync` indexes the stores' journals)",
        "not_verified": "store {store} was not verified in {month}: no verify run read it",
        "no_drill": "no restore drill is recorded in {month}",
        "unresolved": "alert on {check} since {since} is not resolved at the end of the report",
    },
}


def month_bounds(text: str, now: datetime) -> tuple[datetime, datetime, bool]:
    """The local month `YYYY-MM` as (start, end, in progress), aware local times; InputError for a month that is
    not one or has not begun."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if match is None or not 1 <= int(match[2]) <= 12:
        raise InputError(f"month {text!r} is not a month: give it as YYYY-MM (2026-11)")
    zone = local_zone()
    year, month = int(match[1]), int(match[2])
    start = datetime(year, month, 1, tzinfo=zone)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
    if start > now:
        raise InputError(f"month {text} has not begun: give a month up to the current one")
    return start, min(end, now), end > now


@dataclass(frozen=True)
class JobLine:
    job: str
    runs: int
    results: dict[str, int]
    median_s: float
    longest_s: float


@dataclass(frozen=True)
class DayLine:
    day: date
    runs: int
    not_ok: int


@dataclass(frozen=True)
class DrillLine:
    started: datetime
    store: str
    kind: str
    key: str
    seconds: float | None
    mb_per_s: float | None
    full_estimate_s: float | None
    within_rto: bool | None
    result: str
    error: str


@dataclass
class Coverage:
    """One store's verification over the month, from the verify runs' summaries."""

    store: str
    runs: int = 0
    files: int = 0
    bytes: int = 0
    cycles_completed: int = 0
    coverage_percent: float | None = None  # of the current cycle, after the month's last verify
    problems: int = 0  # known after the month's last verify
    errors: int = 0  # runs that could not read the store
    last_error: str = ""

    @property
    def covered(self) -> bool:
        return self.runs > self.errors


@dataclass
class Episode:
    """A health check out of OK: from its first problem status to its return to OK (None: not resolved)."""

    check: str
    started: datetime
    status: str
    message: str
    notified: tuple[str, ...]
    resolved: datetime | None = None


@dataclass(frozen=True)
class Note:
    """Something the journal lacks or that is still open, said in the report's language (`code`: its words in
    jobs/evidence_report.py) and, on stderr, in English."""

    code: str
    values: dict[str, str]

    def text(self, lang: str) -> str:
        return NOTES[lang][self.code].format(**self.values)

    def english(self) -> str:
        return self.text("en")


@dataclass(frozen=True)
class Evidence:
    site: str
    month: str
    start: datetime
    end: datetime
    in_progress: bool
    zone: str
    runs: tuple[RunRow, ...]
    jobs: tuple[JobLine, ...]
    days: tuple[DayLine, ...]
    drills: tuple[DrillLine, ...]
    coverage: tuple[Coverage, ...]
    episodes: tuple[Episode, ...]
    rto_patient_minutes: int
    rto_full_minutes: int
    rpo: str
    generated: datetime
    notes: tuple[Note, ...] = field(default=())

    @property
    def not_ok(self) -> tuple[RunRow, ...]:
        return tuple(run for run in reversed(self.runs) if run.result != "ok")

    def counts(self) -> dict[str, int]:
        return {result: sum(1 for run in self.runs if run.result == result) for result in RESULTS}

    def to_json(self) -> dict[str, object]:
        return {
            "month": self.month, "from": iso(self.start), "to": iso(self.end), "in_progress": self.in_progress,
            "runs": {"total": len(self.runs), **self.counts(),
                     "jobs": {j.job: {"runs": j.runs, **j.results, "median_s": round(j.median_s, 1),
                                      "longest_s": round(j.longest_s, 1)} for j in self.jobs}},
            "drills": [{"time": iso(d.started), "store": d.store, "kind": d.kind, "key": d.key, "seconds": d.seconds,
                        "mb_per_s": d.mb_per_s, "full_estimate_s": d.full_estimate_s, "within_rto": d.within_rto,
                        "result": d.result, "error": d.error} for d in self.drills],
            "verification": [{"store": c.store, "runs": c.runs, "files": c.files, "bytes": c.bytes,
                              "cycles_completed": c.cycles_completed, "coverage_percent": c.coverage_percent,
                              "problems": c.problems, "errors": c.errors} for c in self.coverage],
            "alerts": [{"check": e.check, "status": e.status, "from": iso(e.started),
                        "resolved": iso(e.resolved) if e.resolved else None, "message": e.message,
                        "notified": list(e.notified)} for e in self.episodes],
            "notes": [note.english() for note in self.notes]}


def _time(text: str) -> datetime:
    return parse(text).astimezone(local_zone())


def _jobs(runs: Iterable[RunRow]) -> tuple[JobLine, ...]:
    by_job: dict[str, list[RunRow]] = defaultdict(list)
    for run in runs:
        by_job[run.job].append(run)
    lines = []
    for job, rows in sorted(by_job.items()):
        seconds = [float(r.record.get("duration_s") or 0.0) for r in rows]  # type: ignore[arg-type]
        results = {result: sum(1 for r in rows if r.result == result) for result in RESULTS}
        lines.append(JobLine(job, len(rows), results, statistics.median(seconds), max(seconds)))
    return tuple(lines)


def _days(runs: Iterable[RunRow], start: datetime, end: datetime) -> tuple[DayLine, ...]:
    per_day: dict[date, list[RunRow]] = defaultdict(list)
    for run in runs:
        per_day[_time(run.started).date()].append(run)
    days, day = [], start.date()
    while day < end.date() or (day == end.date() and end.time() != datetime.min.time()):
        rows = per_day.get(day, [])
        days.append(DayLine(day, len(rows), sum(1 for r in rows if r.result != "ok")))
        day += timedelta(days=1)
    return tuple(days)


def _number(value: object) -> float | None:
    """A figure of a record, None when it is none (or not finite: a record sealed by hand may hold 1e999)."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return None
    return float(value)


def _drills(runs: Iterable[RunRow]) -> tuple[DrillLine, ...]:
    lines = []
    for run in sorted((r for r in runs if r.job == "drill"), key=lambda r: r.started):
        summary = run.record.get("summary")
        drills = summary.get("drills") if isinstance(summary, dict) else None
        if not isinstance(drills, list) or not drills:  # the drill did not run (crashed, timed out)
            lines.append(DrillLine(_time(run.started), "", "", "", None, None, None, None, run.result, run.error))
            continue
        for d in (d for d in drills if isinstance(d, dict)):
            lines.append(DrillLine(_time(run.started), str(d.get("store", "")), str(d.get("kind", "")),
                                   str(d.get("key", "")), _number(d.get("seconds")), _number(d.get("mb_per_s")),
                                   _number(d.get("full_estimate_s")),
                                   d["within_rto"] if isinstance(d.get("within_rto"), bool) else None,
                                   str(d.get("result", "")), str(d.get("error") or "")))
    return tuple(lines)


def _verify_summaries(run: RunRow) -> Iterator[dict]:
    """The per-store documents of a verify run (one command, or each step of several)."""
    summary = run.record.get("summary")
    documents = [summary] if isinstance(summary, dict) else []
    if isinstance(summary, dict) and isinstance(summary.get("steps"), list):
        documents = [step.get("summary") for step in summary["steps"] if isinstance(step, dict)]
    for document in documents:
        if isinstance(document, dict) and isinstance(document.get("stores"), list):
            yield from (store for store in document["stores"] if isinstance(store, dict))


def _coverage(config: Config, runs: Iterable[RunRow]) -> tuple[Coverage, ...]:
    stores = {name: Coverage(name) for name in config.stores}
    for run in sorted((r for r in runs if r.job == "verify"), key=lambda r: r.started):
        for document in _verify_summaries(run):
            name = str(document.get("store", ""))
            line = stores.setdefault(name, Coverage(name))
            line.runs += 1
            if document.get("error"):
                line.errors += 1
                line.last_error = str(document["error"])
                continue
            line.files += int(_number(document.get("objects_verified")) or 0)
            line.bytes += int(_number(document.get("bytes")) or 0)
            line.cycles_completed += bool(document.get("cycle_completed"))
            line.coverage_percent = _number(document.get("coverage_percent"))
            problems = document.get("problems")
            line.problems = len(problems) if isinstance(problems, list) else 0
    return tuple(stores.values())


def _episodes(events: Iterable[HealthEvent], start: datetime, end: datetime) -> tuple[Episode, ...]:
    """Each check's time out of OK that overlaps the month, oldest first."""
    open_: dict[str, Episode] = {}
    found: list[Episode] = []
    for event in events:
        at = _time(event.at)
        current = open_.get(event.check)
        if event.status == "OK":
            if current is not None:
                current.resolved = at
                del open_[event.check]
            continue
        if current is None:
            open_[event.check] = current = Episode(event.check, at, event.status, event.message, event.notified)
            found.append(current)
        elif SEVERITY.index(event.status) > SEVERITY.index(current.status):
            current.status, current.message = event.status, event.message
    return tuple(e for e in found if e.started < end and (e.resolved is None or e.resolved >= start))


def gather(config: Config, month: str, now: datetime | None = None) -> Evidence:
    """The month's evidence from the catalog's journal index (RtvaultError when the catalog cannot be read)."""
    now = (now or datetime.now(UTC)).astimezone(local_zone())
    start, end, in_progress = month_bounds(month, now)
    with open_catalog_for(config) as catalog:
        runs = tuple(catalog_runs.runs(catalog, since=iso(start), before=iso(end)))
        events = catalog_runs.health_events(catalog, before=iso(end))
    coverage = _coverage(config, runs)
    drills = _drills(runs)
    month = month.strip()
    episodes = _episodes(events, start, end)
    notes = [Note("no_runs", {"month": month})] if not runs else []
    notes += [Note("not_verified", {"store": c.store, "month": month}) for c in coverage if not c.covered]
    notes += [Note("no_drill", {"month": month})] if runs and not drills else []
    notes += [Note("unresolved", {"check": e.check, "since": f"{e.started:%Y-%m-%d %H:%M}"})
              for e in episodes if e.resolved is None]
    zone = start.tzname() or str(start.tzinfo)
    return Evidence(config.site.name, month, start, end, in_progress, zone, runs, _jobs(runs),
                    _days(runs, start, end), drills, coverage, episodes,
                    config.continuity.rto_patient_minutes, config.continuity.rto_full_minutes,
                    config.health.backup_max_age, now, tuple(notes))
