"""The daemon's leases when it may not run: a daemon refused on one store (another daemon holds it) leaves no
lease of its own on the stores it took first, which would stand for a daemon that is not running and make the
running daemon, on another host, stop at its heartbeat when it reaches for them."""

from __future__ import annotations

import json
import time
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
