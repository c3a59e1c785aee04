"""`rtvault replicate` and `rtvault status`: the copies of every store."""

from __future__ import annotations

import click

from rtvault.cli.output import AppContext, progress_for, reported
from rtvault.copies.status import StatusReport, store_status
from rtvault.jobs import copies


@click.command("replicate", epilog="""\b
Examples:
  rtvault replicate                              # every store with copy_of, in the order of the file
  rtvault replicate --to secondary --json
  rtvault replicate --from primary --to usb-disk # a one-off copy to any initialised store
  rtvault replicate --pull                       # on the protected copy's host: pull from the read-only primary
""")
@click.option("--from", "source", metavar="NAME", help="Source store (default: the copy_of of each target).")
@click.option("--to", "target", metavar="NAME", help="Target store (default: every store with copy_of).")
@click.option("--pull", is_flag=True, help="Only the copies this host pulls: those whose source is read_only here "
              "(run on the host that keeps a protected copy; the primary's host does not name it).")
@reported
@click.pass_obj
def replicate_command(app: AppContext, source: str | None, target: str | None, pull: bool,
                      as_json: bool) -> copies.Replicated:
    """Copy to each copy store what it lacks from its source: objects, trees, archives, then snapshots.

    Incremental, verified on the target, resumable after a crash. A missing or unmounted store fails its pair
    (exit code 8) without stopping the others; a damaged source object is refused, not copied (exit code 7).
    With --pull, run on the host that keeps a protected copy: only the pairs whose source is read_only there.
    """
    return copies.replicate(app.load_config(), source, target, progress_for(as_json), pull=pull)


@click.command("status", epilog="""\b
Examples:
  rtvault status
  rtvault status --json | jq '.ok, .too_few_copies'
""")
@reported
@click.pass_obj
def status_command(app: AppContext, as_json: bool) -> StatusReport:
    """Each store's size, free space, last replication, lag and verification; what is not on two stores.

    Exit code 0 when every store is reachable and every patient version and archive is on at least two
    stores; 7 otherwise. Fewer than two *verified* copies is reported (too_few_verified, verified_ok) but
    does not change the exit code.
    """
    return store_status(app.load_config())
