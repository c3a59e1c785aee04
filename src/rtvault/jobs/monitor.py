"""What the daemon does at every [health] interval besides its heartbeat: each hook takes the time and returns
what went wrong, as sentences for the daemon's log (never raises for a store, catalog or mail server fault).

1. `store_samples`: each directory store's disk space into the catalog (jobs/health_space.py), the forecast of
   the day it is full;
2. `health_and_alerts`: the health evaluated (jobs/health.py; the `copies` check every 15 minutes, the others
   every interval) and handed to the alerts (jobs/alerts.py), which
   tell people what changed; the log gets each check whose status changed since the last interval, and what
   kept the alerts from going out.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rtvault.config import Config
from rtvault.configured import open_catalog_for
from rtvault.errors import RtvaultError
from rtvault.jobs.alerts import notify
from rtvault.jobs.health import evaluate
from rtvault.jobs.health_space import sample_stores
from rtvault.jobs.health_types import Check, Status

Hook = Callable[[datetime], list[str]]
COPIES_EVERY_S = 900  # the copies check counts every version in the catalog (0.2 s at 100,000 patients): the
# daemon measures it every 15 minutes, not every interval; `rtvault health` always measures it


def hooks(config: Config) -> list[Hook]:
    """The daemon's periodic work: store samples, then health evaluation and alerts."""
    last: dict[str, Status] = {}  # each check's status at the previous interval, for the log
    copies: list[tuple[datetime, Check]] = []  # the last `copies` check: a catalog-wide count, measured less often

    def store_samples(now: datetime) -> list[str]:
        try:
            with open_catalog_for(config) as catalog:
                sample_stores(config, catalog, now)
        except RtvaultError as error:
            return [f"store samples not recorded: {error}"]
        return []

    def health_and_alerts(now: datetime) -> list[str]:
        fresh = copies and (now - copies[0][0]).total_seconds() < COPIES_EVERY_S
        report = evaluate(config, now, reuse={"copies": copies[0][1]} if fresh else None)
        if not fresh:
            copies[:] = [(now, check) for check in report.checks if check.name == "copies"]
        lines = [f"health: {check.name} {last.get(check.name, Status.OK).name} -> {check.status.name}: "
                 f"{check.message}" for check in report.checks if check.status is not last.get(check.name, Status.OK)]
        last.clear()
        last.update((check.name, check.status) for check in report.checks)
        run = notify(config, report.checks, now)
        lines += [f"alerts: {channel} not delivered: {error}" for channel, error in run.failed.items()]
        return lines + [f"alerts: {problem}" for problem in run.problems]

    return [store_samples, health_and_alerts]
