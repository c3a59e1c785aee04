"""`rtvault health`: one check per concern, each OK / WARNING / CRITICAL / UNKNOWN with its measured value and
threshold ([health] in the configuration). The daemon evaluates it every [health] interval and hands the checks
to the alerts (jobs/alerts.py); `/metrics` exports them (rtvault_health_status{check}).

Check names, stable (alerts, metrics and monitoring key on them): `backup:<source>`, `replication:<target
store>`, `verify:<store>`, `space:<store>`, `source:<source>`, `daemon`, `copies`, `jobs`, `drill`,
`failover`, `alerts`, `dicom:<peer>` (a [dicom.peers.NAME] with silent_after). The part before the colon is the
check's *kind*.

`evaluate(config, now)` reads listings, small files and the catalog's indexes only (jobs/health_survey.py), so
that a monitoring system may call it every minute: the checks are in health_stores.py (backup, replication,
verify, daemon), health_space.py (space) and health_catalog.py (source, copies, jobs). A store or the catalog
that cannot be read makes UNKNOWN the checks that needed it; a check that fails unexpectedly (a bug) is UNKNOWN
too, and never hides the others.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from rtvault.config import Config
from rtvault.errors import ExitCode, RtvaultError
from rtvault.jobs.alerts import delivery_problems
from rtvault.jobs.health_catalog import copies_check, destruction_check, jobs_check, source_check
from rtvault.jobs.health_dicom import dicom_check, watched
from rtvault.jobs.health_drill import drill_check
from rtvault.jobs.health_failover import failover_check
from rtvault.jobs.health_journal import journal_check
from rtvault.jobs.health_space import space_check
from rtvault.jobs.health_stores import backup_check, daemon_check, replication_check, verify_check
from rtvault.jobs.health_survey import Survey, sources
from rtvault.jobs.health_types import RANK, Check, Status, worst
from rtvault.report import Line, Report, Verdict
from rtvault.utc import iso

__all__ = ["Check", "HealthReport", "Status", "evaluate", "run_checks", "worst"]


@dataclass(frozen=True)
class HealthReport(Report):
    """Every check at one time; the worst status is the site's (UNKNOWN below CRITICAL, above WARNING).
    Exit code 0 when every check is OK, else 7 (`--nagios` has its own, 0 to 3)."""

    checks: tuple[Check, ...]
    time: str = ""

    @property
    def status(self) -> Status:
        return worst(*(check.status for check in self.checks))

    def to_json(self) -> dict[str, object]:
        return {"status": self.status.name, "time": self.time, "checks": [c.to_json() for c in self.checks]}

    def lines(self) -> Iterable[Line]:
        good = sum(check.status is Status.OK for check in self.checks)
        yield Line(f"rtvault health: {self.status.name} ({good} of {len(self.checks)} checks OK, at {self.time})")
        for check in sorted(self.checks, key=lambda c: -RANK[c.status]):  # what is wrong first
            yield Line(f"{check.status.name:<8} {check.name}: {check.message}")

    def verdict(self) -> Verdict:
        return Verdict.unless(self.status is not Status.OK, ExitCode.CHECK_FAILED)


def alerts_check(survey: Survey) -> Check:
    """Alerts that could not be delivered (jobs/alerts.py's `delivery_problems`: the outbox, the state file)."""
    config = survey.config
    if not (config.alerts.mail.host or config.alerts.webhook.url):
        return Check("alerts", Status.OK, None, None, "no alert channel is configured ([alerts.mail] host, "
                     "[alerts.webhook] url): rtvault sends no message itself, the monitoring that reads it must")
    problems = delivery_problems(config)
    if problems:
        return Check("alerts", Status.WARNING, len(problems), 0.0,
                     f"{'; '.join(problems)}: check [alerts] and that the mail server or webhook answers "
                     "(`rtvault alert test`)")
    return Check("alerts", Status.OK, 0, 0.0, "every alert was delivered")


def _guarded(name: str, produce: Callable[[], Check | None]) -> list[Check]:
    try:
        check = produce()
    except RtvaultError as error:
        check = Check(name, Status.UNKNOWN, None, None, str(error))
    except Exception as error:  # a bug in one check must not hide the others from the monitoring
        check = Check(name, Status.UNKNOWN, None, None, f"the {name} check failed ({type(error).__name__}: "
                                                        f"{error}): a bug in rtvault, please report it")
    return [] if check is None else [check]


def _producers(survey: Survey) -> list[tuple[str, Callable[[], Check | None]]]:
    stores = survey.config.stores
    found: list[tuple[str, Callable[[], Check | None]]] = []
    for source in sources(survey.config):
        found += [(f"backup:{source}", lambda s=source: backup_check(survey, s)),
                  (f"source:{source}", lambda s=source: source_check(survey, s))]
    found += [(f"replication:{n}", lambda n=n: replication_check(survey, n)) for n in stores if stores[n].copy_of]
    found += [(f"verify:{n}", lambda n=n: verify_check(survey, n)) for n in stores]
    found += [(f"space:{n}", lambda n=n: space_check(survey, n)) for n in stores]
    found += watched(survey)
    return [*found, ("daemon", lambda: daemon_check(survey)), ("copies", lambda: copies_check(survey)),
            ("jobs", lambda: jobs_check(survey)), ("drill", lambda: drill_check(survey)),
            ("failover", lambda: failover_check(survey)), ("journal", lambda: journal_check(survey)),
            ("destruction", lambda: destruction_check(survey)), ("alerts", lambda: alerts_check(survey)),
            ("dicom_node", lambda: dicom_check(survey))]


def run_checks(survey: Survey, reuse: dict[str, Check] | None = None) -> HealthReport:
    """Every check of the site, in a stable order: backup and source per source, replication, verify and space
    per store, dicom per watched DICOM peer, then daemon, copies, jobs, drill, failover, journal, destruction and
    alerts. A check named in `reuse` is taken as given, not measured."""
    reuse = reuse or {}
    checks = [check for name, produce in _producers(survey)
              for check in ([reuse[name]] if name in reuse else _guarded(name, produce))]
    return HealthReport(tuple(checks), iso(survey.now))


class CopiesReused:
    """Health with its costliest check, `copies` (a count over every version in the catalog: 0.2 s at 100,000
    patients), measured at most once per `max_age_s` and reused in between, the others measured every time: for
    the daemon's intervals and the dashboard's pages (`rtvault health` always measures it)."""

    def __init__(self) -> None:
        self._kept: tuple[datetime, Check] | None = None
        self._lock = threading.Lock()

    def evaluate(self, config: Config, now: datetime, max_age_s: float) -> HealthReport:
        with self._lock:
            kept = self._kept
        fresh = kept is not None and 0 <= (now - kept[0]).total_seconds() < max_age_s
        report = evaluate(config, now, reuse={"copies": kept[1]} if fresh and kept else None)
        if not fresh:
            measured = next((c for c in report.checks if c.name == "copies"), None)
            if measured is not None:
                with self._lock:
                    self._kept = (now, measured)
        return report


def evaluate(config: Config, now: datetime | None = None, reuse: dict[str, Check] | None = None) -> HealthReport:
    """The health of the site at `now` (default: now); the checks in `reuse` are taken as given (the daemon
    measures the costliest one, `copies`, less often than every interval)."""
    with Survey(config, now or datetime.now(UTC)) as survey:
        return run_checks(survey, reuse)
