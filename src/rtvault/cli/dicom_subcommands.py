"""The modules of `rtvault dicom`'s subcommands, one import each (a module adds its commands to the group)."""

from __future__ import annotations

from rtvault.cli import dicom_serve_cmd  # noqa: F401
