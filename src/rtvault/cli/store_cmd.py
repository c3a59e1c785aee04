"""`rtvault check`, `rtvault forget` and `rtvault prune`."""

from __future__ import annotations

import click

from rtvault.cli.backup_cmd import store_option
from rtvault.cli.output import AppContext, echo, emit_json, json_option, progress_for, update_catalog
from rtvault.errors import CheckFailed, ExitCode
from rtvault.jobs.maintenance import check_store, forget, prune
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
