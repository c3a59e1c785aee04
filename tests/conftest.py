"""Fixtures of every test: the real Pinnacle sample tree (tests/fixtures, MIT, from ../shared/fixtures), one
SeaweedFS S3 server and one Orthanc for the session, and no $RTVAULT_CONFIG for the configuration tests; and the
fast tier's marking. The helpers are in the kit (tests/kit)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kit.dicom import OrthancServer, start_orthanc
from kit.files import FIXTURES
from kit.seaweed import SeaweedServer, start_server
from rtvault.config import ENV_VAR


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """One SeaweedFS S3 server for the session; tests share it, each in buckets of its own."""
    server = start_server(tmp_path_factory.mktemp("seaweed"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    """One Orthanc for the session (a real PACS on loopback); a test that counts what it holds calls `clear()`."""
    server = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pinnacle_sample() -> Path:
    """The real Pinnacle 16 sample tree (synthetic identity), copied into tests/fixtures."""
    root = FIXTURES / "pinnacle" / "pinnacle_io-01"
    if not root.is_dir():
        pytest.skip("tests/fixtures/pinnacle is missing from this checkout")
    return root


@pytest.fixture
def no_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No $RTVAULT_CONFIG from the environment the tests run in: the configuration tests ask for it (`pytestmark`)."""
    monkeypatch.delenv(ENV_VAR, raising=False)


# The fast tier (`pytest -m "not slow"`, a few minutes) leaves out the modules whose tests start servers or many
# CLI processes, kill runs, mount file systems or fuzz: crash loops, S3 outages, the browser, the stories told
# through the CLI, fault injection. CI runs everything.
SLOW_MODULES = {
    # the heaviest of the rest (seconds each, measured 2026-12-07), so that the fast tier stays under 3 minutes
    "archive/test_ingest.py", "archive/test_ingest_inbox.py", "jobs/test_restore.py", "jobs/test_reconcile.py",
    "e2e/test_inspect_cli.py", "daemon/test_journal.py", "daemon/test_journal_hostile.py", "daemon/test_scheduler.py",
    "e2e/test_terminal_safety.py", "copies/test_replicate.py", "e2e/test_config_cli.py", "pinnacle/test_treatment.py",
    "web/test_auth.py", "copies/test_faults.py", "e2e/test_health_cli.py", "store/test_backend.py",
    "copies/test_repair.py", "copies/test_status.py", "jobs/test_backup_changes.py", "jobs/test_procedure.py",
    "catalog/test_dicom_patients.py", "web/test_dicom_pages.py", "jobs/test_dicom_import.py",
    "jobs/test_dicom_receive.py", "jobs/test_dicom_receive_review.py",
    "dicom_node/test_node_serve.py", "dicom_node/test_query_retrieve.py", "dicom_node/test_node_faults.py",
    "dicom_node/test_daemon_node.py",
    "dicom/test_ct_rtstruct.py", "e2e/test_export_dicom_cli.py", "e2e/test_export_bundle_cli.py", "jobs/test_bundle.py",
    "archive/test_archive_restore.py", "archive/test_archive_retention.py", "archive/test_damaged.py",
    "archive/test_hostile.py", "store/test_format_v1.py", "daemon/test_drill.py", "store/test_locks.py",
    "copies/test_replicate_crash.py", "jobs/test_backup_sources.py", "web/test_viewer.py",
    "jobs/test_physics_archives.py", "jobs/test_machines.py", "demo/test_physical.py",
    "copies/test_s3_faults.py", "copies/test_volumes.py", "e2e/test_archive_cli.py", "e2e/test_archive_faults.py",
    "e2e/test_attack2_findings.py", "e2e/test_attack_findings.py", "e2e/test_backup_cli.py", "e2e/test_copies_story.py",
    "e2e/test_crash.py", "e2e/test_store_faults.py", "e2e/test_unreadable_source.py", "e2e/test_user_cli.py",
    "e2e/test_web_browser.py", "e2e/test_dashboard_browser.py", "pinnacle/test_fuzz.py",
    "pinnacle/test_fuzz_hostile.py", "dicom/test_rtplan_rtdose.py",
    "pinnacle/test_fuzz_roundtrip.py", "store/test_crypto.py", "store/test_crypto_cli.py", "store/test_s3.py",
    "web/test_attack2_web_findings.py", "web/test_sign_in_burst.py",
    "copies/test_destruction.py", "copies/test_object_lock.py", "copies/test_pull.py", "e2e/test_reconcile_cli.py",
    "e2e/test_cli_repeated_options.py", "store/test_packs.py", "e2e/test_attack3_findings.py",
    "e2e/test_catalog_backup_cli.py", "e2e/test_attack4_findings.py", "e2e/test_viewer_browser.py",
    "e2e/test_dicom_node_story.py",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).resolve().parent
    for item in items:
        if item.path.relative_to(tests).as_posix() in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
