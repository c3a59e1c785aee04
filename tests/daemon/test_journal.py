"""The run journal: each record on every store (the same bytes), in the catalog, and `rtvault runs`; a store
that fails gets it from the spool once back; the catalog lost gets it back from the stores; verify, repair and
replication treat its segments as they treat the store's other files."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kit.cli import rtvault, rtvault_json
from kit.daemon import Site, make_site
from rtvault.jobs.journal import Journal, run_record, spooled

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
def site(tmp_path: Path, small_db: Path) -> Site:
    return make_site(tmp_path, small_db)


def _record(job: str = "backup", result: str = "ok", minutes: int = 0, error: str = "") -> dict[str, object]:
    start = T0 + timedelta(minutes=minutes)
    return run_record(job, "schedule", start, start + timedelta(seconds=42), result, error,
                      {"patients": 2, "bytes_added": 1234}, counts={"patients": 2})


def test_a_record_is_on_every_store_byte_for_byte_and_in_rtvault_runs(site: Site) -> None:
    journal = Journal(site.config)
    first = journal.append(_record())
    second = journal.append(_record("verify", "partial", 5, "verify --store copy: 1 corrupt file"))
    assert first.stores == second.stores == ["primary", "copy"] and not first.spooled and not first.problems
    assert site.segments(site.primary) == site.segments(site.copy)
    assert len(site.segments(site.primary)) == 2
    runs = rtvault_json(site.config_path, "runs")
    assert [r["job"] for r in runs] == ["verify", "backup"]  # newest first
    assert runs[1]["start"] == "2026-12-07T09:00:00Z" and runs[1]["end"] == "2026-12-07T09:00:42Z"
    assert runs[1]["result"] == "ok" and runs[1]["error"] is None
    assert runs[1]["summary"] == {"patients": 2, "bytes_added": 1234}
    assert runs[0]["result"] == "partial" and runs[0]["error"] == "verify --store copy: 1 corrupt file"
    only = rtvault_json(site.config_path, "runs", "--job", "backup")
    assert [r["id"] for r in only] == [runs[1]["id"]]
    assert rtvault_json(site.config_path, "runs", "--since", "2026-12-07T09:03:00Z") == runs[:1]


def test_runs_since_a_duration_and_a_wrong_since(site: Site) -> None:
    journal = Journal(site.config)
    now = datetime.now(UTC)
    journal.append(run_record("backup", "schedule", now - timedelta(days=3), now - timedelta(days=3), "ok", "", {}))
    journal.append(run_record("backup", "schedule", now - timedelta(hours=1), now, "failed", "source gone", {}))
    assert [r["result"] for r in rtvault_json(site.config_path, "runs", "--since", "2h")] == ["failed"]
    assert len(rtvault_json(site.config_path, "runs", "--since", "4d")) == 2
    refused = rtvault(site.config_path, "runs", "--since", "last tuesday", expect=2)
    assert "neither a duration" in refused.stderr
    text = rtvault(site.config_path, "runs").stdout
    assert "failed" in text and "source gone" in text


def test_a_store_that_is_gone_gets_its_records_from_the_spool_once_back(site: Site) -> None:
    unmounted = site.base / "copy-unmounted"
    site.copy.rename(unmounted)  # the NAS of the copy is not mounted
    journal = Journal(site.config)
    written = journal.append(_record())
    assert written.stores == ["primary"] and "copy" in written.spooled
    assert list(spooled(site.config)) == ["copy"]
    assert journal.flush() and list(spooled(site.config)) == ["copy"]  # still away: still waiting, said
    unmounted.rename(site.copy)
    assert journal.flush() == []
    assert spooled(site.config) == {}
    assert site.segments(site.copy) == site.segments(site.primary)


def test_a_record_that_reaches_no_store_nor_the_spool_says_what_to_do(site: Site) -> None:
    shutil.rmtree(site.primary)
    shutil.rmtree(site.copy)
    site.state.parent.mkdir(exist_ok=True)
    site.state.write_text("a file where the state folder should be")
    written = Journal(site.config).append(_record())
    assert written.stores == [] and set(written.spooled) == {"primary", "copy"}
    assert any("give the service user write access to [daemon] state_dir" in p for p in written.problems)


def test_the_catalog_lost_gets_its_runs_back_from_the_stores(site: Site) -> None:
    Journal(site.config).append(_record())
    (site.base / "catalog.sqlite").unlink()
    assert rtvault_json(site.config_path, "runs") == []
    synced = rtvault_json(site.config_path, "catalog", "sync")
    assert [s["runs_added"] for s in synced["stores"]] == [2, 0]  # the copy holds the same records: the run,
    # and the site's `init` (an action: journalled too)
    assert [r["job"] for r in rtvault_json(site.config_path, "runs")] == ["backup"]
    rtvault(site.config_path, "catalog", "rebuild")
    assert [r["job"] for r in rtvault_json(site.config_path, "runs")] == ["backup"]


def _tamper(segment: Path) -> None:
    document = json.loads(segment.read_text())
    document["result"] = "ok" if document["result"] != "ok" else "failed"
    segment.write_text(json.dumps(document))


def test_verify_finds_a_changed_segment_and_repair_brings_it_back(site: Site) -> None:
    Journal(site.config).append(_record(result="failed", error="disk full"))
    [name] = site.segments(site.copy)
    good = (site.copy / name).read_bytes()
    _tamper(site.copy / name)
    found = rtvault_json(site.config_path, "verify", "--store", "copy", "--all", expect=7)
    problems = {p["key"]: p for p in found["stores"][0]["problems"]}
    assert problems[name]["kind"] == "corrupt" and "integrity hash" in problems[name]["detail"]
    rtvault(site.config_path, "repair", "--store", "copy")
    assert (site.copy / name).read_bytes() == good


def test_replication_copies_a_missing_segment_and_never_a_damaged_one(site: Site) -> None:
    journal = Journal(site.config)
    journal.append(_record())
    journal.append(_record("catalog", minutes=1))
    first, second = sorted(site.segments(site.copy))
    (site.copy / first).unlink()
    _tamper(site.primary / second)
    (site.copy / second).unlink()
    done = rtvault_json(site.config_path, "replicate", expect=7)  # a damaged source file: problems found
    [pair] = done["pairs"]
    assert pair["journal_copied"] == 1
    assert (site.copy / first).read_bytes() == (site.primary / first).read_bytes()
    assert not (site.copy / second).exists()
    assert any(second in json.dumps(p) and "damaged on the source" in json.dumps(p) for p in pair["problems"])
