"""`rtvault check`, `rtvault forget`, `rtvault prune` and `rtvault migrate`."""

from __future__ import annotations

import click

from rtvault.cli.backup_cmd import store_option
from rtvault.cli.output import AppContext, echo, emit_json, json_option, progress_for, update_catalog
from rtvault.errors import CheckFailed, ExitCode, PartialResult
from rtvault.jobs.maintenance import check_store, forget, prune
from rtvault.jobs.migrate import migrate_stores
from rtvault.jobs.stores import open_store


@click.command("check", epilog="""\b
Examples:
  rtvault check
  rtvault check --read-data --json     # re-read and re-hash every stored object
""")
@click.option("--read-data", is_flag=True, help="Read back and re-hash every stored object.")
@store_option
@json_option
@click.pass_obj
def check_command(app: AppContext, read_data: bool, store_name: str | None, as_json: bool) -> None:
    """Verify the store: every snapshot's trees and objects exist (and, with --read-data, are intact).

    Exit code 0 only when the store is healthy, 7 otherwise, with every problem listed.
    """
    report = check_store(open_store(app.load_config(), store_name), read_data=read_data,
                         progress=progress_for(as_json))
    if as_json:
        emit_json(report.to_json())
    else:
        echo(f"{report.snapshots} snapshots, {report.archives} archives, {report.trees} trees, "
                   f"{report.objects_referenced} objects "
                   f"referenced, {report.objects_stored} stored ({report.unreferenced} unreferenced)"
                   + (f", {report.objects_read} read back ({report.bytes_read / 1e6:.1f} MB)" if read_data else ""))
        if report.without_integrity:
            echo(f"  note: {len(report.without_integrity)} manifest(s) or archive index(es) written before "
                       "integrity hashes have none, so a change to them cannot be detected: "
                       + ", ".join(report.without_integrity))
        for problem in report.problems:
            echo(f"  problem: {problem}")
    if not report.healthy and as_json:  # the report is the one JSON document on stdout: no error object after it
        click.get_current_context().exit(int(ExitCode.CHECK_FAILED))
    if not report.healthy:
        raise CheckFailed(f"the store has {len(report.problems)} problem(s)")
    if not as_json:
        echo("store is healthy")


@click.command("forget", epilog="""\b
Examples:
  rtvault forget --dry-run
  rtvault forget && rtvault prune
""")
@click.option("--dry-run", is_flag=True, help="Only say which snapshots would be forgotten.")
@store_option
@json_option
@click.pass_obj
def forget_command(app: AppContext, dry_run: bool, store_name: str | None, as_json: bool) -> None:
    """Forget the snapshots that no [retention] rule keeps (their data goes at the next prune)."""
    config = app.load_config()
    result = forget(config, open_store(config, store_name), dry_run=dry_run)
    if not dry_run:
        update_catalog(config)
    if as_json:
        emit_json(result)
        return
    for kept in result["keep"]:
        echo(f"keep    {kept['id']}  ({', '.join(kept['reasons'])})")
    for gone in result["forget"]:
        echo(f"{'would forget' if dry_run else 'forget'}  {gone}")


@click.command("prune", epilog="""\b
Examples:
  rtvault prune --dry-run
  rtvault prune --json
""")
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@store_option
@json_option
@click.pass_obj
def prune_command(app: AppContext, dry_run: bool, store_name: str | None, as_json: bool) -> None:
    """Delete stored data that no snapshot references any more (crash-safe)."""
    config = app.load_config()
    result = prune(config, open_store(config, store_name), dry_run=dry_run)
    if not dry_run:
        update_catalog(config)
    if as_json:
        emit_json(result)
        return
    verb = "would delete" if dry_run else "deleted"
    echo(f"{verb} {result['deleted']} unreferenced files, {result['bytes_freed'] / 1e6:.1f} MB")


@click.command("migrate", epilog="""\b
Examples:
  rtvault migrate                   # every configured store, one after the other
  rtvault migrate --store offsite --json
""")
@click.option("--store", "store_name", metavar="NAME", help="Only this store (default: every configured store).")
@json_option
@click.pass_obj
def migrate_command(app: AppContext, store_name: str | None, as_json: bool) -> None:
    """Bring version 1 stores to store format 2 (small objects and trees in packs), in place.

    Safe to interrupt and run again. Every object and tree is checked against its name as it is packed;
    a damaged one is left as it is and named (exit 9: heal it with `rtvault verify --all` then `rtvault repair`).
    """
    reports = migrate_stores(app.load_config(), store_name, progress_for(as_json))
    if as_json:
        emit_json({"stores": [r.to_json() for r in reports]})
    else:
        for r in reports:
            echo(f"store {r.store}: version {r.from_version} -> {r.to_version}: {r.objects_packed} objects and "
                 f"{r.trees_packed} trees packed ({r.bytes_packed / 1e6:.1f} MB), {r.kept_loose} large objects "
                 f"kept in their own files, {r.loose_removed} loose files removed in {r.duration_s:.1f} s")
            for problem in r.damaged:
                echo(f"  damaged, left as it was: {problem}")
    damaged = [p for r in reports for p in r.damaged]
    if damaged and as_json:  # the report is the one JSON document on stdout
        click.get_current_context().exit(int(ExitCode.PARTIAL))
    if damaged:
        raise PartialResult(f"{len(damaged)} damaged object(s) or tree(s) were not packed: run `rtvault verify "
                            "--all`, then `rtvault repair`, then `rtvault migrate` again")
