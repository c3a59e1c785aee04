"""The daemon's work at every [health] interval (jobs/monitor.py), as its tick runs it: the stores' disk space
sampled, health evaluated and handed to the alerts. The Pinnacle share moved away gives an alert on the next
interval, through a real webhook receiver, and a recovery notice once it is back; both changes are alert records
in every store's journal, which a catalog lost gets back, and the month's report shows the alert resolved."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from kit.alerts import webhook
from kit.cli import rtvault
from kit.health import HealthSite, second
from rtvault.catalog.runs import health_events
from rtvault.jobs.evidence import gather
from rtvault.jobs.health_space import sample_key
from rtvault.jobs.monitor import hooks
from rtvault.store import journal

ANY_DISK = {"free_warn_percent": 0.5, "free_critical_percent": 0.1}  # the story is not about the host's disk


def test_source_moved_away_alerts_on_the_next_interval_and_recovers(generated_db: Path, tmp_path: Path):
    site = HealthSite.make(tmp_path / "site", generated_db)
    with webhook() as hook:
        site.configure(alerts={"webhook": {"url": hook.url}}, daemon={"state_dir": site.base / "state"},
                       health={"daemon": False, **ANY_DISK})
        now = second()
        site.backup(now)
        site.replicate()
        samples, health = hooks(site.config)
        assert samples(now) == [] and health(now) == []  # all is well: nothing to log, nothing sent
        assert hook.requests == []

        shutil.move(site.root, site.base / "moved")
        lines = health(now + timedelta(minutes=1))
        assert any(line.startswith("health: source:pinnacle OK -> CRITICAL: source ") for line in lines), lines
        [alert] = hook.delivered
        assert alert["event"] == "alert" and alert["status"] == "CRITICAL"
        assert [c["name"] for c in alert["checks"] if c["status"] == "CRITICAL"] == ["source:pinnacle"]

        shutil.move(site.base / "moved", site.root)
        lines = health(now + timedelta(minutes=2))
        assert any(line.startswith("health: source:pinnacle CRITICAL -> OK") for line in lines), lines
        assert [r["event"] for r in hook.delivered] == ["alert", "recovery"]
    with site.catalog() as catalog:
        stores = {row[0] for row in catalog.execute("SELECT store FROM store_samples")}
    assert stores == {sample_key(site.config, "primary"), sample_key(site.config, "secondary")}  # by store id

    for name in ("primary", "secondary"):  # the same alert records in each store's journal
        backend = site.store(name).backend
        records = [journal.decode(backend.get(key), key) for key in sorted(backend.list(journal.FOLDER))]
        changes = [(c["check"], c["previous"], c["status"]) for r in records if r["kind"] == "alert"
                   for c in r["changes"]]
        assert ("source:pinnacle", "OK", "CRITICAL") in changes and ("source:pinnacle", "CRITICAL", "OK") in changes
    (site.base / "catalog.sqlite").unlink()  # the catalog lost: the stores give the alerts back
    rtvault(site.config_path, "catalog", "sync")
    with site.catalog() as catalog:
        events = [(e.check, e.status, e.notified) for e in health_events(catalog) if e.check == "source:pinnacle"]
    assert events == [("source:pinnacle", "CRITICAL", ("webhook",)), ("source:pinnacle", "OK", ("webhook",))]
    [episode] = [e for e in gather(site.config, f"{now:%Y-%m}", now + timedelta(minutes=3)).episodes
                 if e.check == "source:pinnacle"]
    assert episode.status == "CRITICAL" and episode.resolved is not None
    assert (episode.resolved - episode.started) == timedelta(minutes=1)


def test_a_catalog_that_cannot_be_used_is_logged_not_raised(generated_db: Path, tmp_path: Path):
    site = HealthSite.make(tmp_path / "site", generated_db)
    (site.base / "catalog.sqlite").write_bytes(b"not a database, " * 300)
    samples, health = hooks(site.config)
    [line] = samples(second())
    assert line.startswith("store samples not recorded: catalog ")
    assert any(line.startswith("health: copies OK -> UNKNOWN: cannot count the copies") for line in health(second()))


def test_the_daemon_counts_copies_every_15_minutes_not_every_interval(generated_db: Path, tmp_path: Path,
                                                                       monkeypatch) -> None:
    from rtvault.jobs import health

    site = HealthSite.make(tmp_path / "site", generated_db)
    site.configure(daemon={"state_dir": site.base / "state"}, health={"daemon": False})
    measured: list[object] = []
    real = health.copies_check
    monkeypatch.setattr(health, "copies_check", lambda survey: measured.append(survey.now) or real(survey))
    now = second()
    _samples, check = hooks(site.config)
    for minute in (0, 1, 14, 15, 16):
        check(now + timedelta(minutes=minute))
    assert measured == [now, now + timedelta(minutes=15)]


def test_the_dashboard_counts_copies_once_a_minute(generated_db: Path, tmp_path: Path, monkeypatch) -> None:
    from rtvault.jobs import dashboard, health

    site = HealthSite.make(tmp_path / "site", generated_db)
    measured: list[object] = []
    real = health.copies_check
    monkeypatch.setattr(health, "copies_check", lambda survey: measured.append(survey.now) or real(survey))
    monkeypatch.setattr(dashboard, "_copies", {})
    first = dashboard._evaluate(site.config, second())
    again = dashboard._evaluate(site.config, second())
    assert len(measured) == 1  # the second page reused the count of the first
    assert [c for c in again.checks if c.name == "copies"] == [c for c in first.checks if c.name == "copies"]
    monkeypatch.setattr(dashboard, "COPIES_REUSE_S", 0.0)
    dashboard._evaluate(site.config, second())
    assert len(measured) == 2  # older than the reuse window: measured again
