"""`rtvault dicom`: the DICOM node (`serve`), the import of DICOM media (`import`) and the test kit for peers
(`echo`, `send`, `find`, `move`, `check`). Each subcommand lives in a module of its own, which adds it to this
group when imported below."""

from __future__ import annotations

import click


@click.group("dicom")
def dicom() -> None:
    """The DICOM node: receive, store, query and retrieve DICOM objects; import media; test peers."""


# The subcommands' modules, each decorating its commands with @dicom.command (imported last: they import `dicom`).
from rtvault.cli import dicom_subcommands  # noqa: E402,F401
