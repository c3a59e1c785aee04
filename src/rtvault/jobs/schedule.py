"""The next run of each job of `[schedule]`: a timed job's next cron time (the earliest of its entries), a job
`after` another runs once that one's run ends (its next time is that job's)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from rtvault.config import Config
from rtvault.config.schedule import JOBS, rules
from rtvault.report import Line, Report
from rtvault.utc import iso


def local_zone() -> tzinfo:
    """The machine's time zone with its daylight-saving rules ($TZ, else /etc/localtime's name), so that a
    schedule follows the clock changes; when $TZ is a POSIX rule rather than a zone name, or the zone has no name,
    the offset in force now (read again at each call: a daemon follows the change at its next look at the clock)."""
    names = [os.environ.get("TZ", "").removeprefix(":")]
    with contextlib.suppress(OSError, IndexError):
        names.append(str(Path("/etc/localtime").resolve()).split("/zoneinfo/", 1)[1])
    for index, name in enumerate(names):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                if index == 0:
                    break  # $TZ is a POSIX rule (CET-1CEST,M3.5.0,M10.5.0/3): the C library's offset, as `date` shows
                continue
    zone = datetime.now().astimezone().tzinfo
    assert zone is not None
    return zone


def local_now() -> datetime:
    return datetime.now(local_zone())


@dataclass(frozen=True)
class Planned:
    job: str
    schedule: tuple[str, ...]  # as the configuration writes it
    next_run: datetime  # local time, aware
    after: tuple[str, ...]  # the jobs whose end also starts it

    def to_json(self) -> dict[str, object]:
        return {"job": self.job, "schedule": list(self.schedule), "next_run": iso(self.next_run),
                "after": list(self.after)}


def next_time(entries: tuple[str, ...], now: datetime, timed: dict[str, datetime]) -> datetime:
    """The earliest time after `now` that an entry names; `timed`: the next runs of the jobs already known."""
    times = [croniter(rule.cron, now).get_next(datetime) if rule.cron else timed[rule.after or ""]
             for rule in rules(entries)]
    return min(times)


def jobs(config: Config) -> dict[str, tuple[str, ...]]:
    """Every scheduled job and its entries: the six jobs, then `replicate:<copy>` for each copy replicated on a
    schedule of its own ([schedule.pairs.<copy>])."""
    found = {job: getattr(config.schedule, job) for job in JOBS}
    found.update({f"replicate:{name}": pair.replicate for name, pair in config.schedule.pairs.items()})
    return found


def plan(config: Config, now: datetime) -> list[Planned]:
    """Every job with its next run after `now` (aware, local time), in the configuration's order. The
    configuration was checked: every `after` chain ends at a timed job."""
    schedule = jobs(config)
    follows = {job: tuple(r.after for r in rules(entries) if r.after) for job, entries in schedule.items()}
    timed: dict[str, datetime] = {}
    while len(timed) < len(schedule):
        for job, entries in schedule.items():
            if job not in timed and all(other in timed for other in follows[job]):
                timed[job] = next_time(entries, now, timed)
    return [Planned(job, entries, timed[job], follows[job]) for job, entries in schedule.items()]


@dataclass(frozen=True)
class Schedule(Report):
    """`rtvault schedule`: the next run of each job."""

    planned: tuple[Planned, ...]

    def to_json(self) -> dict[str, object]:
        return {"jobs": [p.to_json() for p in self.planned]}

    def lines(self) -> list[Line]:
        return [Line(f"{p.job:10} next {p.next_run:%Y-%m-%d %H:%M %Z}  ({', '.join(p.schedule)})")
                for p in self.planned]
