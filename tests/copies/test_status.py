"""`rtvault status`: a patient version on one store before replication, on two after; lag after a new backup;
an unmounted store; verified copies."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

from kit import store as storekit
from kit.copies import Copies
from rtvault.copies.status import store_status
from rtvault.store.objects import data_key


def stores(report: dict) -> dict[str, dict]:
    return {s["name"]: s for s in report["stores"]}


def test_one_copy_before_replication_two_after(copies: Copies):
    before = copies.cli_json("status", expect=7)
    assert not before["ok"] and before["versions"] > 0 and before["archives"] == 1
    single = {(i["key"], i["tree"]) for i in before["too_few_copies"] if i["kind"] == "patient"}
    assert len(single) == before["versions"] and all(i["stores"] == ["primary"] for i in before["too_few_copies"])
    assert stores(before)["secondary"]["lag_snapshots"] == 2
    assert stores(before)["secondary"]["last_replication"] is None

    copies.cli("replicate")
    after = copies.cli_json("status")
    assert after["ok"] and after["too_few_copies"] == []
    secondary = stores(after)["secondary"]
    assert (secondary["lag_snapshots"], secondary["lag_archives"], secondary["lag_age_s"]) == (0, 0, None)
    assert secondary["last_replication"] and secondary["objects"] == stores(after)["primary"]["objects"] > 0
    assert secondary["free_bytes"] > 0 and secondary["bytes"] > 0
    # never verified: nothing has two verified copies yet, which is reported without failing the status
    assert len(after["too_few_verified"]) == after["versions"] + after["archives"] and not after["verified_ok"]
    text = copies.cli("status").stdout
    assert "copy of primary" in text and "up to date" in text and "0 with fewer than two copies" in text


def test_a_new_backup_shows_as_lag_until_replicated(replicated: Copies):
    replicated.evolve(2)
    replicated.backup()
    report = store_status(replicated.config)
    secondary = next(s for s in report.stores if s.name == "secondary")
    assert secondary.lag_snapshots == 1 and secondary.lag_age_s is not None and secondary.lag_age_s >= 0
    newest = replicated.primary.manifests()[-1].id
    patients = [i for i in report.too_few_copies if i.kind == "patient"]
    assert patients and all(i.snapshot == newest for i in patients)


def test_an_unmounted_store_is_reported_and_fails_the_status(replicated: Copies):
    shutil.rmtree(replicated.secondary_path)
    done = replicated.cli("status", "--json", expect=7)
    secondary = stores(json.loads(done.stdout))["secondary"]
    assert not secondary["available"] and "does not exist" in secondary["error"]
    assert "UNAVAILABLE" in replicated.cli("status", expect=7).stdout


def test_verified_copies_count_only_stores_verified_within_the_cycle(replicated: Copies):
    verify = __import__("pytest").importorskip("rtvault.copies.verify")
    for store in (replicated.primary, replicated.secondary):
        verify.verify(store, all=True)
    report = store_status(replicated.config)
    assert report.ok and report.too_few_verified == []

    later = store_status(replicated.config, now=datetime.now(UTC) + timedelta(days=31))  # cycle_days = 30
    assert len(later.too_few_verified) == later.versions + later.archives

    latest = replicated.secondary.manifests()[-1].patients[0]
    damaged = data_key(replicated.secondary.get_tree(latest.tree).files[0].hash)
    storekit.flip(replicated.secondary_path, damaged)
    verify.verify(replicated.secondary, all=True)
    short = store_status(replicated.config).too_few_verified
    assert (latest.path, latest.tree) in {(i.key, i.tree) for i in short}
    assert all(i.verified_stores == ["primary"] for i in short)


def test_status_gives_the_age_of_the_newest_snapshot_and_fails_when_backups_stopped(replicated: Copies):
    newest = replicated.primary.manifests()[-1]
    fresh = store_status(replicated.config)
    assert fresh.ok and fresh.backups_ok and fresh.newest_snapshot == newest.id
    assert fresh.newest_snapshot_store == "primary" and 0 <= fresh.newest_snapshot_age_s < 600
    text = replicated.cli("status").stdout
    assert f"newest snapshot: {newest.id} in primary, taken " in text

    stale = store_status(replicated.config, now=datetime.now(UTC) + timedelta(hours=7))  # backup_max_age 6h
    assert not stale.ok and not stale.backups_ok and stale.verdict().code == 7
    assert stale.too_few_copies == [] and all(s.available for s in stale.stores)  # only the backups are wrong
    [warning] = stale.warnings()
    assert warning.startswith(f"backups have stopped: the newest snapshot ({newest.id} in primary) was taken 7h")
    assert "beyond [health] backup_max_age (6h 00m)" in warning and "rtvault daemon" in warning
    assert "beyond [health] backup_max_age" in "\n".join(line.text for line in stale.lines())
    data = stale.to_json()
    assert data["ok"] is False and data["backups_ok"] is False and data["newest_snapshot"] == newest.id


def test_status_with_stores_but_no_backup_yet_is_not_all_well(copies: Copies):
    for snapshot in (copies.primary_path / "snapshots").glob("*.json"):
        snapshot.unlink()
    done = copies.cli("status", expect=7)
    assert "rtvault: warning: no backup yet" in done.stderr and "run `rtvault backup`" in done.stderr
