"""The daemon's schedule on a clock of the tests' own: catch-up after downtime (once), jobs `after` another,
no job overlapping itself, the autumn night's repeated hour, a job that crashes. Each run is in the journal."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kit.cli import rtvault_json
from kit.daemon import Clock, Recorder, Site, make_site, run_daemon, until
from rtvault.jobs.daemon import Daemon
from rtvault.jobs.journal import Journal, run_record
from rtvault.jobs.schedule import local_now

PARIS = ZoneInfo("Europe/Paris")
TIMED = ("backup", "verify", "retention", "catalog", "catalog_backup", "drill")


@pytest.fixture
def site(tmp_path: Path, small_db: Path) -> Site:
    return make_site(tmp_path, small_db)


def _ran_before(site: Site, **starts: datetime) -> None:
    """The journal says each job last ran at the time given."""
    journal = Journal(site.config)
    for job, start in starts.items():
        journal.append(run_record(job, "schedule", start, start, "ok", "", {}))


def _jobs(recorder: Recorder) -> list[str]:
    return [job for job, _at in recorder.ran]


def test_runs_missed_while_the_daemon_was_down_run_once_at_start(site: Site) -> None:
    monday = datetime(2026, 12, 7, 10, 10, tzinfo=PARIS)  # the 09:00 and 10:00 backups were missed
    _ran_before(site, backup=monday.replace(hour=8, minute=0), verify=monday.replace(hour=2, minute=30),
                retention=monday.replace(hour=3, minute=30), catalog=monday.replace(hour=4, minute=0),
                catalog_backup=monday.replace(hour=4, minute=30), drill=monday.replace(hour=5, minute=30))
    clock = Clock(monday, monday.replace(minute=30))
    recorder = Recorder(site.config, clock)
    run_daemon(site.config, clock, recorder)
    assert _jobs(recorder) == ["backup", "sweep", "replicate"]
    runs = {r["job"]: r for r in rtvault_json(site.config_path, "runs") if r["trigger"] != "schedule"}
    assert runs["backup"]["trigger"] == "catch-up" and runs["backup"]["result"] == "ok"
    assert runs["sweep"]["trigger"] == runs["replicate"]["trigger"] == "after backup"


def test_a_new_site_runs_every_timed_job_once_at_start(site: Site) -> None:
    monday = datetime(2026, 12, 7, 10, 10, tzinfo=PARIS)
    clock = Clock(monday, monday.replace(minute=20))
    recorder = Recorder(site.config, clock)
    run_daemon(site.config, clock, recorder)
    assert sorted(_jobs(recorder)) == sorted([*TIMED, "sweep", "replicate"])


def test_each_backup_on_time_is_followed_by_sweep_and_replication(site: Site) -> None:
    start = datetime(2026, 12, 7, 10, 50, tzinfo=PARIS)
    _ran_before(site, **{job: start.replace(minute=0) for job in TIMED})
    clock = Clock(start, start.replace(hour=13, minute=5))
    recorder = Recorder(site.config, clock)
    run_daemon(site.config, clock, recorder)
    assert _jobs(recorder) == ["backup", "sweep", "replicate"] * 3
    assert [at.hour for job, at in recorder.ran if job == "backup"] == [11, 12, 13]
    assert all(at.minute == 0 for _job, at in recorder.ran)


def test_a_job_never_overlaps_itself(site: Site) -> None:
    start = datetime(2026, 12, 7, 10, 59, tzinfo=PARIS)
    _ran_before(site, **{job: start.replace(minute=0) for job in TIMED})
    clock = Clock(start, start.replace(hour=12, minute=10), wait_idle=False)
    recorder = Recorder(site.config, clock, hold="backup")  # the 11:00 backup still runs at 12:00
    release = threading.Thread(target=lambda: (recorder.started.wait(30), until(lambda: clock.now >= clock.until, 30),
                                               recorder.release.set()))
    release.start()
    daemon = run_daemon(site.config, clock, recorder)
    release.join()
    assert _jobs(recorder) == ["backup"]
    assert any("backup: still running; this schedule run is merged with it" in line for line in daemon.lines)



def test_the_repeated_hour_of_the_autumn_night_runs_a_job_once(site: Site) -> None:
    night = datetime(2026, 10, 25, 0, 0, tzinfo=PARIS)  # 03:00 CEST becomes 02:00 CET: 02:30 comes twice
    _ran_before(site, **{job: night for job in TIMED})
    clock = Clock(night, datetime(2026, 10, 25, 5, 0, tzinfo=PARIS))
    recorder = Recorder(site.config, clock)
    run_daemon(site.config, clock, recorder)
    verifies = [at for job, at in recorder.ran if job == "verify"]
    assert len(verifies) == 1 and (verifies[0].hour, verifies[0].minute) == (2, 30)
    assert [at.hour for job, at in recorder.ran if job == "backup"] == [4]  # every 4 hours: 04:00 on Sunday


def test_a_job_that_crashes_is_a_failed_run_and_the_daemon_goes_on(site: Site) -> None:
    start = datetime(2026, 12, 7, 10, 50, tzinfo=PARIS)
    _ran_before(site, **{job: start.replace(minute=0) for job in TIMED})
    clock = Clock(start, start.replace(hour=11, minute=10))
    recorder = Recorder(site.config, clock, crash="backup")
    run_daemon(site.config, clock, recorder)
    assert _jobs(recorder) == ["backup", "sweep", "replicate"]
    by_result = {r["result"]: r for r in rtvault_json(site.config_path, "runs", "--job", "backup")}
    assert set(by_result) == {"ok", "failed"}  # the run seeded, and the crash
    crashed = by_result["failed"]
    assert "internal error (a bug in rtvault" in crashed["error"] and "backup fell over" in crashed["error"]


def test_a_copy_on_a_schedule_of_its_own_runs_at_its_time_only(tmp_path: Path, small_db: Path) -> None:
    site = make_site(tmp_path, small_db, schedule={"pairs": {"copy": {"replicate": "daily 22:00"}}})
    evening = datetime(2026, 12, 7, 21, 50, tzinfo=PARIS)
    _ran_before(site, **{job: evening for job in TIMED}, **{"replicate:copy": evening})
    clock = Clock(evening, evening.replace(hour=22, minute=10))
    recorder = Recorder(site.config, clock)
    run_daemon(site.config, clock, recorder)
    assert _jobs(recorder) == ["replicate:copy"]


def test_slow_health_checks_never_hold_the_heartbeat(site: Site) -> None:
    release, lines = threading.Event(), []
    daemon = Daemon(site.config, log=lines.append, on_tick=[lambda _now: release.wait(30) and []])
    daemon._catching_up = False
    try:
        started = time.monotonic()
        daemon.tick(datetime.now(PARIS))  # takes the leases, starts the (hung) checks
        beat = json.loads((site.primary / "locks" / "daemon.json").read_text())["renewed"]
        time.sleep(0.05)
        daemon.tick(datetime.now(PARIS))
        assert time.monotonic() - started < 5
        assert json.loads((site.primary / "locks" / "daemon.json").read_text())["renewed"] > beat
        assert any("the previous interval's checks and alerts are still running" in line for line in lines)
    finally:
        release.set()
        for lease in daemon._leases.values():
            lease.release()


def test_a_posix_tz_rule_is_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3")
    time.tzset()
    try:
        assert local_now().utcoffset().total_seconds() in (3600, 7200)  # CET or CEST, never UTC
    finally:
        monkeypatch.undo()
        time.tzset()
