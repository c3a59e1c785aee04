"""Shared test fixtures: the real Pinnacle sample tree (tests/fixtures, MIT, from ../shared/fixtures)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "store"))
from seaweed import seaweed  # noqa: F401 - one SeaweedFS server for the whole session (tests/store/seaweed.py)

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = REPO / "tests" / "fixtures" / "pinnacle"


@pytest.fixture
def pinnacle_sample() -> Path:
    """The real Pinnacle 16 sample tree (synthetic identity); skipped when ../shared is absent."""
    root = SHARED_FIXTURES / "pinnacle_io-01"
    if not root.is_dir():
        pytest.skip("tests/fixtures/pinnacle is missing from this checkout")
    return root
