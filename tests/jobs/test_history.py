"""Choosing a patient's version by time: what the user typed after `--at` is input, never the store's fault."""

from __future__ import annotations

from pathlib import Path

from rtvault.errors import ExitCode


def test_an_unreadable_at_is_an_input_error(vault, tmp_path: Path) -> None:
    vault.backup()
    patient = vault.manifests()[-1].patients[0].path
    for typed in ("yesterday", "2026-13-01", "2026-11-23 25:00"):
        done = vault.cli("restore", "--patient", patient, "--to", str(tmp_path / "out"), "--at", typed,
                         expect=ExitCode.INPUT)
        assert "unreadable date and time" in done.stderr and typed in done.stderr
    assert not (tmp_path / "out").exists()
    vault.cli("restore", "--patient", patient, "--to", str(tmp_path / "out"), "--at", "2100-01-01")
