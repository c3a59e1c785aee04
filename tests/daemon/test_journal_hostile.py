"""The run journal against damaged and hostile segments in a store's `journal/`: sealed by hand with fields its
readers cannot use, nested too deep for the JSON parser; and the text `rtvault runs` shows for a job's error.
None of them may stop `catalog sync`, `verify`, `rtvault runs` or the daemon's start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kit.cli import rtvault, rtvault_json
from kit.daemon import Site, make_site
from rtvault.jobs.daemon import Daemon
from rtvault.jobs.journal import Journal, run_record, spooled
from rtvault.store import journal

WRITER = "20261207T090000Z-0badf00d"
FAKE_PREV = "sha256:" + "0" * 64  # a well-formed `prev`: these tests are about the records' fields, not the chain
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
def site(tmp_path: Path, small_db: Path) -> Site:
    return make_site(tmp_path, small_db)


def _sealed(store: Path, seq: int, **fields: object) -> str:
    """A segment sealed as rtvault seals one (a valid integrity hash), holding a run with `fields` changed."""
    record = {**run_record("backup", "schedule", T0, T0 + timedelta(seconds=42), "failed", "", {}), **fields}
    record_id = journal.segment_id(WRITER, seq)
    path = store / journal.segment_key(record_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(journal.encode(record_id, record, None if seq == 1 else FAKE_PREV))
    return journal.segment_key(record_id)


HOSTILE = [{"start": "garbage"}, {"start": "2026-12-07T09:00:00"}, {"duration_s": None}, {"result": None},
           {"job": 5}, {"end": 1765098000}]


def test_a_sealed_run_record_with_unusable_fields_is_damaged_not_a_crash(site: Site) -> None:
    keys = [_sealed(site.primary, seq, **fields) for seq, fields in enumerate(HOSTILE, 1)]
    good = Journal(site.config).append(run_record("verify", "schedule", T0, T0, "ok", "", {}))
    synced = rtvault(site.config_path, "catalog", "sync", expect=9)  # partial: segments not indexed, named
    for key in keys:
        assert f"{key}: not indexed: run record field" in synced.stdout + synced.stderr
    assert [r["id"] for r in rtvault_json(site.config_path, "runs")] == [good.id]
    assert "garbage" not in rtvault(site.config_path, "runs").stdout
    found = rtvault_json(site.config_path, "verify", "--store", "primary", "--all", expect=7)
    corrupt = {p["key"] for p in found["stores"][0]["problems"] if p["kind"] == "corrupt"}
    assert corrupt == set(keys)
    assert Daemon(site.config)._last_started() == {"verify": T0}  # the catch-up reads the runs it can use


def test_a_segment_nested_too_deep_is_damaged_not_a_crash(site: Site) -> None:
    key = journal.segment_key(journal.segment_id(WRITER, 1))
    (site.primary / key).parent.mkdir(parents=True)
    (site.primary / key).write_text("[" * 100_000 + "]" * 100_000)
    synced = rtvault(site.config_path, "catalog", "sync", expect=9)
    assert f"{key}: not indexed: not a JSON document rtvault wrote (nested too deep)" in synced.stdout + synced.stderr
    found = rtvault_json(site.config_path, "verify", "--store", "primary", "--all", expect=7)
    assert [(p["key"], p["kind"]) for p in found["stores"][0]["problems"]] == [(key, "corrupt")]
    assert Daemon(site.config)._last_started() == {}


def test_rtvault_runs_shows_each_line_of_an_error_under_its_run_escaped(site: Site) -> None:
    error = "backup: rtvault: error: source /mnt/pinnacle is gone\n\x1b]0;owned\x07\x1b[2Jmount it again"
    Journal(site.config).append(run_record("backup", "schedule", T0, T0, "failed", error, {}))
    lines = rtvault(site.config_path, "runs").stdout.splitlines()
    assert lines[1:] == ["    backup: rtvault: error: source /mnt/pinnacle is gone",
                         "    \\x1b]0;owned\\x07\\x1b[2Jmount it again"]
    assert lines[0].endswith("failed           0.0 s  schedule")


def test_a_damaged_spooled_record_is_set_aside_and_the_others_are_sent(site: Site) -> None:
    unmounted = site.base / "copy-unmounted"
    site.copy.rename(unmounted)
    writer = Journal(site.config)
    ids = [writer.append(run_record("backup", "schedule", T0, T0, "ok", "", {})).id for _ in range(3)]
    first = spooled(site.config)["copy"][0]
    first.write_text(first.read_text().replace('"ok"', '"failed"'))  # changed on the local disk
    unmounted.rename(site.copy)
    [said] = writer.flush()
    assert said.startswith(f"spooled journal record {first.name} for store copy is damaged (")
    assert said.endswith(f"set aside as {first}.damaged (the stores that were up when it was written hold it); "
                         "delete it once looked at")
    assert spooled(site.config) == {} and writer.flush() == []  # said once, never retried
    assert sorted(site.segments(site.copy)) == [journal.segment_key(i) for i in ids[1:]]


ALERTS_HOSTILE = [{"time": "yesterday"}, {"changes": []}, {"changes": "CRITICAL"},
                  {"changes": [{"check": "space:primary", "status": "ON FIRE", "previous": None, "message": ""}]},
                  {"changes": [{"check": 7, "status": "CRITICAL", "previous": "OK", "message": ""}]}]


def test_a_sealed_alert_record_with_unusable_fields_is_damaged_and_left_out_of_the_report(site: Site) -> None:
    keys = []
    for seq, fields in enumerate(ALERTS_HOSTILE, 1):
        record = {"kind": "alert", "time": "2026-12-07T09:00:00Z", "channels": [], "queued": [],
                  "changes": [{"check": "source:pinnacle", "status": "CRITICAL", "previous": "OK", "message": "x"}],
                  **fields}
        record_id = journal.segment_id(WRITER, seq)
        (site.primary / journal.segment_key(record_id)).parent.mkdir(parents=True, exist_ok=True)
        (site.primary / journal.segment_key(record_id)).write_bytes(
            journal.encode(record_id, record, None if seq == 1 else FAKE_PREV))
        keys.append(journal.segment_key(record_id))
    synced = rtvault(site.config_path, "catalog", "sync", expect=9)
    for key in keys:
        assert f"{key}: not indexed: alert record" in synced.stdout + synced.stderr
    found = rtvault_json(site.config_path, "report", "--month", "2026-12", "--out", site.base / "r.html")
    assert found["alerts"] == []
    verified = rtvault_json(site.config_path, "verify", "--store", "primary", "--all", expect=7)
    assert {p["key"] for p in verified["stores"][0]["problems"] if p["kind"] == "corrupt"} == set(keys)


CERTIFICATE = {"archive": "ab" * 32, "reason": "retention over", "rule": "R1112-7", "decided": "2026-12-07T09:00:00Z",
               "by": {"user": "root", "host": "h"}, "complete": False, "patients": [{"path": "Patient_1"}],
               "copies": [{"kind": "store", "place": "primary", "removed": "2026-12-07T09:00:01Z"},
                          {"kind": "volume", "place": "usb-a", "removed": None}]}
DESTRUCTIONS_HOSTILE = [{"archive": "3f2a9c"}, {"reason": " "}, {"by": {"user": "root"}}, {"decided": "yesterday"},
                        {"complete": "no"}, {"patients": "Patient_1"},
                        {"copies": [{"kind": "cloud", "place": "x", "removed": None}]},
                        {"copies": [{"kind": "store", "place": "x", "removed": "2026-12-07"}]}]


def test_a_sealed_destruction_record_with_unusable_fields_is_damaged(site: Site) -> None:
    """A destruction certificate sealed by hand without what it must prove (what, where, when, who, why)."""
    keys = []
    for seq, fields in enumerate([{}, *DESTRUCTIONS_HOSTILE], 1):
        record = {"kind": "destruction", "time": "2026-12-07T09:00:02Z", "stage": "decided",
                  "certificate": {**CERTIFICATE, **fields}}
        record_id = journal.segment_id(WRITER, seq)
        (site.primary / journal.segment_key(record_id)).parent.mkdir(parents=True, exist_ok=True)
        (site.primary / journal.segment_key(record_id)).write_bytes(
            journal.encode(record_id, record, None if seq == 1 else FAKE_PREV))
        keys.append(journal.segment_key(record_id))
    verified = rtvault_json(site.config_path, "verify", "--store", "primary", "--all", expect=7)
    assert {p["key"] for p in verified["stores"][0]["problems"] if p["kind"] == "corrupt"} == set(keys[1:])
