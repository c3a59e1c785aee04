"""`rtvault daemon` (the schedule, in the foreground) and `rtvault runs` (the run journal)."""

from __future__ import annotations

import signal
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import click

from rtvault.catalog.runs import RunRow
from rtvault.cli.output import AppContext, echo, reported
from rtvault.config.schedule import JOBS
from rtvault.config.unattended import seconds
from rtvault.report import Line, Report
from rtvault.utc import iso, parse


@click.command("daemon", epilog="""\b
Examples:
  rtvault daemon                                  # in the foreground; Ctrl-C or SIGTERM to stop
  systemctl enable --now rtvault-daemon           # as a service (deploy/rtvault-daemon.service)
\b
Runs each job of [schedule] (`rtvault schedule` shows when), one at a time, each as its own `rtvault` command
with --json; records every run in the run journal of the stores (`rtvault runs`); every [health] interval writes
its heartbeat and evaluates health. A run missed while the daemon was down runs once at start. SIGTERM lets the
current job finish, then exits 0; a second SIGTERM stops the job at once. One daemon per set of stores: a second
one exits with code 6.
""")
@click.pass_obj
def daemon_command(app: AppContext) -> None:
    """Run the schedule until stopped (for systemd, containers and tests)."""
    from rtvault.jobs.daemon import Daemon
    from rtvault.jobs.monitor import hooks

    config = app.load_config()
    daemon = Daemon(config, log=_log)
    daemon.on_tick.extend(hooks(config))

    def on_signal(number: int, _frame: object) -> None:
        if daemon.stopping.is_set():
            _log(f"{signal.Signals(number).name} again: stopping the current job now")
            daemon.halt()
        else:
            _log(f"{signal.Signals(number).name}: no new job will start; the current one finishes first")
            daemon.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    _log(f"rtvault daemon started (journal writer {daemon.journal.writer}); schedule: `rtvault schedule`")
    summary = daemon.run()
    _log(f"rtvault daemon stopped after {summary.runs} run(s)")


def _log(line: str) -> None:
    echo(f"{datetime.now().astimezone():%Y-%m-%d %H:%M:%S} {line}")


@dataclass(frozen=True)
class Runs(Report):
    """`rtvault runs`: the journal's runs, newest first."""

    rows: tuple[RunRow, ...]

    def to_json(self) -> list[dict[str, object]]:  # type: ignore[override]
        return [{"id": r.id, "job": r.job, "trigger": r.trigger, "start": r.started, "end": r.ended,
                 "result": r.result, "error": r.error or None, "host": r.host,
                 "duration_s": r.record.get("duration_s"), "summary": r.record.get("summary"),
                 "warnings": r.record.get("warnings", []), "counts": r.record.get("counts", {})}
                for r in self.rows]

    def lines(self) -> Iterable[Line]:
        if not self.rows:
            yield Line("no run recorded (the daemon records each run it makes: `rtvault daemon`)")
        for r in self.rows:
            start = parse(r.started).astimezone()
            text = f"{start:%Y-%m-%d %H:%M}  {r.job:10} {r.result:11} {r.record.get('duration_s', 0):>8} s  {r.trigger}"
            yield Line(text)
            for line in r.error.splitlines():  # each line of the error under its run (a line is escaped whole)
                yield Line(f"    {line}")


def _since(text: str | None) -> str | None:
    """`--since`: a duration back from now (2h, 3d) or a date or time (2026-12-01, 2026-12-01T08:00)."""
    if text is None:
        return None
    try:
        return iso(datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=seconds(text)))
    except ValueError:
        pass
    try:
        moment = parse(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither a duration (90s, 30m, 2h, 3d) nor a date "
                                 "(2026-12-01 or 2026-12-01T08:00)", param_hint="--since") from None
    return iso(moment if moment.tzinfo else moment.astimezone())


@click.command("runs", epilog="""\b
Examples:
  rtvault runs                          # the latest runs of every job
  rtvault runs --job backup --since 3d
  rtvault runs --json | jq '.[] | select(.result != "ok")'
\b
Each run: job, trigger (schedule, after <job>, catch-up), start, end, result (ok, partial, failed, unavailable),
error and the job's own summary. Read from the catalog, which indexes the journal the stores keep
(`rtvault catalog sync` reads it again from the stores).
""")
@click.option("--job", default=None, metavar="NAME",
              help=f"Only this job's runs ({', '.join(JOBS)}, or replicate:<copy> for a copy on its own schedule).")
@click.option("--since", default=None, metavar="WHEN", help="Only runs started since: a duration (2h, 3d) or a date.")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True, help="At most this many runs.")
@reported
@click.pass_obj
def runs_command(app: AppContext, job: str | None, since: str | None, limit: int, as_json: bool) -> Runs:
    """The runs the daemon recorded, newest first."""
    from rtvault.catalog import runs
    from rtvault.configured import open_catalog_for

    config = app.load_config()
    with open_catalog_for(config) as catalog:
        return Runs(tuple(runs.runs(catalog, job=job, since=_since(since), limit=limit)))
