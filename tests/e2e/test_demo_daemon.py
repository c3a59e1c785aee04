"""The demo as a newcomer runs it (`./scripts/demo` uses scripts/demo-rtvault.toml): with the daemon started and no
other command typed, backups, replication and verification run and are recorded within a minute or two, and the
DICOM node it runs answers `rtvault dicom check self` (the demo's DICOM port replaced by a free one, as
`DICOM_PORT=...` does)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kit.cli import rtvault, rtvault_json
from kit.files import free_port

pytestmark = pytest.mark.slow
DEMO_CONFIG = Path(__file__).parents[2] / "scripts" / "demo-rtvault.toml"


def test_the_demo_daemon_backs_up_replicates_and_verifies_on_its_own(tmp_path: Path) -> None:
    config = tmp_path / "rtvault.toml"
    demo = DEMO_CONFIG.read_text(encoding="utf-8")
    assert demo.count("\nport = 11112\n") == 2  # the node's and the peer `self` that checks it
    config.write_text(demo.replace("\nport = 11112\n", f"\nport = {free_port()}\n"), encoding="utf-8")
    rtvault(None, "demo", "generate", "--out", tmp_path / "pinnacle", "--patients", "3", "--seed", "2",
            "--image-mb", "0.2")
    rtvault(None, "demo", "physics", "--out", tmp_path / "physics")
    rtvault(config, "init")
    env = {k: v for k, v in os.environ.items() if k != "RTVAULT_CONFIG"}
    daemon = subprocess.Popen([sys.executable, "-m", "rtvault", "--config", str(config), "daemon"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        wanted = {"backup", "replicate", "verify"}
        while time.monotonic() < deadline:
            runs = rtvault_json(config, "runs")
            if wanted <= {r["job"] for r in runs if r["result"] == "ok"}:
                break
            time.sleep(1)
        else:
            raise AssertionError(f"not every job ran: {runs}")
        assert len(rtvault_json(config, "snapshots", "--store", "copy")) == 1
        checked = rtvault_json(config, "dicom", "check", "self")
        assert checked["ok"] and [s["step"] for s in checked["steps"] if s["ok"]] == ["echo", "store", "find"], checked
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, out
