"""`rtvault snapshots`, `rtvault diff` and `rtvault restore`."""

from __future__ import annotations

from pathlib import Path

import click

from rtvault.cli.backup_cmd import store_option
from rtvault.cli.output import AppContext, emit_json, json_option, progress_for
from rtvault.errors import ExitCode, InputError, PartialResult
from rtvault.jobs import history
from rtvault.jobs.archives import restore_from_archive
from rtvault.jobs.restore import restore_all, restore_patient
from rtvault.jobs.stores import open_store


@click.command("snapshots", epilog="""\b
Examples:
  rtvault snapshots
  rtvault snapshots --patient 2021993744          # every version of one patient (MRN)
  rtvault snapshots --patient Institution_1/Mount_0/Patient_7 --json
""")
@click.option("--patient", "key", help="Medical record number, PatientID or patient path.")
@store_option
@json_option
@click.pass_obj
def snapshots_command(app: AppContext, key: str | None, store_name: str | None, as_json: bool) -> None:
    """List the snapshots of the store, or the versions of one patient."""
    store = open_store(app.load_config(), store_name)
    if key:
        found = history.versions(store, key)
        rows = [{"snapshot": v.snapshot, "time": v.time, "path": v.path, "files": v.entry["files"],
                 "bytes": v.entry["bytes"], "tree": v.tree} for v in found]
        if as_json:
            emit_json({"patient": history.versions(store, key)[-1].entry, "versions": rows})
            return
        who = found[-1].entry
        click.echo(f"{who['last_name']} {who['first_name']} (MRN {who['mrn']}, {found[-1].path}):")
        for row in rows:
            click.echo(f"  {row['snapshot']}  {row['time']}  {row['files']} files  {row['bytes'] / 1e6:.1f} MB")
        return
    infos = store.snapshots()
    if as_json:
        emit_json({"snapshots": [info.__dict__ for info in infos]})
        return
    for info in infos:
        click.echo(f"{info.id}  {info.time}  {info.patients} patients  {info.files} files  "
                   f"{info.bytes / 1e6:.1f} MB")
    click.echo(f"{len(infos)} snapshot(s) in {store.location}")


@click.command("diff", epilog="""\b
Examples:
  rtvault diff 20261123T180000Z latest
  rtvault diff latest~1 latest --json
""")
@click.argument("first")
@click.argument("second")
@store_option
@json_option
@click.pass_obj
def diff_command(app: AppContext, first: str, second: str, store_name: str | None, as_json: bool) -> None:
    """Patients added, removed and changed between two snapshots (ids, unique prefixes, latest, latest~N)."""
    result = history.diff(open_store(app.load_config(), store_name), first, second)
    if as_json:
        emit_json(result)
        return
    click.echo(f"from {result['from']} to {result['to']}:")
    for who in result["added"]:
        click.echo(f"  + {who['path']}  {who['last_name']} {who['first_name']} (MRN {who['mrn']})")
    for who in result["removed"]:
        click.echo(f"  - {who['path']}  {who['last_name']} {who['first_name']} (MRN {who['mrn']})")
    for change in result["changed"]:
        counts = ", ".join(f"{len(change[k])} {k.split('_')[1]}" for k in ("files_added", "files_removed",
                                                                            "files_changed") if change[k])
        click.echo(f"  ~ {change['path']}  ({counts})")


@click.command("restore", epilog="""\b
Examples:
  rtvault restore --patient 2021993744 --to /tmp/restored
  rtvault restore --patient Institution_1/Mount_0/Patient_7 --to /tmp/r --at "2026-11-23 18:00"
  rtvault restore --all --to /mnt/new-pinnacle/NewPatients --snapshot 20261124T0300
  rtvault restore --patient 2021993744 --to /tmp/r --from-archive          # the newest archive holding it
  rtvault restore --patient 2021993744 --to /tmp/r --from-archive 3f2a9c
  rtvault restore --patient 2021993744 --to /tmp/r --from-archive 3f2a9c --unverified
""")
@click.option("--patient", "key", help="Medical record number, PatientID or patient path.")
@click.option("--all", "everything", is_flag=True, help="The whole database (disaster recovery).")
@click.option("--to", "destination", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to restore under; the patient lands at its relative path.")
@click.option("--snapshot", help="Snapshot id or unique prefix (default: the latest holding the patient).")
@click.option("--at", "at", help="Date and time: the newest version at or before it.")
@click.option("--force", is_flag=True, help="Overwrite files that already exist under --to.")
@click.option("--from-archive", "from_archive", is_flag=False, flag_value="", default=None, metavar="[ARCHIVE_ID]",
              help="Restore from an archive (the newest holding the patient, or the one given).")
@click.option("--unverified", is_flag=True,
              help="With --from-archive: also write the members of a gzip archive whose checksum failed (each is "
                   "named; any one of them may hold a wrong byte).")
@store_option
@json_option
@click.pass_obj
def restore_command(app: AppContext, key: str | None, everything: bool, destination: Path, snapshot: str | None,
                    at: str | None, force: bool, from_archive: str | None, unverified: bool, store_name: str | None,
                    as_json: bool) -> None:
    """Restore one patient (--patient KEY) or everything (--all), byte-identical, under --to."""
    if bool(key) == everything:
        raise InputError("give exactly one of --patient KEY or --all")
    if everything and at:
        raise InputError("--at goes with --patient; with --all give --snapshot")
    if unverified and from_archive is None:
        raise InputError("--unverified goes with --from-archive: snapshots hold only verified content")
    store = open_store(app.load_config(), store_name)
    progress = progress_for(as_json)
    if from_archive is not None:
        if everything or snapshot or at:
            raise InputError("--from-archive goes with --patient only (not --all, --snapshot or --at)")
        summary = restore_from_archive(store, key or "", destination, archive_id=from_archive or None, force=force,
                                       unverified=unverified, progress=progress)
    elif everything:
        summary = restore_all(store, destination, snapshot=snapshot or "latest", force=force, progress=progress)
    else:
        summary = restore_patient(store, key or "", destination, snapshot=snapshot, at=at, force=force,
                                  progress=progress)
    if as_json:
        emit_json(summary.to_json())
        if summary.incomplete:
            click.get_current_context().exit(int(ExitCode.PARTIAL))
        return
    source = summary.snapshot if summary.snapshot.startswith("archive") else f"snapshot {summary.snapshot}"
    if summary.files:
        click.echo(f"restored {len(summary.patients)} patient(s), {summary.files} files, "
                   f"{summary.bytes / 1e6:.1f} MB from {source} into {summary.to} in {summary.duration_s:.1f} s")
    else:
        click.echo(f"restored nothing from {source}: no file of {', '.join(summary.patients)} can be written")
    for skipped in summary.skipped:
        click.echo(f"  not written: {skipped}", err=True)
    for name in summary.unverified:
        click.echo(f"  written UNVERIFIED (archive checksum failed, may hold a wrong byte): {name}", err=True)
    for missing in summary.incomplete:
        click.echo(f"  NOT RESTORED: {missing}", err=True)
    if summary.incomplete:
        what = "nothing was written" if not summary.files else "the rest was written"
        raise PartialResult(f"{len(summary.incomplete)} file(s) of {', '.join(summary.patients)} could not be "
                            f"restored (named above); {what}")
