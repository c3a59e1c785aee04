"""Shared test fixtures: the real Pinnacle sample tree (tests/fixtures, MIT, from ../shared/fixtures)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "store"))
from seaweed import seaweed  # noqa: F401 - one SeaweedFS server for the whole session (tests/store/seaweed.py)

# tests/catalog/postgres.py (a PostgreSQL server of the tests' own), importable as `catalog_postgres` everywhere
_spec = importlib.util.spec_from_file_location("catalog_postgres", Path(__file__).parent / "catalog" / "postgres.py")
assert _spec and _spec.loader
sys.modules["catalog_postgres"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sys.modules["catalog_postgres"])

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = REPO / "tests" / "fixtures" / "pinnacle"


@pytest.fixture
def pinnacle_sample() -> Path:
    """The real Pinnacle 16 sample tree (synthetic identity), copied into tests/fixtures."""
    root = SHARED_FIXTURES / "pinnacle_io-01"
    if not root.is_dir():
        pytest.skip("tests/fixtures/pinnacle is missing from this checkout")
    return root


# The fast tier (`pytest -m "not slow"`, a few minutes) leaves out the modules whose tests start servers or many
# CLI processes, kill runs, mount file systems or fuzz: crash loops, S3 outages, the browser, the stories told
# through the CLI, fault injection. CI runs everything.
SLOW_MODULES = {
    "archive/test_archive_retention.py", "archive/test_damaged.py", "copies/test_replicate_crash.py",
    "copies/test_s3_faults.py", "copies/test_volumes.py", "e2e/test_archive_cli.py", "e2e/test_archive_faults.py",
    "e2e/test_attack2_findings.py", "e2e/test_attack_findings.py", "e2e/test_backup_cli.py",
    "e2e/test_copies_story.py", "e2e/test_crash.py", "e2e/test_store_faults.py",
    "e2e/test_unreadable_source.py", "e2e/test_user_cli.py", "e2e/test_web_browser.py", "pinnacle/test_fuzz.py",
    "store/test_crypto.py", "store/test_s3.py", "web/test_attack2_web_findings.py", "web/test_sign_in_burst.py",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).resolve().parent
    for item in items:
        if item.path.relative_to(tests).as_posix() in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
