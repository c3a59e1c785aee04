"""What `/metrics` exports, gathered from a site with a copy (`jobs/health_metrics.gather`): when each job last
succeeded per source and store, the stores' sizes from the daemon's samples."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from kit.health import HealthSite, second
from rtvault.copies.verify import verify
from rtvault.jobs.health_metrics import gather
from rtvault.jobs.health_space import sample_stores


def _samples(site: HealthSite, now) -> dict[tuple[str, tuple], float]:
    return {(family.name, tuple(sorted(labels.items()))): value
            for family in gather(site.config, now) for labels, value in family.samples}


def test_last_successes_per_source_and_store(generated_db: Path, tmp_path: Path):
    site = HealthSite.make(tmp_path / "site", generated_db)
    t0 = second() - timedelta(hours=1)
    site.backup(t0)
    found = _samples(site, second())
    assert found[("rtvault_last_success_timestamp_seconds", (("job", "backup"), ("source", "pinnacle")))] == \
        t0.timestamp()
    assert ("rtvault_last_success_timestamp_seconds", (("job", "replicate"), ("store", "secondary"))) not in found
    site.replicate()
    verify(site.store("secondary"), all=True, now=t0 + timedelta(minutes=5))
    found = _samples(site, second())
    replicated = found[("rtvault_last_success_timestamp_seconds", (("job", "replicate"), ("store", "secondary")))]
    assert abs(replicated - second().timestamp()) < 60  # the copies/ record of the replication just made
    assert found[("rtvault_last_success_timestamp_seconds", (("job", "verify"), ("store", "secondary")))] == \
        (t0 + timedelta(minutes=5)).timestamp()
    assert ("rtvault_last_success_timestamp_seconds", (("job", "verify"), ("store", "primary"))) not in found
    assert found[("rtvault_store_snapshots", (("store", "secondary"),))] == 1


def test_store_bytes_from_the_latest_sample_with_a_size(generated_db: Path, tmp_path: Path):
    site = HealthSite.make(tmp_path / "site", generated_db)
    site.backup(second())
    with site.catalog() as catalog:
        sample_stores(site.config, catalog, second())
    stored = sum(p.stat().st_size for p in site.path("primary").rglob("*") if p.is_file())
    found = _samples(site, second())
    assert found[("rtvault_store_bytes", (("store", "primary"),))] == stored
    assert found[("rtvault_store_disk_size_bytes", (("store", "primary"),))] >= \
        found[("rtvault_store_free_bytes", (("store", "primary"),))] > 0
