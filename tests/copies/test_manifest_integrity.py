"""Snapshot manifests carry their own integrity hash: a change that keeps a manifest valid JSON (a patient's name,
a tree hash) is found by check and verify, repaired from a copy recognised by its hash, never replicated, and
a problem that a hand fix removed leaves the verification state."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from kit.copies import Copies
from rtvault.copies.repair import repair
from rtvault.copies.verify import Budget, load_state, store_keys, verify
from rtvault.jobs.maintenance import check_store
from rtvault.store import integrity
from rtvault.store.repository import snapshot_key


def _edit(path: Path, change: Callable[[dict], None]) -> None:
    """Change a manifest by hand as a person (or bit rot that happens to keep JSON valid) would."""
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest, indent=1) + "\n")


def _rename(manifest: dict) -> None:
    manifest["patients"][0]["last_name"] = "SOMEONE-ELSE"


def _retarget(manifest: dict) -> None:
    manifest["patients"][0]["tree"] = "0" * 64


def _latest(copies: Copies) -> str:
    return snapshot_key(copies.primary.manifests()[-1].id)


def test_every_manifest_written_carries_a_matching_integrity_hash(copies: Copies) -> None:
    for manifest in copies.primary.manifests():
        assert manifest.integrity and manifest.integrity.startswith("sha256:") and integrity.sealed(manifest.to_json())
    raw = json.loads((copies.primary_path / _latest(copies)).read_text())
    assert integrity.sealed(json.loads(json.dumps(raw)))  # re-indented or compacted: the same content
    assert check_store(copies.primary).without_integrity == []


def test_a_renamed_patient_in_a_manifest_is_found_by_check_and_verify(copies: Copies) -> None:
    key = _latest(copies)
    _edit(copies.primary_path / key, _rename)

    report = check_store(copies.primary)
    assert [p.file for p in report.problems] == [key] and "integrity hash" in report.problems[0].message
    done = copies.cli("check", "--store", "primary", expect=7)
    assert key in done.stdout and "integrity hash" in done.stdout
    problems = verify(copies.primary, all=True).problems
    assert [(p.key, p.kind) for p in problems] == [(key, "corrupt")] and "integrity hash" in problems[0].detail


def test_a_manifest_changed_but_still_json_is_repaired_from_the_copy(replicated: Copies) -> None:
    renamed, retargeted = (snapshot_key(m.id) for m in replicated.primary.manifests())
    good = {k: (replicated.primary_path / k).read_bytes() for k in (renamed, retargeted)}
    _edit(replicated.primary_path / renamed, _rename)
    _edit(replicated.primary_path / retargeted, _retarget)  # names a tree that no store holds
    problems = verify(replicated.primary, all=True).problems
    assert sorted((p.key, p.kind) for p in problems) == sorted([(renamed, "corrupt"), (retargeted, "corrupt")])

    report = repair(replicated.config, "primary")

    assert report.healthy and sorted(r["key"] for r in report.repaired) == sorted(good)
    assert {k: (replicated.primary_path / k).read_bytes() for k in good} == good
    assert load_state(replicated.primary).problems == []
    assert verify(replicated.primary, all=True).healthy and check_store(replicated.primary).healthy


def test_a_changed_manifest_is_not_replicated(copies: Copies) -> None:
    key = _latest(copies)
    _edit(copies.primary_path / key, _rename)
    summary = copies.replicate()
    assert not (copies.secondary_path / key).exists()
    assert any(p.file == key and "integrity hash" in p.message for p in summary.problems)  # type: ignore[attr-defined]


def test_a_hand_fixed_manifest_leaves_no_stale_problem(copies: Copies) -> None:
    key = _latest(copies)
    good = (copies.primary_path / key).read_bytes()
    _edit(copies.primary_path / key, _retarget)
    assert [p.key for p in verify(copies.primary, all=True).problems] == [key]
    (copies.primary_path / key).write_bytes(good)  # put back by hand

    later = verify(copies.primary, budget=Budget(percent=1))  # a slice that does not hold the manifest
    assert later.problems == [] and load_state(copies.primary).problems == []


def _unsealed(manifest: dict) -> None:
    manifest.pop("integrity")


def test_an_old_manifest_without_integrity_hash_is_accepted_and_reported_by_check(copies: Copies) -> None:
    key = _latest(copies)
    _edit(copies.primary_path / key, _unsealed)
    report = check_store(copies.primary)
    assert report.healthy and report.without_integrity == [key]
    done = copies.cli("check", "--store", "primary")
    assert "written before integrity hashes" in done.stdout and key in done.stdout
    assert verify(copies.primary, all=True).healthy


def test_a_missing_tree_named_by_an_old_manifest_goes_once_the_manifest_is_fixed(copies: Copies) -> None:
    key = _latest(copies)
    _edit(copies.primary_path / key, _unsealed)
    good = (copies.primary_path / key).read_bytes()
    _edit(copies.primary_path / key, _retarget)  # an old manifest: only the tree it names is seen missing
    problems = verify(copies.primary, all=True).problems
    assert [(p.key, p.kind, p.needed_by) for p in problems] == [(f"trees/00/{'0' * 64}", "missing", key)]
    (copies.primary_path / key).write_bytes(good)

    assert verify(copies.primary, budget=Budget(percent=1)).problems == []
    assert load_state(copies.primary).problems == []


def test_an_archive_index_changed_but_still_json_is_found_and_repaired(replicated: Copies) -> None:
    record = next(k for k in store_keys(replicated.primary) if k.startswith("archives/") and k.count("/") == 1
                  and k.endswith(".json"))
    summary = record.replace("archives/", "archives/summaries/")
    good = {k: (replicated.primary_path / k).read_bytes() for k in (record, summary)}
    for key in good:
        _edit(replicated.primary_path / key, lambda index: index["patients"][0].update(last_name="SOMEONE-ELSE"))

    assert [p.file for p in check_store(replicated.primary).problems] == [record]
    problems = verify(replicated.primary, all=True).problems
    assert sorted((p.key, p.kind) for p in problems) == sorted((k, "corrupt") for k in good)
    assert all("integrity hash" in p.detail for p in problems)

    report = repair(replicated.config, "primary")

    assert report.healthy and sorted(r["key"] for r in report.repaired) == sorted(good)
    assert {k: (replicated.primary_path / k).read_bytes() for k in good} == good
    assert verify(replicated.primary, all=True).healthy
