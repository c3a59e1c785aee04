"""`rtvault dicom`: the DICOM node (`serve`), the import of DICOM media (`import`) and the test kit for peers
(`echo`, `send`, `find`, `move`, `check`). Each subcommand lives in a module of its own, which adds it to this
group when imported; `dicom_subcommands.py` imports them all and is what the CLI loads (imported from here, they
would make an import cycle: tests/test_layers.py)."""

from __future__ import annotations

import click


@click.group("dicom")
def dicom() -> None:
    """The DICOM node: receive, store, query and retrieve DICOM objects; import media; test peers."""

