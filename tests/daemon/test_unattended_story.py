"""Issue 12's story as a site lives it, every part real: `rtvault daemon` runs the schedule on its own; `rtvault
health`, `--nagios` and `/metrics` reflect what it did; the Pinnacle share moved away gives an e-mail (a real SMTP
server with STARTTLS and a sign-in) within one health interval, and a recovery e-mail once it is back."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kit.alerts import mail_settings, smtp_server
from kit.cli import rtvault, rtvault_json
from kit.daemon import Site, make_site, until

pytestmark = pytest.mark.slow


def test_the_daemon_runs_watches_itself_and_mails_when_the_source_goes(tmp_path: Path, small_db: Path) -> None:
    with smtp_server(tmp_path / "smtp") as smtp:
        site: Site = make_site(tmp_path / "site", small_db, health={"interval": "2s", "free_warn_percent": 0.5,
                                                                  "free_critical_percent": 0.1},
                               alerts={"mail": mail_settings(smtp, tmp_path)})
        env = {k: v for k, v in os.environ.items() if k != "RTVAULT_CONFIG"}
        daemon = subprocess.Popen([sys.executable, "-m", "rtvault", "--config", str(site.config_path), "daemon"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        try:
            until(lambda: {"backup", "replicate", "verify"} <= {r["job"] for r in
                                                                rtvault_json(site.config_path, "runs")})
            healthy = json.loads(rtvault(site.config_path, "health", "--json", expect=None).stdout)
            by_name = {c["name"]: c for c in healthy["checks"]}
            assert by_name["backup:pinnacle"]["status"] == "OK" and by_name["daemon"]["status"] == "OK"
            assert by_name["replication:copy"]["status"] == "OK" and by_name["source:pinnacle"]["status"] == "OK"
            nagios = rtvault(site.config_path, "health", "--nagios", expect=None)
            assert nagios.stdout.startswith("RTVAULT ") and "|" in nagios.stdout
            assert smtp.received == []  # all is well: nothing sent

            shutil.move(site.base / "db", site.base / "db-away")  # the Pinnacle share is gone
            moved = time.monotonic()
            until(lambda: len(smtp.received) >= 1, timeout=30)
            assert time.monotonic() - moved < 2 * 2 + 10  # within an interval or two (and the time to send)
            alert = smtp.received[0]
            assert alert.message["Subject"].startswith("[rtvault] CRITIQUE")
            assert "pinnacle" in alert.text
            assert rtvault(site.config_path, "health", "--nagios", expect=2).stdout.startswith("RTVAULT CRITICAL")

            shutil.move(site.base / "db-away", site.base / "db")
            until(lambda: len(smtp.received) >= 2, timeout=30)
            assert "RÉTABLI" in smtp.received[1].message["Subject"].upper()
        finally:
            daemon.send_signal(signal.SIGTERM)
            out, _ = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, out
    assert "health: source:pinnacle OK -> CRITICAL" in out
