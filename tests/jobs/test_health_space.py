"""`space:<store>`: free space against [health] free_warn_percent / free_critical_percent on a real small disk
(a tmpfs filled to the level wanted), the days-until-full forecast from the catalog's store samples, and the
samples the daemon takes (`sample_stores`)."""

from __future__ import annotations

import os
import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from kit.faults import small_disk
from kit.health import HealthSite, second
from rtvault.jobs.health import Status
from rtvault.jobs.health_space import forecast_days, sample_key, sample_stores, space_check
from rtvault.jobs.health_survey import Survey
from rtvault.utc import iso

DAY = 86400.0


def test_forecast_is_a_least_squares_line_through_the_free_bytes():
    shrinking = [(i * DAY, 1000 - 10 * i) for i in range(10)]  # 10 bytes a day
    assert forecast_days(shrinking, 500) == pytest.approx(50)
    noisy = [(0.0, 1000), (DAY, 1010), (2 * DAY, 980), (3 * DAY, 970)]  # slope -12 a day
    assert forecast_days(noisy, 120) == pytest.approx(10)


@pytest.mark.parametrize("samples", [
    [], [(0.0, 100)], [(0.0, 100), (3600.0, 50)],  # fewer than two, or less than a day apart
    [(0.0, 100), (DAY, 100)], [(0.0, 100), (DAY, 200)]])  # not shrinking
def test_no_forecast(samples):
    assert forecast_days(samples, 100) is None


@pytest.fixture
def site(generated_db: Path, tmp_path: Path) -> HealthSite:
    return HealthSite.make(tmp_path / "site", generated_db)


def _insert(site: HealthSite, store: str, rows: list[tuple[str, int, int]]) -> None:
    with site.catalog() as catalog, catalog.transaction():
        catalog.many("INSERT INTO store_samples (store, time, total_bytes, free_bytes) VALUES (?, ?, ?, ?)",
                     [(sample_key(site.config, store), time, total, free) for time, total, free in rows])


@pytest.mark.parametrize(("days", "status"), [(7, Status.CRITICAL), (13, Status.CRITICAL), (15, Status.WARNING),
                                              (89, Status.WARNING), (91, Status.OK)])  # CRITICAL 14, WARNING 90
def test_days_until_full_from_the_samples_of_the_last_30_days(site, days, status):
    site.configure(health={"free_warn_percent": 0, "free_critical_percent": 0})  # the forecast alone decides
    now = second()
    free = shutil.disk_usage(site.path("primary")).free
    per_day = free / (days + 0.5)  # half a day off the boundary: the disk may change a little meanwhile
    rows = [(iso(now - timedelta(days=d)), 10**15, int(free + per_day * d)) for d in range(1, 20)]
    rows.append((iso(now - timedelta(days=40)), 10**15, 1))  # older than 30 days: left out of the fit
    _insert(site, "primary", rows)
    check = site.check("space:primary", now)
    assert check.status is status, check.message
    forecast = re.search(r"full in about (\d+) days at the pace of the last 30 days", check.message)
    assert forecast and days <= int(forecast[1]) <= days + 1, check.message


def test_a_store_never_sampled_has_no_forecast(site):
    check = site.check("space:secondary", second())
    assert "not filling up (or not a day of samples yet" in check.message


@pytest.mark.parametrize(("free_percent", "status", "threshold"), [
    (50, Status.OK, 15), (10, Status.WARNING, 15), (3, Status.CRITICAL, 5)])
def test_free_percent_on_a_real_small_disk(generated_db, tmp_path, free_percent, status, threshold):
    with small_disk(tmp_path / "disk", "8m") as disk:
        site = HealthSite.make(tmp_path / "site", generated_db,
                               stores={"primary": disk / "store"})  # type: ignore[arg-type]
        total = shutil.disk_usage(disk).total
        wanted_free = total * free_percent // 100
        with open(disk / "filler", "wb") as filler:
            filler.write(b"\0" * (shutil.disk_usage(disk).free - wanted_free))
        check = site.check("space:primary", second())
        assert check.status is status, check.message
        assert check.value == pytest.approx(free_percent, abs=1.5) and check.threshold == threshold
        assert check.unit == "%" and f"{check.value:.1f} % free on the disk of primary" in check.message
        if status is not Status.OK:
            assert "free space on that disk" in check.message


def test_an_unmounted_store_is_unknown_never_the_root_disk(site):
    shutil.rmtree(site.path("secondary"))
    site.path("secondary").mkdir()  # the empty mount point of a NAS that is not mounted
    check = site.check("space:secondary", second())
    assert check.status is Status.UNKNOWN and "is it mounted?" in check.message


def test_an_s3_store_has_no_limit_known(site, tmp_path):
    site.configure(stores={"primary": site.path("primary"), "offsite": {"url": "s3://bucket/rtvault",
                                                                       "endpoint": "http://127.0.0.1:9"}})
    check = space_check(Survey(site.config, second()), "offsite")
    assert check.status is Status.OK and check.value is None and "no limit known" in check.message


def test_samples_every_ten_minutes_with_the_store_size_every_six_hours(site):
    now = second()
    with site.catalog() as catalog:
        assert sample_stores(site.config, catalog, now) == ["primary", "secondary"]
        assert sample_stores(site.config, catalog, now + timedelta(minutes=9)) == []
        assert sample_stores(site.config, catalog, now + timedelta(minutes=11)) == ["primary", "secondary"]
        assert sample_stores(site.config, catalog, now + timedelta(hours=7)) == ["primary", "secondary"]
        rows = catalog.execute("SELECT time, total_bytes, free_bytes, store_bytes FROM store_samples "
                               "WHERE store = ? ORDER BY time", (sample_key(site.config, "primary"),))
    stored = sum(p.stat().st_size for p in site.path("primary").rglob("*") if p.is_file())
    assert [r[0] for r in rows] == [iso(now), iso(now + timedelta(minutes=11)), iso(now + timedelta(hours=7))]
    assert [r[3] for r in rows] == [stored, None, stored]
    assert all(r[1] == shutil.disk_usage(site.path("primary")).total and 0 < r[2] <= r[1] for r in rows)


def test_samples_skip_an_unmounted_store_and_prune_after_90_days(site):
    now = second()
    _insert(site, "primary", [(iso(now - timedelta(days=91)), 100, 50), (iso(now - timedelta(days=89)), 100, 50)])
    os.rename(site.path("secondary"), site.base / "away")
    with site.catalog() as catalog:
        assert sample_stores(site.config, catalog, now) == ["primary"]
        times = [r[0] for r in catalog.execute("SELECT time FROM store_samples ORDER BY time")]
    assert times == [iso(now - timedelta(days=89)), iso(now)]


def test_two_sites_sharing_a_catalog_keep_their_own_samples_though_both_name_a_store_primary(site, tmp_path):
    """Site B's `primary` is another disk: its samples (a disk filling up) must not make site A's forecast."""
    from kit.config import write_config
    from rtvault.config import load
    from rtvault.store import Store

    Store.init(tmp_path / "b-primary")
    other = load(write_config(tmp_path / "b.toml", stores={"primary": tmp_path / "b-primary"},
                              catalog={"url": site.config.catalog.url},
                              health={"free_warn_percent": 0, "free_critical_percent": 0}))
    assert sample_key(other, "primary") != sample_key(site.config, "primary")
    now = second()
    with site.catalog() as catalog:
        catalog.many("INSERT INTO store_samples (store, time, total_bytes, free_bytes) VALUES (?, ?, ?, ?)",
                     [(sample_key(other, "primary"), iso(now - timedelta(days=d)), 100 << 30, (10 + d) << 30)
                      for d in range(20, 0, -1)])
        sample_stores(site.config, catalog, now)
        sample_stores(other, catalog, now)
        keys = {row[0] for row in catalog.execute("SELECT DISTINCT store FROM store_samples")}
    assert keys == {sample_key(site.config, n) for n in ("primary", "secondary")} | {sample_key(other, "primary")}
    site.configure(health={"free_warn_percent": 0, "free_critical_percent": 0})
    checked = space_check(Survey(site.config, now), "primary")
    assert checked.status is Status.OK and "not filling up" in checked.message
    other_checked = space_check(Survey(load(other.file), now), "primary")  # its own samples: filling up
    assert "not filling up" not in other_checked.message, other_checked.message
