"""`rtvault dicom import`: DICOM media (folders, DICOMDIR, zip files) stored as the DICOM node stores."""

from __future__ import annotations

from pathlib import Path

import click

from rtvault.cli.dicom_group import dicom
from rtvault.cli.output import AppContext, progress_for, reported
from rtvault.jobs.dicom_import import DicomImport, import_dicom


@dicom.command("import", epilog="""\b
Examples:
  rtvault dicom import /media/cdrom                    # a CD with its DICOMDIR
  rtvault dicom import /media/usb/DICOM /tmp/plan.dcm
  rtvault dicom import ~/transfer/patient.zip --json

\b
Every file under each PATH is looked at (folders walked, symbolic links not followed; a DICOMDIR read and the
files it references looked for; zip files read in memory, never extracted) and each DICOM object of a class the
node stores is written to the store `[dicom] store` names (default the primary), byte for byte behind rtvault's
meta, once: importing the same medium again adds nothing. A file that is not DICOM, unreadable or refused is
named with why, and the exit code is 9. While `rtvault dicom serve` receives into the store, the import is
refused (exit 6): stop the node, or send the files to it with a DICOM sender.
""")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@reported
@click.pass_obj
def import_command(app: AppContext, paths: tuple[Path, ...], as_json: bool) -> DicomImport:
    """Import DICOM files from folders, DICOMDIR media (CDs, USB keys) and zip files into the vault."""
    return import_dicom(app.load_config(), list(paths), progress=progress_for(as_json))
