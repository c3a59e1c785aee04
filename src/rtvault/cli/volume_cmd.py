"""`rtvault volume init|sync|verify|list`: archives copied to removable disks with PAR2 recovery data."""

from __future__ import annotations

from pathlib import Path

import click

from rtvault.cli.backup_cmd import store_option
from rtvault.cli.output import AppContext, echo, emit_json, json_option, progress_for
from rtvault.copies.volumes import SyncReport, VerifyReport, init_volume, list_volumes, sync_volume, verify_volume
from rtvault.errors import ExitCode

path_option = click.option("--path", "path", type=click.Path(file_okay=False, path_type=Path),
                           help="Where the disk is mounted now (default: where it was last seen).")


@click.group("volume", epilog="""\b
Examples:
  rtvault volume init /media/usb-archives-1 --label archives-2025-a
  rtvault volume sync archives-2025-a
  rtvault volume verify archives-2025-a
  rtvault volume list
""")
def volume() -> None:
    """Removable disks holding a copy of every archive, as plain tar files with PAR2 recovery data (10 %).

    A disk that is not mounted is reported (exit code 8 for sync and verify), never read as empty.
    """


@volume.command("init", epilog="""\b
Examples:
  rtvault volume init /media/usb-archives-1 --label archives-2025-a
  rtvault volume init /mnt/disk2 --label offsite-b --json
""")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option("--label", required=True, metavar="NAME", help="The disk's name (letters, digits, '.', '_', '-').")
@json_option
@click.pass_obj
def init_command(app: AppContext, path: Path, label: str, as_json: bool) -> None:
    """Prepare the mounted disk at PATH (empty, or already this volume) and record it in the catalog."""
    made = init_volume(app.load_config(), path, label)
    if as_json:
        emit_json(made.to_json())
    else:
        echo(f"volume {made.label} ready at {made.path} (UUID {made.uuid}, {made.archives} archive(s))")


@volume.command("sync", epilog="""\b
Examples:
  rtvault volume sync archives-2025-a
  rtvault volume sync archives-2025-a --store secondary --json
  rtvault volume sync archives-2025-a --path /media/other-mount-point
""")
@click.argument("name")
@store_option
@path_option
@json_option
@click.pass_obj
def sync_command(app: AppContext, name: str, store_name: str | None, path: Path | None, as_json: bool) -> None:
    """Copy to the volume NAME every archive of the store (the primary by default) that it lacks.

    Each archive file is copied byte for byte and checked against its SHA-256, with its index, checksums and
    PAR2 recovery data; an interrupted sync is redone from the archive it stopped in. Exit code 8 when the disk
    is not mounted, 7 when an archive could not be copied (damaged in the store, disk full).
    """
    report = sync_volume(app.load_config(), name, store=store_name, path=path, progress=progress_for(as_json))
    if as_json:
        emit_json(report.to_json())
    else:
        _echo_sync(report)
    for problem in report.problems:
        echo(f"rtvault: problem: {problem}", err=True)
    if report.problems:
        click.get_current_context().exit(int(ExitCode.CHECK_FAILED))


def _echo_sync(report: SyncReport) -> None:
    size = sum(c.bytes for c in report.copied) / 1e6
    echo(f"{report.volume} ({report.path}): {len(report.copied)} archive(s) copied from {report.store} "
         f"({size:.1f} MB), {report.already} already there, in {report.duration_s:.1f} s")


@volume.command("verify", epilog="""\b
Examples:
  rtvault volume verify archives-2025-a
  rtvault volume verify archives-2025-a --path /media/usb --json
""")
@click.argument("name")
@path_option
@json_option
@click.pass_obj
def verify_command(app: AppContext, name: str, path: Path | None, as_json: bool) -> None:
    """Re-read every archive on the volume NAME; repair from the PAR2 recovery data what does not match.

    Each archive is reported ok, repaired or unrepairable; an unrepairable one is set aside in damaged/ and
    the next `rtvault volume sync` copies it again. Exit code 7 when something could not be repaired, 8 when
    the disk is not mounted.
    """
    report = verify_volume(app.load_config(), name, path=path, progress=progress_for(as_json))
    if as_json:
        emit_json(report.to_json())
    else:
        _echo_verify(report)
    if not report.healthy:
        click.get_current_context().exit(int(ExitCode.CHECK_FAILED))


def _echo_verify(report: VerifyReport) -> None:
    echo(f"{report.volume} ({report.path}): {report.count('ok')} ok, {report.count('repaired')} repaired, "
         f"{report.count('unrepairable')} unrepairable, in {report.duration_s:.1f} s")
    for checked in report.archives:
        if checked.outcome != "ok" or checked.detail:
            echo(f"  {checked.outcome:<12} {checked.archive[:12]} {checked.detail}")


@volume.command("list", epilog="""\b
Examples:
  rtvault volume list
  rtvault volume list --json | jq '.[] | select(.mounted)'
""")
@json_option
@click.pass_obj
def list_command(app: AppContext, as_json: bool) -> None:
    """Every volume: label, UUID, where it was last seen, mounted or not, archives, last verified."""
    found = list_volumes(app.load_config())
    if as_json:
        emit_json(found)
        return
    if not found:
        echo("no volume yet: see `rtvault volume init`")
    for v in found:
        state = "mounted" if v["mounted"] else "not mounted"
        echo(f"{v['label']:<20} {v['uuid']}  {v['archives']:>5} archive(s)  {state} at {v['path']}  "
             f"last seen {v['last_seen'] or 'never'}, last verified {v['last_verified'] or 'never'}")
