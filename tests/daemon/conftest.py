"""The daemon's tests share one small synthetic database (two patients), made once."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtvault.demo import generate_database


@pytest.fixture(scope="session")
def small_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("daemon-db") / "db"
    generate_database(out, patients=2, seed=12, image_mb=0.1)
    return out
