"""Self-repair: damage that verify found replaced from another store holding a good copy, and what cannot be
repaired (no good copy anywhere, a stray file) said so."""

from __future__ import annotations

import json
import shutil

from kit import store as storekit
from kit.copies import Copies
from kit.files import file_bytes
from rtvault.copies.repair import repair
from rtvault.copies.verify import load_state, store_keys, verify
from rtvault.jobs.maintenance import check_store
from rtvault.store.locks import WriterLock


def _first(copies: Copies, prefix: str) -> str:
    return next(k for k in store_keys(copies.primary) if k.startswith(prefix))


def test_a_corrupt_object_is_replaced_from_the_secondary(replicated: Copies) -> None:
    key = _first(replicated, "data/")
    good = storekit.read(replicated.primary_path, key)
    storekit.flip(replicated.primary_path, key)
    assert [p.key for p in verify(replicated.primary, all=True).problems] == [key]
    report = repair(replicated.config, "primary")
    assert report.repaired == [{"key": key, "kind": "corrupt", "from": "secondary"}] and report.healthy
    assert storekit.read(replicated.primary_path, key) == good
    assert load_state(replicated.primary).problems == []
    assert check_store(replicated.primary, read_data=True).healthy
    assert not (replicated.primary_path / "locks" / "writer.json").exists()


def test_a_damaged_manifest_and_archive_checksums_come_back(replicated: Copies) -> None:
    manifest = _first(replicated, "snapshots/")
    checksums = next(k for k in store_keys(replicated.primary) if k.endswith(".sha256"))
    good = {k: (replicated.primary_path / k).read_bytes() for k in (manifest, checksums)}
    (replicated.primary_path / manifest).write_text('{"id": "trunc')
    (replicated.primary_path / checksums).write_text("0" * 64 + "  Institution\n")
    problems = verify(replicated.primary, all=True).problems
    assert sorted((p.key, p.kind) for p in problems) == sorted([(manifest, "corrupt"), (checksums, "corrupt")])
    report = repair(replicated.config, "primary")
    assert sorted(r["key"] for r in report.repaired) == sorted(good)
    assert {k: (replicated.primary_path / k).read_bytes() for k in good} == good
    assert verify(replicated.primary, all=True).healthy


def test_nothing_to_repair_changes_nothing(replicated: Copies) -> None:
    verify(replicated.primary, all=True)
    before = file_bytes(replicated.primary_path)
    report = repair(replicated.config, "primary")
    assert report.repaired == report.unrepairable == [] and report.healthy
    assert file_bytes(replicated.primary_path) == before


def test_damage_on_every_store_is_reported_not_repaired(replicated: Copies) -> None:
    key = _first(replicated, "trees/")
    storekit.flip(replicated.primary_path, key)
    storekit.flip(replicated.secondary_path, key)
    verify(replicated.primary, all=True)
    report = repair(replicated.config, "primary")
    assert not report.healthy and report.repaired == []
    assert report.unrepairable[0]["key"] == key and "no good copy found (secondary)" in report.unrepairable[0]["detail"]
    assert [p.key for p in load_state(replicated.primary).problems] == [key]
    done = replicated.cli("repair", "--store", "primary", expect=7)
    assert "NOT REPAIRED" in done.stdout and key in done.stdout


def test_a_problem_fixed_meanwhile_is_only_cleared(replicated: Copies) -> None:
    key = _first(replicated, "data/")
    storekit.flip(replicated.primary_path, key)
    verify(replicated.primary, all=True)
    storekit.flip(replicated.primary_path, key)  # the same byte inverted back: good again, where it lies
    report = repair(replicated.config, "primary")
    assert report.already_good == [key] and report.repaired == []
    assert load_state(replicated.primary).problems == []


def test_a_stray_file_is_left_for_a_person(replicated: Copies) -> None:
    (replicated.primary_path / "data" / "ab" / "stray.txt").parent.mkdir(exist_ok=True)
    (replicated.primary_path / "data" / "ab" / "stray.txt").write_text("x")
    verify(replicated.primary, all=True)
    report = repair(replicated.config, "primary")
    assert report.unrepairable[0]["kind"] == "unexpected" and "delete it by hand" in report.unrepairable[0]["detail"]
    assert (replicated.primary_path / "data" / "ab" / "stray.txt").exists()


def test_repair_waits_for_no_one_but_refuses_a_held_lock(replicated: Copies) -> None:
    key = _first(replicated, "data/")
    storekit.flip(replicated.primary_path, key)
    verify(replicated.primary, all=True)
    with WriterLock(replicated.primary.backend, "backup", 60):
        done = replicated.cli("repair", "--store", "primary", "--json", expect=6)
    assert "locked by backup" in json.loads(done.stdout)["error"]["message"]
    assert replicated.cli_json("repair", "--store", "primary")["healthy"]


def test_verify_repairs_at_once_when_configured(replicated: Copies) -> None:
    replicated.configure(repair=True)
    key = _first(replicated, "archives/tars/")
    storekit.flip(replicated.primary_path, key)
    data = replicated.cli_json("verify", "--store", "primary", "--all")
    primary = data["stores"][0]
    assert data["healthy"] and primary["problems"] == []
    assert primary["repair"]["repaired"] == [{"key": key, "kind": "corrupt", "from": "secondary"}]
    text = replicated.cli("verify", "--all").stdout  # both stores, nothing left to repair
    assert "primary: verified" in text and "secondary: verified" in text


def test_an_unreachable_copy_is_a_warning_and_the_damage_stays(replicated: Copies) -> None:
    key = _first(replicated, "data/")
    storekit.flip(replicated.primary_path, key)
    verify(replicated.primary, all=True)
    shutil.rmtree(replicated.secondary_path)
    report = repair(replicated.config, "primary")
    assert report.unrepairable[0]["key"] == key
    assert "no other store is configured or reachable" in report.unrepairable[0]["detail"]
    assert report.warnings[0].file == "secondary"
