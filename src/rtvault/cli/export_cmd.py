"""`rtvault export`: a patient version written in another format, read in place from a store (no restore)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from rtvault.cli.backup_cmd import store_option
from rtvault.cli.output import AppContext, reported
from rtvault.config import Config
from rtvault.configured import open_store
from rtvault.errors import InputError
from rtvault.jobs.bundle import LANGUAGES, BundleExport, export_bundle
from rtvault.jobs.dicom_export import WHAT, DicomExport, export_dicom
from rtvault.store import Store

patient_option = click.option("--patient", "key", required=True, metavar="KEY",
                              help="Medical record number, PatientID or patient path.")


def version_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every export shares: which version (--snapshot or --from-archive), where to (--to), from
    which store (--store)."""
    for option in reversed((
            click.option("--snapshot", help="Snapshot id or unique prefix (default: the latest holding the patient)."),
            click.option("--from-archive", "from_archive", is_flag=False, flag_value="", default=None,
                         metavar="[ARCHIVE_ID]",
                         help="Export from an archive (the newest holding the patient, or the one given)."),
            click.option("--to", "to", required=True, type=click.Path(file_okay=False),
                         help="A new or empty directory."),
            store_option)):
        command = option(command)
    return command


def _opened(app: AppContext, snapshot: str | None, from_archive: str | None,
            store_name: str | None) -> tuple[Config, Store]:
    """The configuration and the store an export reads, once the version asked is one."""
    if snapshot and from_archive is not None:
        raise InputError("--snapshot and --from-archive choose two different versions: give one of them")
    config = app.load_config()
    return config, open_store(config, store_name)


@click.group("export")
def export() -> None:
    """Export a patient version, read straight from a snapshot or an archive, in another format."""


@export.command("dicom", epilog="""\b
Examples:
  rtvault export dicom --patient 2021993744 --to /tmp/dicom            # the latest snapshot, every plan
  rtvault export dicom --patient 2021993744 --plan "ORL 70Gy/35F" --to /tmp/dicom
  rtvault export dicom --patient 2021993744 --plan 1 --snapshot 20261124T0300 --to /tmp/dicom
  rtvault export dicom --patient 2021993744 --from-archive --to /tmp/dicom      # the newest archive holding it
  rtvault export dicom --patient Institution_1/Mount_0/Patient_7 --from-archive 3f2a9c --to /tmp/dicom --json
  rtvault export dicom --patient 2021993744 --what pinnacle --to /tmp/dicom      # without the received objects
  rtvault export dicom --patient CT-000123 --what received --to /tmp/dicom       # what the DICOM node received

\b
Writes CT (one file per slice), an RTSTRUCT per plan, RTPLAN and RTDOSE per trial and a DICOMDIR under --to
(new or empty), the same files byte for byte each time the same version is exported; with --what all (the
default) or received, also the objects the DICOM node received (or `dicom import` stored) for the patient, byte
for byte as stored, under the same DICOMDIR. A patient the node alone knows is exported by its DICOM PatientID.
What cannot be exported (an image set without voxels, a beam without its dose file, a received object not
sealed yet) is named, the rest is written, and the exit code is 9.
""")
@patient_option
@click.option("--plan", "plan", metavar="NAME|ID", help="Only this plan (its name or its id K of Plan_K) and the "
              "image sets it uses; default: every plan and image set.")
@click.option("--what", type=click.Choice(WHAT), default="all", show_default=True,
              help="The Pinnacle version, the objects the DICOM node received for the patient, or both.")
@version_options
@reported
@click.pass_obj
def dicom_command(app: AppContext, key: str, plan: str | None, what: str, snapshot: str | None,
                  from_archive: str | None, to: str, store_name: str | None, as_json: bool) -> DicomExport:
    """Export one patient version as DICOM-RT (CT, RTSTRUCT, RTPLAN, RTDOSE and a DICOMDIR), read in place from
    a snapshot or an archive: no restore needed."""
    config, store = _opened(app, snapshot, from_archive, store_name)
    return export_dicom(config, store, key, Path(to), plan=plan, snapshot=snapshot,
                        archive_id=from_archive, what=what)


@export.command("bundle", epilog="""\b
Examples:
  rtvault export bundle --patient 2021993744 --to /media/usb/garnier          # the latest snapshot, in French
  rtvault export bundle --patient 2021993744 --lang en --to /tmp/transfer
  rtvault export bundle --patient 2021993744 --snapshot 20261124T0300 --to /tmp/garnier
  rtvault export bundle --patient Institution_1/Mount_0/Patient_7 --from-archive --to /tmp/garnier --json

\b
Writes under --to (new or empty): DICOM/ (the files of `export dicom`, every plan, with their DICOMDIR),
summary.pdf (identity, plans, prescriptions, beams with MU, a DVH table per ROI, annotated slices) and
README.txt (what the bundle is, how to open it, the UIDs rule, who produced it from which version). The same
version gives the same files. What cannot be exported or drawn is named, the rest is written, and the exit code
is 9.
""")
@patient_option
@click.option("--lang", type=click.Choice(LANGUAGES), default="fr", show_default=True,
              help="Language of the summary and the README.")
@version_options
@reported
@click.pass_obj
def bundle_command(app: AppContext, key: str, lang: str, snapshot: str | None, from_archive: str | None, to: str,
                   store_name: str | None, as_json: bool) -> BundleExport:
    """The patient access bundle, for the patient's right of access or a transfer to another centre: the DICOM-RT
    files, a PDF summary and a README, read in place from a snapshot or an archive."""
    config, store = _opened(app, snapshot, from_archive, store_name)
    return export_bundle(config, store, key, Path(to), lang=lang, snapshot=snapshot,
                         archive_id=from_archive)
