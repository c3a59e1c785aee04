"""`rtvault volume init|sync|verify|list`: archives copied to removable disks with PAR2 recovery data."""

from __future__ import annotations

from pathlib import Path

import click

from rtvault.cli.backup_cmd import store_option
from rtvault.cli.output import AppContext, echo, progress_for, reported
from rtvault.config import Config
from rtvault.copies.volumes import SyncReport, VerifyReport, init_volume, list_volumes, sync_volume, verify_volume
from rtvault.jobs.destruction import complete_quietly
from rtvault.report import Plain

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
@reported
@click.pass_obj
def init_command(app: AppContext, path: Path, label: str, as_json: bool) -> Plain:
    """Prepare the mounted disk at PATH (empty, or already this volume) and record it in the catalog."""
    made = init_volume(app.load_config(), path, label)
    return Plain.of(made.to_json(), f"volume {made.label} ready at {made.path} (UUID {made.uuid}, "
                                    f"{made.archives} archive(s))")


@volume.command("sync", epilog="""\b
Examples:
  rtvault volume sync archives-2025-a
  rtvault volume sync archives-2025-a --store secondary --json
  rtvault volume sync archives-2025-a --path /media/other-mount-point
""")
@click.argument("name")
@store_option
@path_option
@reported
@click.pass_obj
def sync_command(app: AppContext, name: str, store_name: str | None, path: Path | None,
                 as_json: bool) -> SyncReport:
    """Copy to the volume NAME every archive of the store (the primary by default) that it lacks.

    Each archive file is copied byte for byte and checked against its SHA-256, with its index, checksums and
    PAR2 recovery data; an interrupted sync is redone from the archive it stopped in. Exit code 8 when the disk
    is not mounted, 7 when an archive could not be copied (damaged in the store, disk full). An archive whose
    legal destruction is pending on this disk (`archive delete`) is removed first, and never copied again.
    """
    config = app.load_config()
    report = sync_volume(config, name, store=store_name, path=path, progress=progress_for(as_json))
    _certify(config, report.destroyed)
    return report


def _certify(config: Config, destroyed: list[str]) -> None:
    """Copies pending destruction removed from the disk: the certificates that became complete get their record."""
    if destroyed and (problem := complete_quietly(config)):
        echo(f"rtvault: warning: {problem}", err=True)


@volume.command("verify", epilog="""\b
Examples:
  rtvault volume verify archives-2025-a
  rtvault volume verify archives-2025-a --path /media/usb --json
""")
@click.argument("name")
@path_option
@reported
@click.pass_obj
def verify_command(app: AppContext, name: str, path: Path | None, as_json: bool) -> VerifyReport:
    """Re-read every archive on the volume NAME; repair from the PAR2 recovery data what does not match.

    Each archive is reported ok, repaired or unrepairable; an unrepairable one is set aside in damaged/ and
    the next `rtvault volume sync` copies it again. Exit code 7 when something could not be repaired, 8 when
    the disk is not mounted. An archive whose legal destruction is pending on this disk is removed first.
    """
    config = app.load_config()
    report = verify_volume(config, name, path=path, progress=progress_for(as_json))
    _certify(config, report.destroyed)
    return report


@volume.command("list", epilog="""\b
Examples:
  rtvault volume list
  rtvault volume list --json | jq '.[] | select(.mounted)'
""")
@reported
@click.pass_obj
def list_command(app: AppContext, as_json: bool) -> Plain:
    """Every volume: label, UUID, where it was last seen, mounted or not, archives, last verified."""
    found = list_volumes(app.load_config())
    lines = [] if found else ["no volume yet: see `rtvault volume init`"]
    for v in found:
        state = "mounted" if v["mounted"] else "not mounted"
        lines.append(f"{v['label']:<20} {v['uuid']}  {v['archives']:>5} archive(s)  {state} at {v['path']}  "
                     f"last seen {v['last_seen'] or 'never'}, last verified {v['last_verified'] or 'never'}")
    return Plain.of(found, *lines)
