"""`rtvault failover --to NAME` and `rtvault failback`: a copy takes the primary store's place, and gives it back."""

from __future__ import annotations

import click

from rtvault.cli.output import AppContext, reported
from rtvault.jobs.failover import FailedBack, FailedOver, failback, failover


@click.command("failover", epilog="""\b
Examples:
  rtvault failover --to copy          # the primary store is lost: backups go to its copy
\b
From then on `rtvault backup`, `archive sweep`, `forget` and `prune` (and the daemon's jobs) write to that copy;
no command writes to the primary, nothing is replicated from it or into it. Recorded in the copy
(roles/failover.json), in the primary if it still answers, and in [daemon] state_dir; in the run journal; and
`rtvault health` turns CRITICAL (the alerts tell it) until `rtvault failback`. Run it on every host that writes
backups. Exit 4 when NAME is not a copy of the primary, 8 when it cannot be reached.
""")
@click.option("--to", "to", required=True, metavar="NAME", help="The copy of the primary store that takes over.")
@reported
@click.pass_obj
def failover_command(app: AppContext, to: str, as_json: bool) -> FailedOver:
    """Make a copy of the lost primary store the store that backups write to."""
    return failover(app.load_config(), to)


@click.command("failback", epilog="""\b
Examples:
  rtvault failback                    # the primary store is back: copy back, check both, normal roles again
\b
Copies to the primary store what its copy received while failed over (verified, as `rtvault replicate`), checks
that every snapshot of the copy is on the primary and that both stores are whole (as `rtvault check`), and only
then restores the normal roles. Refused (exit 8) while the primary does not answer; exit 7, roles unchanged,
when the stores do not agree. Recorded in the run journal.
""")
@reported
@click.pass_obj
def failback_command(app: AppContext, as_json: bool) -> FailedBack:
    """Give the primary store its role back once it is reachable again."""
    return failback(app.load_config())
