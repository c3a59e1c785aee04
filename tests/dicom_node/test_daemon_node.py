"""The daemon runs the DICOM node when [dicom] port is set: it listens (health's `dicom` check says so), it is
restarted when it dies, and it is stopped with the daemon, having sealed what it received."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

from kit.cli import rtvault
from kit.daemon import until
from kit.dicom_node import call, ct_series, held, make_site


def listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def dicom_check(config: Path) -> dict:
    import json

    done = rtvault(config, "health", "--json", expect=None)
    return next(c for c in json.loads(done.stdout)["checks"] if c["name"] == "dicom_node")


def test_the_daemon_supervises_the_dicom_node(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "RTVAULT_CONFIG"}
    daemon = subprocess.Popen([sys.executable, "-m", "rtvault", "--config", str(site.config_path), "daemon"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(daemon.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        until(lambda: listening(site.port), timeout=60)
        check = dicom_check(site.config_path)
        assert check["status"] == "OK" and f"listens on 127.0.0.1:{site.port}" in check["message"]
        files = ct_series(tmp_path / "in", 2)
        assert call("storescu", site, files=files).returncode == 0
        [pid] = [int(m.group(1)) for line in lines if (m := re.search(r"dicom serve` started \(pid (\d+)", line))]
        os.kill(pid, signal.SIGKILL)  # the node dies: the daemon starts it again
        until(lambda: any("exited with code -9; restarted" in line for line in lines), timeout=30)
        until(lambda: listening(site.port) and len([x for x in lines if "dicom serve` started" in x]) == 2, timeout=60)
        assert call("echoscu", site).returncode == 0
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=120)
        reader.join(timeout=10)
    assert daemon.returncode == 0, "".join(lines)
    assert not listening(site.port)
    check = dicom_check(site.config_path)
    assert check["status"] == "CRITICAL" and "does not listen" in check["message"]
    assert len(held(site)) == 2  # killed before its seal, sealed by the next node; the next sealed at the stop
    assert not list((site.store / "dicom" / "spool").glob("*.spool"))
