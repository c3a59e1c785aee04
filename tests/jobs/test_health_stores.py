"""`rtvault health`, the checks read from the stores: the age of the last backup, the replication lag, the
verification and the daemon's heartbeat, each at its OK / WARNING / CRITICAL boundaries (stores filled by real
backups taken at chosen times, health evaluated at chosen times), and UNKNOWN when a store cannot be read (but a
copy that cannot be reached: CRITICAL at once, nothing reaches it any more)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kit import store as storekit
from kit.health import HealthSite, second
from rtvault.copies.verify import verify
from rtvault.jobs.health import Status
from rtvault.store.locks import DAEMON_KEY, WriterLock

S = timedelta(seconds=1)
H = timedelta(hours=1)


@pytest.fixture(scope="module")
def history(generated_db: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[HealthSite, object, object]:
    """Backed up at T0, replicated, the copy verified at T0 + 30 s, backed up again at T1 = T0 + 1h (not
    replicated). Read only."""
    site = HealthSite.make(tmp_path_factory.mktemp("health-history"), generated_db)
    t0 = second() - 2 * H
    site.backup(t0)
    site.replicate()
    verify(site.store("secondary"), all=True, now=t0 + 30 * S)
    (site.root / "Institution_1" / "note.txt").write_text("changed\n")
    site.backup(t0 + H)
    return site, t0, t0 + H


@pytest.fixture
def site(generated_db: Path, tmp_path: Path) -> HealthSite:
    return HealthSite.make(tmp_path / "site", generated_db)


@pytest.mark.parametrize(("after", "status", "threshold"), [
    (3 * H, Status.OK, 3 * 3600), (3 * H + S, Status.WARNING, 3 * 3600),
    (6 * H, Status.WARNING, 3 * 3600), (6 * H + S, Status.CRITICAL, 6 * 3600)])
def test_backup_age_against_the_default_levels(history, after, status, threshold):
    site, _t0, t1 = history
    check = site.check("backup:pinnacle", t1 + after)
    assert (check.status, check.value, check.threshold, check.unit) == (status, after.total_seconds(), threshold, "s")
    assert check.message.startswith(f"last backup of pinnacle {'3h 00m' if after < 4 * H else '6h 00m'} ago")
    if status is Status.CRITICAL:
        assert "backups have stopped" in check.message and "rtvault runs --job backup" in check.message


def test_backup_warn_age_when_set(history):
    site, _t0, t1 = history
    site.configure(health={"backup_max_age": "2h", "backup_warn_age": "30m"})
    try:
        assert site.check("backup:pinnacle", t1 + 30 * 60 * S).status is Status.OK
        assert site.check("backup:pinnacle", t1 + 31 * 60 * S).status is Status.WARNING
        assert site.check("backup:pinnacle", t1 + 2 * H + S).status is Status.CRITICAL
    finally:
        site.configure()


def test_no_backup_at_all_is_critical(site):
    check = site.check("backup:pinnacle", second())
    assert check.status is Status.CRITICAL and check.value is None
    assert "no backup of pinnacle in primary yet: run `rtvault backup`" in check.message


def test_unmounted_primary_store_is_unknown_and_says_which(site):
    site.backup(second())
    shutil.move(site.path("primary"), site.base / "elsewhere")
    report = site.evaluate(second())
    checks = {c.name: c for c in report.checks}
    assert checks["backup:pinnacle"].status is Status.UNKNOWN
    said = checks["backup:pinnacle"].message
    assert "store primary" in said and "does not exist" in said
    assert checks["replication:secondary"].status is Status.UNKNOWN
    assert checks["verify:primary"].status is checks["space:primary"].status is Status.UNKNOWN
    assert checks["verify:secondary"].status is Status.OK  # the other store is still read
    assert report.status is Status.CRITICAL  # no daemon, and nothing else is worse: CRITICAL outranks UNKNOWN


def test_a_copy_that_cannot_be_reached_is_critical_at_once(site):
    now = second()
    site.backup(now)
    site.replicate()
    assert site.check("replication:secondary", now).status is Status.OK
    shutil.move(site.path("secondary"), site.base / "elsewhere")  # the NAS of the copy is gone
    check = site.check("replication:secondary", now)  # not after replication_max_lag: now
    assert (check.status, check.value) == (Status.CRITICAL, None)
    assert check.message.startswith("secondary cannot be reached, so no backup of primary is copied there (store "
                                    f"secondary ({site.path('secondary')}) cannot be read")
    assert check.message.endswith("then run `rtvault replicate --to secondary`")
    shutil.move(site.base / "elsewhere", site.path("secondary"))
    assert site.check("replication:secondary", now).status is Status.OK


@pytest.mark.parametrize(("after", "status"), [
    (6 * H, Status.OK), (6 * H + S, Status.WARNING), (12 * H, Status.WARNING), (12 * H + S, Status.CRITICAL)])
def test_replication_lag_is_the_age_of_the_newest_missing_snapshot(history, after, status):
    site, _t0, t1 = history
    check = site.check("replication:secondary", t1 + after)
    assert (check.status, check.value) == (status, after.total_seconds())
    assert "secondary lacks 1 snapshot(s) of primary" in check.message
    assert ("rtvault replicate --to secondary" in check.message) == (status is not Status.OK)


def test_replication_with_nothing_missing_is_zero(site):
    now = second()
    site.backup(now - 20 * H)
    site.replicate()
    check = site.check("replication:secondary", now)
    assert (check.status, check.value) == (Status.OK, 0)
    assert check.message.startswith("secondary holds every snapshot of primary")


def test_verify_never_completed_is_ok_during_the_first_cycle_then_late(site):
    now = second()
    young = site.check("verify:secondary", now)
    assert young.status is Status.OK and "first cycle is under way" in young.message
    late = site.check("verify:secondary", now + timedelta(days=31, hours=1))  # cycle_days 30 and a day
    assert late.status is Status.WARNING and "has never completed a verification cycle" in late.message
    assert site.check("verify:secondary", now + timedelta(days=35, hours=1)).status is Status.CRITICAL  # 35d


@pytest.mark.parametrize(("after", "status"), [
    (timedelta(days=31), Status.OK), (timedelta(days=31) + S, Status.WARNING),
    (timedelta(days=35), Status.WARNING), (timedelta(days=35) + S, Status.CRITICAL)])
def test_verify_age_of_the_last_complete_cycle(history, after, status):
    site, t0, _t1 = history
    check = site.check("verify:secondary", t0 + 30 * S + after)
    assert (check.status, check.value) == (status, after.total_seconds())
    assert check.message.startswith(f"last complete verification cycle of secondary {after.days}d 0h ago")


def test_missing_or_corrupt_files_found_by_verification_are_critical(site):
    now = second()
    site.backup(now)
    storekit.lose(site.path("primary"), storekit.keys(site.path("primary"), "data/")[0])
    verify(site.store("primary"), all=True, now=now)
    check = site.check("verify:primary", now + H)
    assert check.status is Status.CRITICAL
    assert "missing or corrupt file(s) in primary" in check.message
    assert "rtvault repair --store primary" in check.message


def _lease(site: HealthSite, store: str, record: dict) -> None:
    path = site.path(store) / DAEMON_KEY
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(record))


def test_daemon_heartbeat_boundaries(site):
    lock = WriterLock(site.store("primary").backend, "daemon", 3600, key=DAEMON_KEY, renewing=False)
    lock.acquire()
    try:
        beat = datetime.fromtimestamp(json.loads((site.path("primary") / DAEMON_KEY).read_text())["renewed"], UTC)
        ok = site.check("daemon", beat + 239 * S)  # CRITICAL beyond 3 x [health] interval (1m) + 60 s = 240 s
        assert ok.status is Status.OK and ok.value == 239 and f"pid {os.getpid()}" in ok.message
        late = site.check("daemon", beat + 241 * S)
        assert late.status is Status.CRITICAL and "its last heartbeat was 4m ago" in late.message
    finally:
        lock.release()
    gone = site.check("daemon", second())
    assert gone.status is Status.CRITICAL and "not running (no lease in any store)" in gone.message


def test_daemon_whose_process_is_gone_is_critical(site):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    now = second()
    _lease(site, "secondary", {"operation": "daemon", "host": os.uname().nodename, "pid": int(dead.stdout),
                               "token": "t", "acquired": now.timestamp(), "renewed": now.timestamp(),
                               "expires": now.timestamp() + 900})
    check = site.check("daemon", now)
    assert check.status is Status.CRITICAL
    assert "its process is gone" in check.message and "in secondary" in check.message


def test_daemon_not_expected(site):
    site.configure(health={"daemon": False})
    check = site.check("daemon", second())
    assert check.status is Status.OK and "not expected" in check.message
