"""Replication: the secondary becomes a complete, healthy copy that restores every patient byte-identical;
later runs copy only what is new; a damaged source object is refused, never propagated; a missing store fails
its own pair only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from kit import store as storekit
from kit.copies import Copies
from kit.files import file_bytes
from rtvault.copies.replicate import copies_key, replicate
from rtvault.jobs.maintenance import check_store
from rtvault.store.objects import data_key


def keys(path: Path, folder: str) -> set[str]:
    return set(storekit.keys(path, f"{folder}/"))


def restore_all(copies: Copies, store: str, to: Path) -> dict[str, bytes]:
    copies.cli("restore", "--all", "--store", store, "--to", str(to))
    return file_bytes(to)


def test_replicate_makes_a_complete_copy_that_restores_every_patient(copies: Copies, tmp_path: Path):
    pair = copies.cli_json("replicate")["pairs"][0]
    assert (pair["from"], pair["to"], pair["complete"]) == ("primary", "secondary", True)
    assert pair["objects_copied"] == len(keys(copies.primary_path, "data")) > 0
    assert (pair["snapshots_copied"], pair["archives_copied"], pair["lag_snapshots"]) == (2, 1, 0)
    for folder in ("data", "trees", "snapshots", "archives"):
        assert keys(copies.secondary_path, folder) == keys(copies.primary_path, folder)
    # the copy packs its small objects and trees too: a few files, not one per object
    packed = keys(copies.secondary_path, "data") | keys(copies.secondary_path, "trees")
    assert len(storekit.stored_files(copies.secondary_path)) < len(packed) // 20
    assert not (copies.secondary_path / "locks" / "writer.json").exists()
    assert copies.secondary.backend.exists(copies_key(copies.primary.info["id"]))
    assert copies.secondary.info["id"] != copies.primary.info["id"]  # a copy, not a clone
    copies.cli("check", "--read-data", "--store", "secondary")

    restored = restore_all(copies, "secondary", tmp_path / "from-secondary")
    assert restored == restore_all(copies, "primary", tmp_path / "from-primary")
    assert {"/".join(name.split("/")[:3]) for name in restored if name.count("/") > 2} == set(copies.patient_paths())
    archived = copies.primary.manifests()[0].patients
    gone = next(p.path for p in archived if p.path not in copies.patient_paths())
    copies.cli("restore", "--patient", gone, "--from-archive", "--store", "secondary", "--to",
               str(tmp_path / "archived"))
    assert file_bytes(tmp_path / "archived" / gone)

    again = copies.cli_json("replicate")["pairs"][0]
    assert (again["objects_copied"], again["trees_copied"], again["bytes_copied"], again["complete"]) == (0, 0, 0, True)


def test_after_a_day_only_the_new_objects_are_copied(replicated: Copies):
    before = {f: keys(replicated.primary_path, f) for f in ("data", "trees", "snapshots")}
    replicated.evolve(2)
    replicated.backup()
    new = {f: keys(replicated.primary_path, f) - before[f] for f in before}
    summary = replicated.replicate()
    assert summary.objects_copied == len(new["data"]) > 0
    assert (summary.trees_copied, summary.snapshots_copied) == (len(new["trees"]), 1)
    assert summary.complete and check_store(replicated.secondary, read_data=True).healthy


def test_a_damaged_source_object_is_refused_and_reported(copies: Copies):
    latest = copies.primary.manifests()[-1]
    tree = copies.primary.get_tree(latest.patients[0].tree)
    damaged = data_key(tree.files[0].hash)
    storekit.flip(copies.primary_path, damaged)

    summary = replicate(copies.primary, copies.secondary)
    assert [p.file for p in summary.problems if "damaged on the source" in p.message] == [damaged]
    assert not copies.secondary.backend.exists(damaged)
    assert summary.lag_snapshots >= 1 and not summary.complete  # the snapshots naming it wait for a good copy
    assert check_store(copies.secondary, read_data=True).healthy
    done = copies.cli("replicate", expect=7)
    assert damaged in done.stderr


def test_a_missing_target_fails_its_pair_only_and_the_copy_serves_without_the_primary(copies: Copies,
                                                                                      tmp_path: Path):
    with copies.config_path.open("a") as config:
        config.write(f'\n[stores.usb]\npath = "{tmp_path / "unmounted"}"\ncopy_of = "primary"\n')
    done = copies.cli("replicate", "--json", expect=8)
    assert "usb" in done.stderr and "unmounted" in done.stderr
    pairs = {p["to"]: p for p in json.loads(done.stdout)["pairs"]}
    assert pairs["secondary"]["complete"] and pairs["usb"]["exit_code"] == 8

    expected = restore_all(copies, "primary", tmp_path / "before")
    shutil.rmtree(copies.primary_path)
    assert restore_all(copies, "secondary", tmp_path / "after") == expected
    assert "primary" in copies.cli("replicate", "--to", "secondary", expect=8).stderr
