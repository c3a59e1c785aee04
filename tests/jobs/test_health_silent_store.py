"""`rtvault health` while an S3 store does not answer: the monitoring that runs it (Centreon kills a plugin
after 10 s) must get its line, the silent store UNKNOWN (and, a copy, its replication CRITICAL), not a timeout of
its own."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit.config import write_config
from rtvault.config import load
from rtvault.jobs.health import Status, evaluate
from rtvault.store import Store


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A server on loopback that accepts connections and never answers (a hung S3 gateway)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)  # the kernel completes the handshakes: the client waits for an answer that never comes
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


@pytest.mark.slow
def test_a_silent_s3_store_is_unknown_within_the_plugin_timeout(tmp_path: Path, silent_port: int,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    Store.init(tmp_path / "primary")
    config = load(write_config(tmp_path / "rtvault.toml", stores={
        "primary": tmp_path / "primary",
        "offsite": {"url": "s3://bucket/rt", "endpoint": f"http://127.0.0.1:{silent_port}", "copy_of": "primary"}},
        catalog={"url": f"sqlite:///{tmp_path / 'catalog.sqlite'}"}, daemon={"state_dir": tmp_path / "state"}))
    assert config.stores["offsite"].retry_seconds == 30  # what a backup waits for its store
    started = time.monotonic()
    report = evaluate(config)
    assert time.monotonic() - started < 8
    checks = {check.name: check for check in report.checks}
    assert checks["verify:offsite"].status is Status.UNKNOWN
    assert "offsite" in checks["verify:offsite"].message and "unreachable" in checks["verify:offsite"].message
    assert checks["replication:offsite"].status is Status.CRITICAL  # a copy nothing reaches any more
    assert "offsite cannot be reached" in checks["replication:offsite"].message
