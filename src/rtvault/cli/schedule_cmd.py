"""`rtvault schedule`: when each job of `[schedule]` runs next."""

from __future__ import annotations

import click

from rtvault.cli.output import AppContext, reported
from rtvault.jobs.schedule import Schedule, local_now, plan


@click.command("schedule", epilog="""\b
Examples:
  rtvault schedule
  rtvault schedule --json | jq -r '.jobs[] | "\\(.job) \\(.next_run)"'
\b
Times are the machine's local time on the screen, UTC in --json. A job `after` another also runs each time that
one ends. The schedule is [schedule] of the configuration (docs/configuration.md).
""")
@reported
@click.pass_obj
def schedule_command(app: AppContext, as_json: bool) -> Schedule:
    """The next run of each scheduled job (backup, sweep, replicate, verify, retention, catalog)."""
    return Schedule(tuple(plan(app.load_config(), local_now())))
