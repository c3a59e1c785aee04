"""What the daemon does at every [health] interval besides its heartbeat: each hook takes the time and returns
what went wrong, as sentences for the daemon's log (never raises for a store, catalog or mail server fault).

1. `store_samples`: each directory store's disk space into the catalog (jobs/health_space.py), the forecast of
   the day it is full;
2. `health_and_alerts`: the health evaluated (jobs/health.py; the `copies` check every 15 minutes, the others
   every interval) and handed to the alerts (jobs/alerts.py), which
   tell people what changed; each change of a check's status is recorded in the run journal (an alert record,
   for the monthly report), and the log gets each check whose status changed since the last interval, and what
   kept the alerts from going out.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime

from rtvault.catalog.runs import runs
from rtvault.config import Config
from rtvault.configured import open_catalog_for
from rtvault.errors import RtvaultError
from rtvault.jobs.alerts import notify
from rtvault.jobs.health import CopiesReused
from rtvault.jobs.health_space import sample_stores
from rtvault.jobs.health_types import Status
from rtvault.jobs.journal import Journal

Hook = Callable[[datetime], list[str]]
PROCEDURE_TIMEOUT_S = 300
COPIES_EVERY_S = 900  # the copies check counts every version in the catalog (0.2 s at 100,000 patients): the
# daemon measures it every 15 minutes, not every interval; `rtvault health` always measures it


def hooks(config: Config) -> list[Hook]:
    """The daemon's periodic work: store samples, then health evaluation and alerts."""
    last: dict[str, Status] = {}  # each check's status at the previous interval, for the log
    copies = CopiesReused()  # a catalog-wide count, measured less often than the other checks
    journal = Journal(config)  # this thread's own stream of records (the daemon's runs have theirs)

    def store_samples(now: datetime) -> list[str]:
        try:
            with open_catalog_for(config) as catalog:
                sample_stores(config, catalog, now)
        except RtvaultError as error:
            return [f"store samples not recorded: {error}"]
        return []

    def health_and_alerts(now: datetime) -> list[str]:
        report = copies.evaluate(config, now, COPIES_EVERY_S)
        lines = [f"health: {check.name} {last.get(check.name, Status.OK).name} -> {check.status.name}: "
                 f"{check.message}" for check in report.checks if check.status is not last.get(check.name, Status.OK)]
        last.clear()
        last.update((check.name, check.status) for check in report.checks)
        run = notify(config, report.checks, now)
        if (record := run.record(now)) is not None:
            written = journal.append(record)
            lines += [f"journal: alert record kept in the spool for store {store} ({why})"
                      for store, why in written.spooled.items()]
            lines += [f"journal: {problem}" for problem in written.problems]
        lines += [f"alerts: {channel} not delivered: {error}" for channel, error in run.failed.items()]
        return lines + [f"alerts: {problem}" for problem in run.problems]

    return [store_samples, health_and_alerts, *([procedures(config)] if config.continuity.procedure_dir else [])]


def procedures(config: Config) -> Hook:
    """The printed procedures written again into [continuity] procedure_dir when what they say changed (the
    configuration file, the last drill): each language by a child `rtvault procedure` (WeasyPrint is not loaded
    into the daemon, which stays small)."""
    folder = config.continuity.procedure_dir
    assert folder is not None
    stamp = config.daemon.state_dir / "procedures.fingerprint"

    def regenerate(_now: datetime) -> list[str]:
        try:
            with open_catalog_for(config) as catalog:
                drill = [row.id for row in runs(catalog, job="drill", limit=1)]
        except RtvaultError:
            drill = None  # the procedure says the figures are unavailable; it is written again once they are back
        fingerprint = hashlib.sha256(config.file.read_bytes() + repr(drill).encode()).hexdigest()
        if stamp.exists() and stamp.read_text().strip() == fingerprint:
            return []
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            return [f"procedures: cannot create {folder} ({error.strerror}): give the service user a folder there"]
        failed = []
        for lang in ("fr", "en"):
            out = folder / f"procedures-{lang}.pdf"
            try:
                done = subprocess.run([sys.executable, "-m", "rtvault", "--config", str(config.file), "procedure",
                                       "--lang", lang, "--out", str(out)], capture_output=True, text=True,
                                      timeout=PROCEDURE_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                failed.append(f"procedures: {out} not written in {PROCEDURE_TIMEOUT_S} s; tried again next interval")
                continue
            if done.returncode:
                last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
                failed.append(f"procedures: {out} not written: {last}")
        if failed:
            return failed
        try:
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.write_text(fingerprint + "\n")
        except OSError as error:
            return [f"procedures: written, but {stamp} could not be ({error.strerror}): they will be written again"]
        return [f"procedures: written again into {folder} (the configuration or the last drill changed)"]

    return regenerate
