"""The modules of `rtvault dicom`'s subcommands, one import each (a module adds its commands to the group of
`dicom_group.py`)."""

from __future__ import annotations

from rtvault.cli import dicom_delete_cmd, dicom_import_cmd, dicom_kit_cmd, dicom_serve_cmd  # noqa: F401
