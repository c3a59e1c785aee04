"""Fault tests on directory stores: random objects, trees and an archive file of the primary corrupted (bytes
flipped) or deleted; `verify --all` finds exactly those, `repair` fixes every one from the secondary, then the
primary passes `check --read-data` and every patient version restores byte-identical."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from kit import store as storekit
from kit.copies import Copies, restore_everything
from rtvault.copies.repair import repair
from rtvault.copies.verify import load_state, store_keys, verify
from rtvault.jobs.maintenance import check_store
from rtvault.store.objects import data_key


def damage(copies: Copies, rng: random.Random) -> set[tuple[str, str]]:
    """Corrupt or delete random files of the primary; returns what verify must find: (key, kind)."""
    store = copies.primary
    keys = store_keys(store)
    trees = rng.sample([k for k in keys if k.startswith("trees/")], 3)
    intact = [t for t in keys if t.startswith("trees/") and t not in trees]
    # a deleted object is found through a tree that names it: take them among the objects of intact trees
    named = sorted({data_key(f.hash) for t in intact
                    for f in store.get_tree(t.rsplit("/", 1)[1]).files})
    objects = rng.sample(named, 10)
    tar = next(k for k in keys if k.startswith("archives/tars/"))
    for key in [*objects[:5], *trees[:2], tar]:
        storekit.flip(copies.primary_path, key, rng)
    for key in [*objects[5:], trees[2]]:
        storekit.lose(copies.primary_path, key)
    return ({(k, "corrupt") for k in [*objects[:5], *trees[:2], tar]}
            | {(k, "missing") for k in [*objects[5:], trees[2]]})


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_verify_finds_every_damage_and_repair_fixes_it(replicated: Copies, tmp_path: Path, seed: int) -> None:
    before = restore_everything(replicated.primary, tmp_path / "before")
    damaged = damage(replicated, random.Random(seed))
    report = verify(replicated.primary, all=True)
    assert {(p.key, p.kind) for p in report.problems} == damaged
    assert not check_store(replicated.primary, read_data=True).healthy

    fixed = repair(replicated.config, "primary")
    assert {(r["key"], r["kind"]) for r in fixed.repaired} == damaged and fixed.unrepairable == []
    assert {r["from"] for r in fixed.repaired} == {"secondary"}
    assert load_state(replicated.primary).problems == []
    assert check_store(replicated.primary, read_data=True).healthy
    assert verify(replicated.primary, all=True).healthy
    assert restore_everything(replicated.primary, tmp_path / "after") == before


def test_the_commands_catch_and_heal_the_damage(replicated: Copies) -> None:
    damaged = damage(replicated, random.Random(7))
    found = replicated.cli_json("verify", "--store", "primary", "--all", expect=7)["stores"][0]
    assert {(p["key"], p["kind"]) for p in found["problems"]} == damaged
    healed = replicated.cli_json("repair", "--store", "primary")
    assert len(healed["stores"][0]["repaired"]) == len(damaged) and healed["healthy"]
    replicated.cli("check", "--read-data")
