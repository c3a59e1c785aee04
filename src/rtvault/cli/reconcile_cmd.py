"""`rtvault reconcile`: Pinnacle against the backups, and the patients safe to delete from it."""

from __future__ import annotations

import click

from rtvault.cli.output import AppContext, render_csv, reported, safe
from rtvault.jobs.reconcile import reconcile
from rtvault.jobs.reconcile_report import Reconciliation


@click.command("reconcile", epilog="""\b
Examples:
  rtvault reconcile
  rtvault reconcile --json | jq '.safe_to_delete[] | .mrn'
  rtvault reconcile --csv > reconcile.csv
""")
@click.option("--csv", "as_csv", is_flag=True, help="Print the three lists as CSV on stdout, for a spreadsheet.")
@click.option("--source", "source", default=None, metavar="NAME",
              help="One patient database ([sources.NAME]); default: every one configured.")
@reported
@click.pass_obj
def reconcile_command(app: AppContext, as_csv: bool, source: str | None, as_json: bool) -> Reconciliation | None:
    """Three lists: patients in Pinnacle never captured in a snapshot, archived patients without two verified
    copies, and the patients safe to delete from Pinnacle ([reconcile] idle_months unchanged, exactly as their
    newest snapshot holds them, archived as a Pinnacle tar on two verified copies, one offsite or on a removable
    disk). rtvault never deletes anything in Pinnacle.

    Exit code 0 whatever the lists hold; 9 when something could not be read (named on stderr), 5 when the
    source is not there, 10 when the catalog is missing or behind the stores.
    """
    if as_csv and as_json:
        raise click.UsageError("--csv and --json do not go together")
    found = reconcile(app.load_config(), source=source)
    if not as_csv:
        return found
    render_csv(found, found.csv(clean=safe))
    return None
