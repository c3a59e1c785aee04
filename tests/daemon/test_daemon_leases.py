"""The daemon's leases when it may not run: a daemon refused on one store (another daemon holds it) leaves no
lease of its own on the stores it took first, which would stand for a daemon that is not running and make the
running daemon, on another host, stop at its heartbeat when it reaches for them. And a store that goes away (its
NAS unmounted) takes the daemon's lease with it: that is no other daemon taking over, the daemon runs on."""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime
from pathlib import Path

import pytest

from kit.daemon import Site, make_site
from rtvault.errors import LockBusy
from rtvault.jobs.daemon import Daemon
from rtvault.store.locks import DAEMON_KEY


@pytest.fixture
def site(tmp_path: Path, small_db: Path) -> Site:
    return make_site(tmp_path, small_db)


def test_a_daemon_refused_on_one_store_releases_the_leases_it_took(site: Site) -> None:
    now = time.time()
    held = {"operation": "daemon", "host": "other-host", "pid": 4242, "token": "theirs", "acquired": now,
            "renewed": now, "expires": now + 900}
    (site.copy / DAEMON_KEY).parent.mkdir(exist_ok=True)
    (site.copy / DAEMON_KEY).write_text(json.dumps(held))
    with pytest.raises(LockBusy, match=r"another rtvault daemon runs on store copy: daemon \(pid 4242 on other-host"):
        Daemon(site.config).run()
    assert not (site.primary / DAEMON_KEY).exists()
    assert json.loads((site.copy / DAEMON_KEY).read_text())["token"] == "theirs"  # the other daemon's, untouched


def test_a_store_gone_away_does_not_stop_the_daemon_and_gets_its_heartbeat_once_back(site: Site) -> None:
    lines: list[str] = []
    daemon = Daemon(site.config, log=lines.append)
    daemon._catching_up = False
    try:
        daemon.tick(datetime.now().astimezone())  # takes the leases
        token = json.loads((site.copy / DAEMON_KEY).read_text())["token"]
        shutil.move(site.copy, site.base / "copy-away")  # the copy's NAS is gone, its lease with it
        daemon.tick(datetime.now().astimezone())
        assert not daemon.stopping.is_set(), lines
        assert any(line.startswith("store copy: heartbeat not written") and "is the store mounted?" in line
                   for line in lines), lines
        assert not site.copy.exists()  # nothing written where the store was (an empty mount point)
        beat = json.loads((site.base / "copy-away" / DAEMON_KEY).read_text())["renewed"]
        shutil.move(site.base / "copy-away", site.copy)
        time.sleep(0.01)
        daemon.tick(datetime.now().astimezone())
        renewed = json.loads((site.copy / DAEMON_KEY).read_text())
        assert not daemon.stopping.is_set() and renewed["token"] == token and renewed["renewed"] > beat
    finally:
        for lease in daemon._leases.values():
            lease.release()
