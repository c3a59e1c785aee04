"""The modules of `rtvault dicom`'s subcommands, one import each (a module adds its commands to the group with
@dicom.command); the CLI loads the group from here (cli/__init__.py COMMANDS), so that it has them all."""

from __future__ import annotations

from rtvault.cli import dicom_serve_cmd  # noqa: F401
from rtvault.cli.dicom_cmd import dicom

__all__ = ["dicom"]
