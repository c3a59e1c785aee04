"""`rtvault dicom check`'s test object is a valid DICOM object: a strict peer (or dciodvfy) finds nothing wrong in
it, whatever rtvault's AE title (up to its 16 characters)."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path

from kit.dicom import dciodvfy_errors
from rtvault.jobs.dicom_check import synthetic_object


def test_the_check_object_passes_dciodvfy_with_the_longest_ae_title(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pydicom warns of a value too long for its VR
        dataset = synthetic_object("A" * 16, datetime(2026, 12, 7, 9, 30, tzinfo=UTC))
        dataset.save_as(tmp_path / "check.dcm", enforce_file_format=True)
    assert dciodvfy_errors(tmp_path / "check.dcm") == []
