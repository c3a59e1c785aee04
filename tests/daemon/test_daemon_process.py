"""`rtvault daemon` as systemd runs it (a real process, the real jobs): it catches up at start and records each
run; a second daemon on the same stores is refused; SIGTERM lets the current job finish; after SIGKILL the next
daemon takes the lease over at once and nothing is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kit.cli import rtvault, rtvault_json
from kit.daemon import Site, make_site, until

pytestmark = pytest.mark.slow


@pytest.fixture
def site(tmp_path: Path, small_db: Path) -> Site:
    return make_site(tmp_path, small_db, health={"interval": "2s"})


def _start(site: Site) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "RTVAULT_CONFIG"}
    return subprocess.Popen([sys.executable, "-m", "rtvault", "--config", str(site.config_path), "daemon"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)



def _jobs(site: Site) -> set[str]:
    return {r["job"] for r in rtvault_json(site.config_path, "runs")}


def _lease(store: Path) -> dict | None:
    path = store / "locks" / "daemon.json"
    return json.loads(path.read_text()) if path.exists() else None


def test_the_daemon_catches_up_records_each_run_and_stops_cleanly(site: Site) -> None:
    daemon = _start(site)
    try:
        until(lambda: {"backup", "sweep", "replicate", "verify", "retention", "catalog", "catalog_backup"}
              <= _jobs(site))
        runs = rtvault_json(site.config_path, "runs")
        assert {r["result"] for r in runs} == {"ok"}, runs
        backup = next(r for r in runs if r["job"] == "backup")
        assert backup["trigger"] == "catch-up" and backup["summary"]["patients"] == 2
        assert rtvault_json(site.config_path, "snapshots", "--store", "copy")  # replicated after the backup
        lease = _lease(site.primary)
        assert lease is not None and lease["pid"] == daemon.pid and _lease(site.copy)["pid"] == daemon.pid
        beat = lease["renewed"]
        until(lambda: _lease(site.primary)["renewed"] > beat, timeout=20)  # the heartbeat, every interval
        second = rtvault(site.config_path, "daemon", expect=6, timeout=30)
        assert f"another rtvault daemon runs on store primary: daemon (pid {daemon.pid}" in second.stderr
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, out
    assert "rtvault daemon stopped after" in out
    assert _lease(site.primary) is None and _lease(site.copy) is None


def test_sigterm_during_a_job_lets_it_finish(site: Site) -> None:
    daemon = _start(site)
    assert daemon.stdout is not None
    for line in daemon.stdout:
        if "backup: starting" in line:
            break
    daemon.send_signal(signal.SIGTERM)
    out, _ = daemon.communicate(timeout=120)
    assert daemon.returncode == 0, out
    assert "no new job will start; the current one finishes first" in out
    runs = rtvault_json(site.config_path, "runs")
    assert [(r["job"], r["result"]) for r in runs] == [("backup", "ok")]  # finished, and nothing after it
    assert len(rtvault_json(site.config_path, "snapshots")) == 1


def test_after_sigkill_the_next_daemon_takes_over_and_catches_up(site: Site) -> None:
    first = _start(site)
    until(lambda: "backup" in _jobs(site))
    first.kill()
    first.wait()
    assert _lease(site.primary)["pid"] == first.pid  # left behind by the killed daemon
    (site.base / "catalog.sqlite").unlink()  # and the catalog lost too: the journal in the stores tells
    second = _start(site)
    try:
        until(lambda: _lease(site.primary) is not None and _lease(site.primary)["pid"] == second.pid, timeout=30)
        until(lambda: {"verify", "retention", "catalog"} <= _jobs(site))
    finally:
        second.send_signal(signal.SIGTERM)
        out, _ = second.communicate(timeout=60)
    assert "took over a stale lock of daemon" in out and f"its process {first.pid} is gone" in out
    backups = [r for r in rtvault_json(site.config_path, "runs", "--job", "backup")]
    assert backups and all(r["result"] == "ok" for r in backups)
