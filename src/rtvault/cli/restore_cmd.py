"""`rtvault snapshots`, `rtvault diff` and `rtvault restore`."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from rtvault.cli.backup_cmd import store_option
from rtvault.cli.output import AppContext, echo, emit_json, json_option, progress_for
from rtvault.errors import ExitCode, InputError, PartialResult
from rtvault.events import Progress
from rtvault.jobs import history
from rtvault.jobs.archives import restore_from_archive
from rtvault.jobs.restore import RestoreIncomplete, RestoreSummary, restore_all, restore_patient
from rtvault.jobs.stores import open_store
from rtvault.store import Store
from rtvault.store.repository import SnapshotInfo


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
            emit_json({"patient": found[-1].entry, "versions": rows})
            return
        who = found[-1].entry
        echo(f"{who['last_name']} {who['first_name']} (MRN {who['mrn']}, {found[-1].path}):")
        for row in rows:
            echo(f"  {row['snapshot']}  {row['time']}  {row['files']} files  {row['bytes'] / 1e6:.1f} MB")
        return
    manifests, damaged = store.manifests_and_damage()
    infos = [SnapshotInfo.of(m) for m in manifests]
    if as_json:
        emit_json({"snapshots": [info.__dict__ for info in infos],
                   **({"damaged": [{"id": d, "error": why} for d, why in sorted(damaged.items())]} if damaged else {})})
        if damaged:
            click.get_current_context().exit(int(ExitCode.PARTIAL))
        return
    for info in infos:
        echo(f"{info.id}  {info.time}  {info.patients} patients  {info.files} files  "
             f"{info.bytes / 1e6:.1f} MB")
    echo(f"{len(infos)} snapshot(s) in {store.location}")
    for snapshot_id, why in sorted(damaged.items()):
        echo(f"  DAMAGED {snapshot_id}: {why}", err=True)
    if damaged:
        raise PartialResult(f"{len(damaged)} snapshot manifest(s) are damaged (named above): heal the store "
                            "(`rtvault verify --all`, then `rtvault repair`)")


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
    echo(f"from {result['from']} to {result['to']}:")
    for who in result["added"]:
        echo(f"  + {who['path']}  {who['last_name']} {who['first_name']} (MRN {who['mrn']})")
    for who in result["removed"]:
        echo(f"  - {who['path']}  {who['last_name']} {who['first_name']} (MRN {who['mrn']})")
    for change in result["changed"]:
        counts = ", ".join(f"{len(change[k])} {k.split('_')[1]}" for k in ("files_added", "files_removed",
                                                                            "files_changed") if change[k])
        echo(f"  ~ {change['path']}  ({counts})")


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
@click.option("--to", "to", required=True, type=click.Path(file_okay=False),
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
def restore_command(app: AppContext, key: str | None, everything: bool, to: str, snapshot: str | None,
                    at: str | None, force: bool, from_archive: str | None, unverified: bool, store_name: str | None,
                    as_json: bool) -> None:
    """Restore one patient (--patient KEY) or everything (--all), byte-identical, under --to.

    What a damaged store cannot give (a patient's tree, a file's content) is named with the reason and the
    commands that may help, everything else is restored, and the exit code is 9.
    """
    if bool(key) == everything:
        raise InputError("give exactly one of --patient KEY or --all")
    if everything and at:
        raise InputError("--at goes with --patient; with --all give --snapshot")
    if unverified and from_archive is None:
        raise InputError("--unverified goes with --from-archive: snapshots hold only verified content")
    if not to.strip():  # an unset shell variable must not mean the current directory
        raise InputError("--to is empty: give the directory to restore under")
    destination = Path(to)
    store = open_store(app.load_config(), store_name)
    progress = progress_for(as_json)
    try:
        summary = _restore(store, key, everything, destination, snapshot, at, force, from_archive, unverified,
                           progress)
    except RestoreIncomplete as incomplete:  # the others were restored: say so, name each failure, exit 9
        _render(incomplete.summary, as_json, _hints(incomplete.summary, store_name))
        if as_json:  # the summary is the one JSON document on stdout: no error object after it
            click.get_current_context().exit(int(incomplete.exit_code))
        raise
    _render(summary, as_json, [])
    lacking = summary.lacking()  # restored as backed up, but the backup could not read everything
    if (summary.incomplete or lacking) and as_json:  # the summary is the one JSON document on stdout
        click.get_current_context().exit(int(ExitCode.PARTIAL))
    if summary.incomplete:
        what = "nothing was written" if not summary.files else "the rest was written"
        raise PartialResult(f"{len(summary.incomplete)} file(s) of {', '.join(summary.patients)} could not be "
                            f"restored (named above); {what}")
    if lacking:
        raise PartialResult(f"the restored version(s) lack {len(lacking)} file(s) or folder(s) that the backup "
                            f"could not read ({', '.join(lacking[:3])}{' ...' if len(lacking) > 3 else ''}); "
                            "an older snapshot may hold them (`rtvault snapshots --patient ...`)")


def _restore(store: Store, key: str | None, everything: bool, destination: Path, snapshot: str | None,
             at: str | None, force: bool, from_archive: str | None, unverified: bool,
             progress: Progress) -> RestoreSummary:
    if from_archive is not None:
        if everything or snapshot or at:
            raise InputError("--from-archive goes with --patient only (not --all, --snapshot or --at)")
        return restore_from_archive(store, key or "", destination, archive_id=from_archive or None, force=force,
                                    unverified=unverified, progress=progress)
    if everything:
        return restore_all(store, destination, snapshot=snapshot or "latest", force=force, progress=progress)
    return restore_patient(store, key or "", destination, snapshot=snapshot, at=at, force=force, progress=progress)


def _hints(summary: RestoreSummary, store_name: str | None) -> list[str]:
    """The commands that may bring back what was not restored."""
    store = f" --store {shlex.quote(store_name)}" if store_name else ""
    hints = []
    for failure in summary.failed:
        if failure["older_snapshot"] and failure["patient"]:
            force = " --force" if failure["files_written"] else ""
            hints.append(f"rtvault restore --patient {shlex.quote(failure['patient'])} --snapshot "
                         f"{failure['older_snapshot']} --to {shlex.quote(summary.to)}{store}{force}   (an older "
                         "version, which may be whole)")
    hints.append(f"rtvault verify --all{store} && rtvault repair{store}   (heals damaged files from another store "
                 "holding good copies; then run this restore again with --force)")
    return hints


def _render(summary: RestoreSummary, as_json: bool, hints: list[str]) -> None:
    if as_json:
        emit_json({**summary.to_json(), **({"hints": hints} if summary.failed else {})})
        return
    source = summary.snapshot if summary.snapshot.startswith("archive") else f"snapshot {summary.snapshot}"
    if summary.files or not summary.incomplete:
        echo(f"restored {len(summary.patients)} patient(s), {summary.files} files, {summary.bytes / 1e6:.1f} MB "
             f"from {source} into {summary.to} in {summary.duration_s:.1f} s")
    else:
        echo(f"restored nothing from {source}: no file of {', '.join(summary.patients)} can be written")
    for skipped in summary.skipped:
        echo(f"  not written: {skipped}", err=True)
    for name in summary.unverified:
        echo(f"  written UNVERIFIED (archive checksum failed, may hold a wrong byte): {name}", err=True)
    for missing in summary.incomplete:
        echo(f"  NOT RESTORED: {missing}", err=True)
    for failure in summary.failed:
        who = failure["patient"] or "the root files (Institution)"
        if not failure["files_not_written"]:
            echo(f"NOT RESTORED {who}: {failure['reason']}", err=True)
            continue
        echo(f"INCOMPLETE {who}: {failure['files_written']} file(s) written, "
             f"{len(failure['files_not_written'])} not:", err=True)
        for file in failure["files_not_written"]:
            echo(f"    {file['name']}: {file['reason']}", err=True)
    for version in summary.unread_at_backup:
        for item in version["unreadable"]:
            where = f"{version['patient']}/{item['name']}".strip("/")
            echo(f"  unreadable at backup time: {where} ({item['error']}): " + (
                "an earlier copy was restored in its place" if item.get("carried_forward")
                else "not in this version"), err=True)
    if hints:
        echo("may help:", err=True)
        for hint in hints:
            echo(f"  {hint}", err=True)
