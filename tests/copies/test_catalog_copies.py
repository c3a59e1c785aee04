"""The catalog records every store's copy of every patient version, and an unreachable store never makes the
catalog forget what that store holds (nor shows it by another name)."""

from __future__ import annotations

import shutil

import pytest

from kit.copies import Copies
from rtvault.catalog.search import Criteria, search
from rtvault.configured import open_catalog_for, store_labels
from rtvault.errors import StoreError
from rtvault.jobs.catalog import rebuild_all, refresh


def _stores_of_each_patient(copies: Copies) -> dict[str, set[str]]:
    with open_catalog_for(copies.config) as db:
        found = search(db, Criteria(), per_page=200, shown=store_labels(copies.config, db)).patients
    return {p["path"]: {loc["store"] for loc in p["locations"]} for p in found}


def test_copies_show_per_patient_and_survive_an_unmounted_store(replicated: Copies) -> None:
    summaries = refresh(replicated.config)
    assert [s.problems for s in summaries] == [[], []]
    before = _stores_of_each_patient(replicated)
    assert before and all(stores == {"primary", "secondary"} for stores in before.values())

    shutil.rmtree(replicated.secondary_path)  # the secondary NAS is not mounted
    summaries = refresh(replicated.config)
    problems = [p for s in summaries for p in s.problems]
    assert len(problems) == 1 and "store secondary not indexed" in problems[0]
    assert _stores_of_each_patient(replicated) == before  # its copies are still known, not forgotten
    with pytest.raises(StoreError, match="rebuild once every store is reachable"):
        rebuild_all(replicated.config)
    assert _stores_of_each_patient(replicated) == before
