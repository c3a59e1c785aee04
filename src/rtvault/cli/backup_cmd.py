"""`rtvault init`, `rtvault backup` and `rtvault snapshots`."""

from __future__ import annotations

import click

from rtvault.cli.output import AppContext, echo, emit_json, json_option, progress_for, update_catalog
from rtvault.errors import ExitCode
from rtvault.jobs.backup import run_backup
from rtvault.jobs.stores import init_stores, open_store

store_option = click.option("--store", "store_name", help="Store name from the configuration (default: the first).")


@click.command("init", epilog="""\b
Examples:
  rtvault init
  rtvault --config /etc/rtvault/rtvault.toml init --json
""")
@json_option
@click.pass_obj
def init_command(app: AppContext, as_json: bool) -> None:
    """Create the configured stores (does nothing for a store that already exists).

    Refuses a directory that holds anything other than an rtvault store.
    """
    done = init_stores(app.load_config())
    if as_json:
        emit_json({"stores": done})
        return
    for item in done:
        verb = "created" if item["created"] else "already initialised"
        echo(f"store {item['store']}: {item['path']} {verb}")


@click.command("backup", epilog="""\b
Examples:
  rtvault backup
  rtvault backup --json
  rtvault backup --allow-shrink     # after deleting many patients on purpose
""")
@click.option("--allow-shrink", is_flag=True, help="Back up even if the patient count dropped suspiciously.")
@store_option
@json_option
@click.pass_obj
def backup_command(app: AppContext, allow_shrink: bool, store_name: str | None, as_json: bool) -> None:
    """Take a snapshot of the Pinnacle database ([source.pinnacle] root) into the store.

    Incremental and deduplicated; refuses a missing, empty or suspiciously shrunk source (exit code 5).
    A patient, file or folder that cannot be read is named, its earlier copy kept, and the exit code is 9.
    Patients gone from Pinnacle are archived once the snapshot is saved; an archive that fails is named and the
    exit code is 9 (the next backup archives it).
    """
    config = app.load_config()
    summary = run_backup(config, open_store(config, store_name), allow_shrink=allow_shrink,
                         progress=progress_for(as_json))
    update_catalog(config)
    partial = ExitCode.PARTIAL if summary.incomplete or summary.not_archived else ExitCode.OK
    if as_json:
        emit_json(summary.to_json())
        click.get_current_context().exit(int(partial))
    echo(
        f"snapshot {summary.snapshot}: {summary.patients} patients, {summary.files_new} new, "
        f"{summary.files_changed} changed, {summary.files_unchanged} unchanged files; "
        f"{summary.bytes_read / 1e6:.1f} MB read, {summary.bytes_added / 1e6:.1f} MB added "
        f"in {summary.duration_s:.1f} s")
    if summary.archived:
        echo(f"archived {len(summary.archived)} patient(s) gone from Pinnacle (see `rtvault archive list`)")
    for warning in summary.warnings:
        echo(f"  warning: {warning}", err=True)
    if summary.incomplete:
        echo(f"rtvault: partial backup: {len(summary.incomplete)} patient(s) or folder(s) could not be read "
             f"entirely ({', '.join(summary.incomplete)}); what could not be read is named above, earlier copies "
             "were kept; give the rtvault user read access, then back up again", err=True)
    if summary.not_archived:
        echo(f"rtvault: snapshot {summary.snapshot} saved, but {len(summary.not_archived)} patient(s) gone from "
             f"Pinnacle could not be archived ({', '.join(summary.not_archived)}): the reason is named above; each "
             "stays in its last snapshot, which retention keeps, and the next backup or `rtvault archive sweep` "
             "archives it", err=True)
    click.get_current_context().exit(int(partial))
