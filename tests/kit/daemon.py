"""What the tests of the daemon and the run journal share: a site with two stores (a primary and its copy), a
catalog and a state folder; a clock of their own for the scheduler; a stand-in `rtvault` for the runner."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from kit.cli import rtvault
from kit.config import write_config
from rtvault.config import Config, load
from rtvault.jobs.daemon import Daemon
from rtvault.jobs.runner import Outcome, Runner, Step


@dataclass
class Site:
    base: Path
    config_path: Path

    @property
    def config(self) -> Config:
        return load(self.config_path)

    @property
    def primary(self) -> Path:
        return self.base / "primary"

    @property
    def copy(self) -> Path:
        return self.base / "copy"

    @property
    def state(self) -> Path:
        return self.base / "state"

    def segments(self, store: Path, kind: str | None = "run") -> dict[str, bytes]:
        """The journal segments of a store holding a record of `kind` (None: all; the command line's actions,
        such as the site's `init`, are records too)."""
        found = {str(p.relative_to(store)): p.read_bytes() for p in sorted((store / "journal").glob("*/*.json"))}
        return {key: data for key, data in found.items() if kind is None or f'"kind": "{kind}"'.encode() in data}

    def actions(self, store: Path) -> list[dict]:
        """Every action entry of a store's journal, in segment order, each with the segment holding it."""
        found = []
        for key, data in self.segments(store, "actions").items():
            found += [{**entry, "segment": key} for entry in json.loads(data)["entries"]]
        return found


def make_site(base: Path, db: Path, **tables: object) -> Site:
    """A copy of `db`, a primary store and its copy (both initialised), a SQLite catalog, a state folder."""
    shutil.copytree(db, base / "db")
    config = write_config(base / "rtvault.toml", root=base / "db",
                          stores={"primary": base / "primary", "copy": {"path": base / "copy", "copy_of": "primary"}},
                          catalog={"url": f"sqlite:///{base / 'catalog.sqlite'}"},
                          daemon={"state_dir": base / "state", **tables.pop("daemon", {})}, **tables)
    rtvault(config, "init")
    for store in ("primary", "copy"):  # owner-only, as the service user's stores are: they hold the catalog's backup
        (base / store).chmod(0o700)
    return Site(base, config)


class Clock:
    """Local time that moves only when the daemon sleeps, and (unless `wait_idle` is off) only once its jobs are
    all done, so that each job starts at the time it was due; the daemon is stopped once it reaches `until`."""

    def __init__(self, start: datetime, until: datetime, *, wait_idle: bool = True) -> None:
        self.now, self.until, self.wait_idle = start, until, wait_idle
        self.daemon: Daemon | None = None

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert self.daemon is not None
        deadline = time.monotonic() + 30
        while self.wait_idle and (self.daemon._queue or self.daemon._running) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.now = self.now + timedelta(seconds=seconds)
        if self.now >= self.until:
            self.daemon.stop()


def run_daemon(config: Config, clock: Clock, runner: Runner) -> Daemon:
    """A daemon on the tests' clock, run until the clock reaches its end; returns it (its log in `.lines`)."""
    lines: list[str] = []
    daemon = Daemon(config, clock=clock, runner=runner, log=lines.append)
    daemon.lines = lines  # type: ignore[attr-defined]
    clock.daemon = daemon
    daemon.run(sleep=clock.sleep)
    return daemon


class Recorder(Runner):
    """The runner's interface, recording which job ran at what (daemon) time instead of running commands; a job
    named in `hold` waits for `release` before it ends; one named in `crash` raises."""

    def __init__(self, config: Config, clock: Clock, *, hold: str | None = None, crash: str | None = None) -> None:
        super().__init__(config)
        self.clock, self.hold, self.crash = clock, hold, crash
        self.ran: list[tuple[str, datetime]] = []
        self.started, self.release = threading.Event(), threading.Event()

    def run(self, job: str) -> Outcome:
        self.ran.append((job, self.clock.now))
        if job == self.crash:
            raise RuntimeError(f"{job} fell over")
        if job == self.hold:
            self.started.set()
            self.release.wait(30)
        now = datetime.now().astimezone()
        return Outcome(job, now, now, [Step(["stand-in", job], 0, "ok", 0.0, {"files": 1})])


def stand_in(directory: Path, behaviour: dict[str, dict[str, object]]) -> list[str]:
    """A stand-in `rtvault` (a real process): for each command (`backup`, `verify --store copy`, ...) it prints
    `out`, writes `err`, sleeps `sleep` seconds (deaf to SIGTERM with `ignore_term`) and exits with `code`;
    `codes` gives the exit code of each call in turn (the last one repeats). Returns the command line that runs
    it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "behaviour.json").write_text(json.dumps(behaviour))
    script = directory / "fake_rtvault.py"
    script.write_text(textwrap.dedent("""\
        import json, signal, sys, time
        from pathlib import Path
        here = Path(__file__).parent
        args = sys.argv[sys.argv.index("--config") + 2:-1]  # the command, without --config FILE and --json
        name = " ".join(args)
        rule = json.loads((here / "behaviour.json").read_text()).get(name, {})
        calls = here / "calls.txt"
        with calls.open("a") as out:
            out.write(name + "\\n")
        count = calls.read_text().splitlines().count(name)
        codes = rule.get("codes", [rule.get("code", 0)])
        if rule.get("ignore_term"):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(rule.get("sleep", 0))
        print(json.dumps(rule.get("out", {"command": name})))
        sys.stderr.write(rule.get("err", ""))
        sys.exit(codes[min(count, len(codes)) - 1])
        """))
    return [sys.executable, str(script)]


def until(condition: Callable[[], object], timeout: float = 60) -> None:
    """Wait until `condition()` is true (polled), or fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not so after {timeout:g} s")
        time.sleep(0.2)


def calls(directory: Path) -> list[str]:
    path = directory / "calls.txt"
    return path.read_text().splitlines() if path.exists() else []
