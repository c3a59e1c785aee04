"""`rtvault journal verify`: the journal of runs and actions followed in every store, its chain checked."""

from __future__ import annotations

import click

from rtvault.cli.backup_cmd import store_option
from rtvault.cli.output import AppContext, reported
from rtvault.jobs.journal_check import JournalVerified, verify_journal


@click.group("journal")
def journal() -> None:
    """The journal of every run and action, kept in the stores."""


@journal.command("verify", epilog="""\b
Examples:
  rtvault journal verify                  # every store, against each other and the catalog
  rtvault journal verify --store offsite --json
\b
Exit code 0 only when every stream of segments is whole and chained, the stores hold the same segments, and
every record the catalog indexes is in a store (or waits in the spool); 7 names the first bad segment of each
stream; 8 when a store cannot be read.
""")
@store_option
@reported
@click.pass_obj
def verify_command(app: AppContext, store_name: str | None, as_json: bool) -> JournalVerified:
    """Follow the journal's segments in the stores and check that none was changed, replaced or removed."""
    return verify_journal(app.load_config(), store_name)
