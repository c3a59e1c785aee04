"""`rtvault check`, `rtvault forget`, `rtvault prune` and `rtvault migrate`."""

from __future__ import annotations

import click

from rtvault.cli.backup_cmd import store_option
from rtvault.cli.output import AppContext, progress_for, reported
from rtvault.configured import open_store
from rtvault.jobs.maintenance import Checked, Forgotten, Pruned, check_store, forget, prune
from rtvault.jobs.migrate import Migrated, migrate_stores


@click.command("check", epilog="""\b
Examples:
  rtvault check
  rtvault check --read-data --json     # re-read and re-hash every stored object
""")
@click.option("--read-data", is_flag=True, help="Read back and re-hash every stored object.")
@store_option
@reported
@click.pass_obj
def check_command(app: AppContext, read_data: bool, store_name: str | None, as_json: bool) -> Checked:
    """Verify the store: every snapshot's trees and objects, every archive's files and every object a DICOM receipt
    names exist (and, with --read-data, are intact).

    Exit code 0 only when the store is healthy, 7 otherwise, with every problem listed.
    """
    report = check_store(open_store(app.load_config(), store_name), read_data=read_data,
                         progress=progress_for(as_json))
    return Checked(report, read_data)


@click.command("forget", epilog="""\b
Examples:
  rtvault forget --dry-run
  rtvault forget && rtvault prune
""")
@click.option("--dry-run", is_flag=True, help="Only say which snapshots would be forgotten.")
@store_option
@reported
@click.pass_obj
def forget_command(app: AppContext, dry_run: bool, store_name: str | None, as_json: bool) -> Forgotten:
    """Forget the snapshots that no [retention] rule keeps (their data goes at the next prune)."""
    config = app.load_config()
    return forget(config, open_store(config, store_name, write=True), dry_run=dry_run)


@click.command("prune", epilog="""\b
Examples:
  rtvault prune --dry-run
  rtvault prune --json
""")
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@store_option
@reported
@click.pass_obj
def prune_command(app: AppContext, dry_run: bool, store_name: str | None, as_json: bool) -> Pruned:
    """Delete stored data that no snapshot references any more (crash-safe)."""
    config = app.load_config()
    return prune(config, open_store(config, store_name, write=True), dry_run=dry_run)


@click.command("migrate", epilog="""\b
Examples:
  rtvault migrate                   # every configured store, one after the other
  rtvault migrate --store offsite --json
""")
@click.option("--store", "store_name", metavar="NAME", help="Only this store (default: every configured store).")
@reported
@click.pass_obj
def migrate_command(app: AppContext, store_name: str | None, as_json: bool) -> Migrated:
    """Bring version 1 stores to store format 2 (small objects and trees in packs), in place.

    Safe to interrupt and run again. Every object and tree is checked against its name as it is packed;
    a damaged one is left as it is and named (exit 9: heal it with `rtvault verify --all` then `rtvault repair`).
    """
    return migrate_stores(app.load_config(), store_name, progress_for(as_json))
