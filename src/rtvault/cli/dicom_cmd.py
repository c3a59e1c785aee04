"""`rtvault dicom`: the DICOM node (`serve`), the import of DICOM media (`import`) and the test kit for peers
(`echo`, `send`, `find`, `move`, `check`). The group is in `dicom_group.py`; each subcommand lives in a module of
its own, which adds it to the group (`from rtvault.cli.dicom_group import dicom`) when `dicom_subcommands.py`
imports it."""

from __future__ import annotations

from rtvault.cli import dicom_subcommands  # noqa: F401 - the subcommands' modules, each adding its commands
from rtvault.cli.dicom_group import dicom

__all__ = ["dicom"]
