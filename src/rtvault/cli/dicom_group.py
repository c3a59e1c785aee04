"""The `rtvault dicom` click group alone, so that each subcommand's module can add its commands to it without an
import cycle (`dicom_cmd` imports the group and then the subcommands' modules, which import the group from here)."""

from __future__ import annotations

import click


@click.group("dicom")
def dicom() -> None:
    """The DICOM node: receive, store, query and retrieve DICOM objects; import media; test peers."""
