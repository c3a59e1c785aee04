"""`rtvault daemon`: the [schedule] run in the foreground (docs/design.md, "The daemon").

- One daemon per store set: it holds `locks/daemon.json` in every store (a lease like the writer lock, renewed by
  its loop at every [health] interval: the heartbeat `rtvault health` reads). A second daemon exits with a clear
  message; the lease of a daemon killed on this host is taken over at once, elsewhere once it expired.
- Jobs run one at a time, in the order they came due, each command in a child process (jobs/runner.py): a job
  never overlaps itself (a time that comes while it is queued or running is merged with it), and jobs that need
  the same store wait their turn. A job `after` another is queued when that one's run ends, whatever its result.
- A timed job whose last run (the journal) started before its latest scheduled time was missed while the daemon
  was down: it runs once at start ("catch-up"), however many times it was missed.
- Times are the machine's local time, in its zone's rules: a time repeated by the autumn change runs once (a job
  never fires twice for the same wall-clock minute).
- SIGTERM: no new job starts; the current one finishes, then the daemon exits 0 (`stop()`); `halt()` (a second
  SIGTERM) ends the current command at once.
- With `[dicom] port` set, the DICOM node (`rtvault dicom serve`) runs beside the schedule as a supervised child
  (jobs/dicom_child.py): restarted when it dies, stopped (sealing what it received) when the daemon stops.
- Every run is recorded in the run journal (jobs/journal.py); a job that crashes is a failed run, never a dead
  daemon.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from croniter import croniter

from rtvault.catalog import runs
from rtvault.config import Config
from rtvault.config.schedule import rules
from rtvault.configured import open_catalog_for, open_store
from rtvault.errors import LockBusy, RtvaultError
from rtvault.jobs.dicom_child import DicomChild
from rtvault.jobs.journal import Journal, run_record
from rtvault.jobs.runner import Outcome, Runner
from rtvault.jobs.schedule import jobs as scheduled_jobs
from rtvault.jobs.schedule import local_now
from rtvault.store.locks import DAEMON_KEY, WriterLock, describe, read_lease
from rtvault.utc import parse

MIN_LEASE_S = 300  # the daemon's lease outlives a few missed heartbeats
WAKE_S = 30.0  # the loop looks at the clock at least this often
MONITOR_GRACE_S = 30.0  # at the stop, the health hooks under way get this long to end


@dataclass
class DaemonSummary:
    runs: int = 0
    by_result: dict[str, int] = field(default_factory=dict)


class Daemon:
    def __init__(self, config: Config, *, log: Callable[[str], None] = lambda _line: None,
                 clock: Callable[[], datetime] = local_now, runner: Runner | None = None,
                 on_tick: list[Callable[[datetime], list[str]]] | None = None) -> None:
        self.config = config
        self.log = log
        self.clock = clock
        self.runner = runner or Runner(config, log=log)
        self.on_tick = on_tick or []  # health, samples, alerts: each returns what went wrong, as sentences
        self.stopping = threading.Event()
        self._wake = threading.Event()
        self._queue: deque[tuple[str, str]] = deque()
        self._running: str | None = None
        self._lock = threading.Lock()
        self._leases: dict[str, WriterLock] = {}
        self._fired: dict[str, str] = {}  # job: the wall-clock minute it last fired at ("2026-10-25 02:30")
        self._catching_up = True  # until the runs queued at start are done
        self._monitor: threading.Thread | None = None  # the health hooks of the last interval
        self.next_fire: dict[str, datetime] = {}
        self.summary = DaemonSummary()
        self.journal = Journal(config)
        self.lease_s = max(MIN_LEASE_S, 3 * config.health.interval_s)
        self.jobs = scheduled_jobs(config)
        # the DICOM node, a supervised child when [dicom] port is set
        executable = getattr(self.runner, "executable", None) or [sys.executable, "-m", "rtvault"]
        self.dicom = DicomChild(config, executable, log=log) if config.dicom.port else None

    # --- the schedule ------------------------------------------------------------------------------------

    def _crons(self, job: str) -> list[str]:
        return [rule.cron for rule in rules(self.jobs[job]) if rule.cron]

    def _followers(self, job: str) -> list[str]:
        return [other for other, entries in self.jobs.items() if any(r.after == job for r in rules(entries))]

    def _next(self, job: str, base: datetime) -> datetime:
        """The job's next time after `base`, skipping the wall-clock minute it last fired at (autumn)."""
        times = []
        for cron in self._crons(job):
            moment = croniter(cron, base).get_next(datetime)
            while moment.strftime("%Y-%m-%d %H:%M") == self._fired.get(job):
                moment = croniter(cron, moment).get_next(datetime)
            times.append(moment)
        return min(times)

    def _last_started(self) -> dict[str, datetime] | None:
        try:
            with open_catalog_for(self.config) as catalog:
                for name in self.config.stores:
                    try:
                        runs.sync_store(catalog, open_store(self.config, name))
                    except RtvaultError:
                        continue
                return {job: parse(row.started) for job, row in runs.last_runs(catalog).items()}
        except RtvaultError as error:
            self.log(f"the catalog cannot tell when each job last ran ({error}): every timed job runs once now")
            return None

    def _catch_up(self, now: datetime) -> None:
        last = self._last_started()
        for job in self.jobs:
            crons = self._crons(job)
            if not crons:
                continue
            latest = max(croniter(cron, now).get_prev(datetime) for cron in crons)
            if last is None or job not in last or last[job] < latest:
                self.log(f"{job}: its run due {latest:%Y-%m-%d %H:%M} was missed while the daemon was down: "
                         "running it now")
                self.queue(job, "catch-up")

    # --- the queue ----------------------------------------------------------------------------------------

    def queue(self, job: str, trigger: str, *, first: bool = False) -> bool:
        """Queue a run unless the job is already queued or running (a job never overlaps itself); `first`: ahead
        of the others (a job `after` another runs right after it)."""
        with self._lock:
            if self._running == job or any(queued == job for queued, _ in self._queue):
                self.log(f"{job}: still {'running' if self._running == job else 'waiting'}; this {trigger} run "
                         "is merged with it")
                return False
            if first:
                self._queue.appendleft((job, trigger))
            else:
                self._queue.append((job, trigger))
        self._wake.set()
        return True

    def _work(self) -> None:
        while True:
            with self._lock:
                if self.stopping.is_set() or not self._queue:
                    self._running = None
                    if self.stopping.is_set():
                        return
                    job = None
                else:
                    job, trigger = self._queue.popleft()
                    self._running = job
            if job is None:
                self._wake.wait(WAKE_S)
                self._wake.clear()
                continue
            self._run(job, trigger)
            for follower in reversed(self._followers(job)):  # right after it, in the configuration's order
                self.queue(follower, f"after {job}", first=True)

    def _run(self, job: str, trigger: str) -> None:
        self.log(f"{job}: starting ({trigger})")
        start = datetime.now().astimezone()
        try:
            outcome = self.runner.run(job)
            record = run_record(job, trigger, outcome.start, outcome.end or start, outcome.result, outcome.error,
                                outcome.summary, steps=[s.to_json() for s in outcome.steps],
                                warnings=outcome.warnings(), counts=outcome.counts())
        except Exception as error:  # a bug in rtvault: recorded as a failed run, the daemon goes on
            outcome = Outcome(job, start, datetime.now().astimezone())
            text = "".join(traceback.format_exception_only(type(error), error)).strip()
            record = run_record(job, trigger, start, datetime.now().astimezone(), "failed",
                                f"internal error (a bug in rtvault, please report it): {text}", None,
                                traceback=traceback.format_exc()[-4000:])
        written = self.journal.append(record)
        self.summary.runs += 1
        result = str(record["result"])
        self.summary.by_result[result] = self.summary.by_result.get(result, 0) + 1
        self.log(f"{job}: {result} in {record['duration_s']} s" + (f": {record['error']}" if record["error"] else ""))
        for store, why in written.spooled.items():
            self.log(f"journal: store {store} did not take the record ({why}); kept in the spool")
        for problem in written.problems:
            self.log(f"journal: {problem}")

    # --- leases and the heartbeat -------------------------------------------------------------------------

    def _take_leases(self) -> None:
        for name, settings in self.config.stores.items():
            if name in self._leases or settings.read_only:  # a store this host only reads is its own host's
                continue
            try:
                backend = open_store(self.config, name).backend
                lease = WriterLock(backend, "daemon", self.lease_s, key=DAEMON_KEY, renewing=False,
                                   warn=lambda p, name=name: self.log(f"store {name}: {p.message}"))
                lease.acquire()
            except LockBusy:
                holder = read_lease(backend, DAEMON_KEY)
                who = describe(holder[0]) if holder else "another daemon"
                raise LockBusy(f"another rtvault daemon runs on store {name}: {who}; only one daemon per set of "
                               "stores (stop it first, or wait for its lease to end if it was killed on another "
                               "host)") from None
            except RtvaultError as error:
                self.log(f"store {name}: no daemon lease taken yet ({error}); trying again at the next heartbeat")
                continue
            self._leases[name] = lease

    def _heartbeat(self) -> None:
        for name, lease in list(self._leases.items()):
            try:
                lease.renew()
            except LockBusy as error:
                self.log(f"{error}: another daemon took over; this one stops")
                self.stop()
            except RtvaultError as error:
                self.log(f"store {name}: heartbeat not written ({error})")
        if not self.stopping.is_set():
            self._take_leases()

    def tick(self, now: datetime) -> None:
        """Every [health] interval: the heartbeat, the spooled journal records, then the health hooks."""
        self._heartbeat()
        for line in self.journal.flush():
            self.log(f"journal: {line}")
        with self._lock:
            if self._catching_up and (self._queue or self._running):
                return  # health waits for the runs caught up at start: a site is not alerted for a backup under way
            self._catching_up = False
        if self._monitor is not None and self._monitor.is_alive():
            self.log("health: the previous interval's checks and alerts are still running (a store, the catalog or "
                     "the mail server is slow to answer); this interval's are skipped")
            return
        self._monitor = threading.Thread(target=self._hooks, args=(now,), name="rtvault-health", daemon=True)
        self._monitor.start()

    def _hooks(self, now: datetime) -> None:
        """The health hooks, in a thread of their own: a hung mail server or NAS never holds the heartbeat or the
        schedule."""
        for hook in self.on_tick:
            try:
                for line in hook(now):
                    self.log(line)
            except Exception as error:  # a monitoring bug never stops the schedule
                self.log(f"internal error in {getattr(hook, '__name__', 'a health hook')} (a bug in rtvault, please "
                         f"report it): {error!r}")

    # --- the loop -----------------------------------------------------------------------------------------

    def stop(self) -> None:
        """No new job; the current one finishes (SIGTERM)."""
        self.stopping.set()
        self._wake.set()

    def halt(self) -> None:
        """Stop now: the current command is ended too (a second SIGTERM)."""
        self.stop()
        self.runner.stop()

    def run(self, sleep: Callable[[float], object] | None = None) -> DaemonSummary:
        """Run until stopped. `sleep(seconds)` waits (the tests give a clock of their own)."""
        sleep = sleep or self.stopping.wait
        worker = threading.Thread(target=self._work, name="rtvault-jobs")
        try:
            self._take_leases()  # refused on one store: the leases taken on the others are released (finally)
            if self.dicom is not None:
                self.dicom.start()
            now = self.clock()
            self._catch_up(now)
            self.next_fire = {job: self._next(job, now) for job in self.jobs if self._crons(job)}
            worker.start()
            next_tick = now
            while not self.stopping.is_set():
                now = self.clock()
                if now >= next_tick:
                    self.tick(now)
                    next_tick = now + timedelta(seconds=self.config.health.interval_s)
                for job, moment in sorted(self.next_fire.items(), key=lambda item: item[1]):
                    if moment <= now:
                        self._fired[job] = moment.strftime("%Y-%m-%d %H:%M")
                        self.queue(job, "schedule")
                        self.next_fire[job] = self._next(job, max(moment, now))
                soonest = min([next_tick, *self.next_fire.values()])
                sleep(max(0.05, min(WAKE_S, (soonest - self.clock()).total_seconds())))
        finally:
            self.stop()
            if self.dicom is not None:
                self.dicom.stop()
            if self._running is not None:
                self.log(f"stopping: waiting for {self._running} to finish (send SIGTERM again to stop it now)")
            if worker.is_alive():
                worker.join()
            if self._monitor is not None:
                self._monitor.join(MONITOR_GRACE_S)  # alerts being sent; a hung server is not waited for
            for name, lease in self._leases.items():
                if (problem := lease.release()) is not None:
                    self.log(f"store {name}: {problem.message}")
        return self.summary
