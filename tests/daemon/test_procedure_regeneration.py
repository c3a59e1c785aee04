"""The daemon writes the printed procedures again into [continuity] procedure_dir when what they say changed (the
configuration, the last drill), and not otherwise."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kit.config import add_tables
from kit.daemon import make_site
from rtvault.jobs.journal import Journal, run_record
from rtvault.jobs.monitor import procedures

pytestmark = pytest.mark.slow


def test_procedures_are_written_again_only_when_something_changed(tmp_path: Path, small_db: Path) -> None:
    site = make_site(tmp_path, small_db)
    add_tables(site.config_path, continuity={"procedure_dir": tmp_path / "procedures"})
    regenerate = procedures(site.config)
    now = datetime.now(UTC)
    assert regenerate(now) == [f"procedures: written again into {tmp_path / 'procedures'} (the configuration or "
                               "the last drill changed)"]
    french, english = tmp_path / "procedures" / "procedures-fr.pdf", tmp_path / "procedures" / "procedures-en.pdf"
    assert french.read_bytes().startswith(b"%PDF") and english.read_bytes().startswith(b"%PDF")
    written = french.stat().st_mtime_ns
    assert regenerate(now) == []  # nothing changed: nothing written
    assert french.stat().st_mtime_ns == written
    Journal(site.config).append(run_record("drill", "schedule", now, now, "ok", "", {"drills": []}))
    assert regenerate(now) != [] and french.stat().st_mtime_ns != written  # a new drill: its figures printed
