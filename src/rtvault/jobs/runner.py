"""One scheduled job run as a person would run it: each of its `rtvault` commands in a child process, with
`--json`, under `[daemon] job_timeout`, its outcome recorded in the run journal.

A child process per command keeps the daemon small while idle, lets a hung job be stopped (SIGTERM, then
SIGKILL: every store write is atomic, so a killed job leaves nothing half-written), and makes a crash in a job
a failed run, never a dead daemon. A command refused because another writer holds the store's lock (exit 6)
waits its turn and tries again until the job's time is up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rtvault.config import Config
from rtvault.configured import acting
from rtvault.errors import ExitCode

RESULTS = ("ok", "partial", "unavailable", "failed")  # from best to worst: a job's result is its worst step's
_UNAVAILABLE = {ExitCode.STORE, ExitCode.CATALOG, ExitCode.LOCKED}
_PARTIAL = {ExitCode.PARTIAL, ExitCode.CHECK_FAILED}
LOCK_RETRY_S = 30.0
KILL_GRACE_S = 30.0  # after SIGTERM, a command that has not stopped is killed


def end_group(child: subprocess.Popen[bytes], grace_s: float, kill_wait_s: float | None = None) -> None:
    """SIGTERM to a child's whole process group, SIGKILL if it lingers past `grace_s`."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, kill_wait_s)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
ERROR_CHARS = 2000


def commands(config: Config, job: str) -> list[list[str]]:
    """The commands a job runs (without `rtvault --config FILE` and `--json`); empty when it has nothing to do.
    A primary failed over has its retention applied to the copy that took over (`rtvault failover`)."""
    primaries = [acting(config, name) for name, store in config.stores.items()
                 if not store.copy_of and not store.read_only]
    writable = [name for name, store in config.stores.items() if not store.read_only]
    if job in ("backup", "sweep"):  # a host that only pulls a protected copy backs nothing up
        if config.stores and config.stores[acting(config, next(iter(config.stores)))].read_only:
            return []
        return [["backup"]] if job == "backup" else [["archive", "sweep"]]
    if job == "replicate":
        own = config.schedule.pairs  # copies replicated on a schedule of their own are not replicated here
        copies = [name for name, store in config.stores.items() if store.copy_of and name not in own]
        if not own:
            return [["replicate"]] if copies else []
        return [["replicate", "--to", name] for name in copies]
    if job.startswith("replicate:"):
        copy = job.removeprefix("replicate:")
        source = config.stores[copy].copy_of if copy in config.stores else ""
        pull = ["--pull"] if source in config.stores and config.stores[source].read_only else []
        return [["replicate", *pull, "--to", copy]]
    if job == "verify":  # each store's files (a read-only one is its own host's), then the journal's chain
        return [*(["verify", "--store", name] for name in writable), ["journal", "verify"]]
    if job == "retention":
        return [step for name in primaries for step in (["forget", "--store", name], ["prune", "--store", name])]
    if job == "catalog":
        return [["catalog", "sync"]]
    if job == "catalog_backup":
        return [["catalog", "backup"]]
    if job == "drill":
        return [["drill"]]
    raise ValueError(f"no job named {job!r}")


def result_of(code: int) -> str:
    if code == ExitCode.OK:
        return "ok"
    if code in _PARTIAL:
        return "partial"
    if code in _UNAVAILABLE:
        return "unavailable"
    return "failed"


@dataclass
class Step:
    command: list[str]
    exit_code: int | None = None  # None: stopped (timeout)
    result: str = "failed"
    seconds: float = 0.0
    summary: object = None
    error: str = ""
    waited_s: float = 0.0  # for another writer's lock

    def to_json(self) -> dict[str, object]:
        return {"command": " ".join(["rtvault", *self.command]), "exit_code": self.exit_code, "result": self.result,
                "seconds": round(self.seconds, 3), "waited_s": round(self.waited_s, 1), "error": self.error}


@dataclass
class Outcome:
    """What one run of a job did: its steps, result, first error, and the job's own summary."""

    job: str
    start: datetime
    end: datetime | None = None
    steps: list[Step] = field(default_factory=list)

    @property
    def result(self) -> str:
        if not self.steps:
            return "ok"
        return max((step.result for step in self.steps), key=RESULTS.index)

    @property
    def error(self) -> str:
        return next((f"{' '.join(s.command)}: {s.error}" for s in self.steps if s.error), "")

    @property
    def summary(self) -> object:
        if len(self.steps) == 1:
            return self.steps[0].summary
        return {"steps": [{**s.to_json(), "summary": s.summary} for s in self.steps]}

    def warnings(self) -> list[str]:
        found = []
        for step in self.steps:
            if isinstance(step.summary, dict):
                for key in ("warnings", "problems"):
                    items = step.summary.get(key)
                    if isinstance(items, list):
                        found += [_text(item) for item in items]
        return found[:100]

    def counts(self) -> dict[str, int]:
        """The job's own integer counts (files, bytes, snapshots...), summed over its steps."""
        totals: dict[str, int] = {}
        for step in self.steps:
            if isinstance(step.summary, dict):
                for key, value in step.summary.items():
                    if isinstance(value, int) and not isinstance(value, bool):
                        totals[key] = totals.get(key, 0) + value
        return totals


def _text(item: object) -> str:
    if isinstance(item, dict):
        where = item.get("path") or item.get("key") or ""
        message = item.get("message") or item.get("detail") or json.dumps(item, sort_keys=True)
        return f"{where}: {message}" if where else str(message)
    return str(item)


class Runner:
    """Runs jobs' commands; `stop()` (a second SIGTERM, or the end of the job's time) ends the current command."""

    def __init__(self, config: Config, *, executable: list[str] | None = None,
                 log: Callable[[str], None] = lambda _line: None) -> None:
        self.config = config
        self.executable = executable or [sys.executable, "-m", "rtvault"]
        self.log = log
        self._child: subprocess.Popen[bytes] | None = None
        self._halt = threading.Event()

    def run(self, job: str) -> Outcome:
        outcome = Outcome(job, datetime.now(UTC))
        deadline = time.monotonic() + self.config.daemon.job_timeout_s
        for command in commands(self.config, job):
            if self._halt.is_set():
                break
            step = self._step(command, deadline)
            outcome.steps.append(step)
            if step.exit_code is None:
                break  # stopped: the job's time is up
        outcome.end = datetime.now(UTC)
        return outcome

    def _step(self, command: list[str], deadline: float) -> Step:
        step, started = Step(command), time.monotonic()
        while True:
            code, out, err = self._call(command, deadline)
            if code != ExitCode.LOCKED or time.monotonic() + LOCK_RETRY_S >= deadline or self._halt.is_set():
                break
            self.log(f"{' '.join(command)}: the store is locked by another writer; trying again in "
                     f"{LOCK_RETRY_S:.0f} s")
            step.waited_s += LOCK_RETRY_S
            self._halt.wait(LOCK_RETRY_S)
        step.seconds = time.monotonic() - started
        step.exit_code = code
        step.result = "failed" if code is None else result_of(code)
        try:
            step.summary = json.loads(out) if out.strip() else None
        except ValueError:
            step.summary = None
        if code is None:
            step.error = (f"stopped after {self.config.daemon.job_timeout} ([daemon] job_timeout): the job was still "
                          "running; look at what it was waiting for (a hung NAS mount, an S3 server), then run it "
                          "by hand")
        elif code < 0:
            why = " (the daemon was told to stop at once)" if self._halt.is_set() else ""
            step.error = f"killed by signal {signal.Signals(-code).name}{why}"
        elif code != ExitCode.OK:
            lines = [line for line in err.decode("utf-8", "replace").splitlines() if line.strip()]
            step.error = ("\n".join(lines[-5:]) or f"exit code {code}")[-ERROR_CHARS:]
        return step

    def _call(self, command: list[str], deadline: float) -> tuple[int | None, bytes, bytes]:
        argv = [*self.executable, "--config", str(self.config.file), *command, "--json"]
        env = {**os.environ, "RTVAULT_RUN_BY": "daemon"}
        child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                 env=env, start_new_session=True)
        self._child = child
        try:
            out, err = child.communicate(timeout=max(1.0, deadline - time.monotonic()))
            return child.returncode, out, err
        except subprocess.TimeoutExpired:
            self._end(child)
            out, err = child.communicate()
            return None, out, err
        finally:
            self._child = None

    def _end(self, child: subprocess.Popen[bytes]) -> None:
        end_group(child, KILL_GRACE_S)

    def stop(self) -> None:
        """End the running command now (the daemon's second SIGTERM)."""
        self._halt.set()
        child = self._child
        if child is not None and child.poll() is None:
            threading.Thread(target=self._end, args=(child,), daemon=True).start()
