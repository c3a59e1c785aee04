"""`rtvault verify` and `rtvault repair`: every store re-read over a cycle, damage healed from another store."""

from __future__ import annotations

import click

from rtvault.cli.backup_cmd import store_option
from rtvault.cli.output import AppContext, progress_for, reported
from rtvault.copies.verify import parse_budget
from rtvault.jobs import copies
from rtvault.report import Report


@click.command("verify", epilog="""\b
Examples:
  rtvault verify                          # today's share of every store ([verify] cycle_days)
  rtvault verify --store secondary --budget 10m
  rtvault verify --budget 5% --json
  rtvault verify --all                    # every file of every store, now
  rtvault verify --store offsite --without-key   # an encrypted store, checked with no passphrase
""")
@store_option
@click.option("--budget", metavar="DURATION|PERCENT",
              help="Verify for this long (90s, 10m, 2h) or this share of the store (5%) instead of the cycle's "
                   "daily share.")
@click.option("--all", "everything", is_flag=True, help="Verify every file of the store in this run.")
@click.option("--without-key", is_flag=True,
              help="An encrypted store (--store): check every file's checksum without the passphrase.")
@reported
@click.pass_obj
def verify_command(app: AppContext, store_name: str | None, budget: str | None, everything: bool,
                   without_key: bool, as_json: bool) -> Report:
    """Re-read and re-hash the next slice of each store (or of --store), so that every file is covered once per
    [verify] cycle_days when run daily; finds missing, corrupt and unexpected files.

    Verifying only reads and takes no lock. With [verify] repair = true, problems found are repaired at once
    from another store. Exit code 7 while problems remain, 8 when a store cannot be read.
    """
    config = app.load_config()
    if without_key:
        return copies.verify_sealed(config, store_name)
    return copies.verify(config, store_name, budget=parse_budget(budget), all=everything,
                         progress=progress_for(as_json))


@click.command("repair", epilog="""\b
Examples:
  rtvault repair                          # every store whose last verify found damage
  rtvault repair --store primary --json
  rtvault verify --all --store primary && rtvault repair --store primary
""")
@store_option
@reported
@click.pass_obj
def repair_command(app: AppContext, store_name: str | None, as_json: bool) -> copies.Repaired:
    """Replace each missing or corrupt file that verify found on a store (each store without --store) by a copy
    from another configured store, used only once it verifies there; the repaired file is verified again.

    Holds the store's writer lock. Exit code 7 when something could not be repaired (no good copy anywhere).
    """
    return copies.repair(app.load_config(), store_name, progress=progress_for(as_json))
