"""Rolling verification of one store: slices, cursor and cycles kept in the store, budgets, and the problems
a verify finds (corrupt, missing, unexpected) kept until a later verify finds the key good again."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from kit import store as storekit
from kit.copies import Copies
from rtvault.copies.verify import (
    STATE_KEY,
    Budget,
    load_state,
    parse_budget,
    store_keys,
    verify,
)
from rtvault.errors import InputError
from rtvault.store import Store
from rtvault.store.backend import DirectoryBackend
from rtvault.store.locks import WriterLock
from rtvault.store.objects import data_key
from rtvault.utc import iso

DAY = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)


def test_a_store_never_verified_has_an_empty_state(copies: Copies) -> None:
    state = load_state(copies.primary)
    assert state.last_run is None and state.cursor is None and state.problems == []


def test_verify_all_reads_every_file_and_completes_a_cycle(copies: Copies) -> None:
    keys = store_keys(copies.primary)
    assert any(k.startswith("archives/tars/") for k in keys) and any(k.startswith("snapshots/") for k in keys)
    report = verify(copies.primary, all=True, now=DAY)
    assert report.healthy and report.objects_verified == report.total == len(keys)
    assert report.coverage_percent == 100.0 and report.cycle_completed
    stored = sum(storekit.where(copies.primary_path, key).length for key in keys)  # a pack's slice, or a file
    assert report.bytes == stored
    state = json.loads((copies.primary_path / STATE_KEY).read_text())
    assert state["last_cycle_completed"] == state["last_run"] == iso(DAY)
    assert state["problems"] == []


def test_three_daily_runs_cover_a_three_day_cycle_exactly_once(copies: Copies) -> None:
    keys = store_keys(copies.primary)
    share = math.ceil(len(keys) / 3)
    counts, cursors = [], []
    for day in range(3):
        report = verify(copies.primary, cycle_days=3, now=DAY + timedelta(days=day))
        counts.append(report.objects_verified)
        cursors.append(load_state(copies.primary).cursor)  # read back from the store: survives between runs
        assert report.cycle_completed == (day == 2)
    assert counts == [share, share, len(keys) - 2 * share] and sum(counts) == len(keys)
    assert cursors == [keys[share - 1], keys[2 * share - 1], None]
    state = load_state(copies.primary)
    assert state.cycle_started == iso(DAY)
    assert state.last_cycle_completed == iso(DAY + timedelta(days=2))
    fourth = verify(copies.primary, cycle_days=3, now=DAY + timedelta(days=3))
    assert fourth.objects_verified == share and not fourth.cycle_completed
    state = load_state(copies.primary)
    assert state.cycle_started == iso(DAY + timedelta(days=3))
    assert state.verified_this_cycle == share and state.cursor == keys[share - 1]
    assert fourth.coverage_percent == round(100 * share / len(keys), 1)


@pytest.mark.parametrize(("text", "budget"), [("90s", Budget(seconds=90)), ("10m", Budget(seconds=600)),
                                              ("2h", Budget(seconds=7200)), ("1d", Budget(seconds=86400)),
                                              ("5%", Budget(percent=5)), (" 12.5 % ", Budget(percent=12.5)),
                                              (None, Budget()), ("", Budget())])
def test_budgets_parse(text: str | None, budget: Budget) -> None:
    assert parse_budget(text) == budget


@pytest.mark.parametrize("text", ["10", "ten minutes", "0%", "150%", "-5m", "0s", "5 weeks", "%"])
def test_a_wrong_budget_says_what_is_expected(text: str) -> None:
    with pytest.raises(InputError, match=r"neither a duration \(90s, 10m, 2h, 1d\) nor a percentage"):
        parse_budget(text)


def test_a_percentage_budget_verifies_that_share_and_a_duration_goes_on_to_the_end(copies: Copies) -> None:
    total = len(store_keys(copies.primary))
    assert verify(copies.primary, budget=Budget(percent=10), now=DAY).objects_verified == math.ceil(total / 10)
    rest = verify(copies.primary, budget=Budget(seconds=3600), now=DAY + timedelta(days=1))
    assert rest.objects_verified == total - math.ceil(total / 10) and rest.cycle_completed


def test_verify_runs_while_a_writer_holds_the_lock(copies: Copies) -> None:
    with WriterLock(copies.primary.backend, "backup", 60):
        assert verify(copies.primary, all=True).healthy


def test_a_corrupt_object_stays_a_problem_until_a_verify_finds_it_good(copies: Copies) -> None:
    key = next(k for k in store_keys(copies.primary) if k.startswith("data/"))
    storekit.flip(copies.primary_path, key)
    first = verify(copies.primary, all=True, now=DAY)
    assert [(p.key, p.kind) for p in first.problems] == [(key, "corrupt")]
    keys = store_keys(copies.primary)
    # a rolling run whose slice does not hold the key re-checks it all the same: still corrupt, first date kept
    later = verify(copies.primary, budget=Budget(percent=1), now=DAY + timedelta(days=1))
    assert key not in keys[:later.objects_verified]
    assert [(p.key, p.found) for p in later.problems] == [(key, iso(DAY))]
    storekit.flip(copies.primary_path, key)  # the same byte inverted back: good again
    assert verify(copies.primary, budget=Budget(percent=1), now=DAY + timedelta(days=2)).problems == []
    assert load_state(copies.primary).problems == []


def test_missing_files_are_found_through_what_names_them(copies: Copies) -> None:
    manifest = copies.primary.manifests()[-1]
    tree = copies.primary.get_tree(manifest.patients[0].tree)
    gone = data_key(tree.files[0].hash)
    storekit.lose(copies.primary_path, gone)
    problems = verify(copies.primary, all=True, now=DAY).problems
    assert [(p.key, p.kind) for p in problems] == [(gone, "missing")]
    assert problems[0].needed_by is not None and problems[0].needed_by.startswith("snapshots/")


def test_stray_files_are_unexpected_until_removed(copies: Copies) -> None:
    strays = ["data/ab/not-a-hash", "data/00/" + "ab" * 32, "notes.txt", "snapshots/readme", "archives/x.bin"]
    for stray in strays:
        (copies.primary_path / stray).parent.mkdir(parents=True, exist_ok=True)
        (copies.primary_path / stray).write_text("hello")
    problems = verify(copies.primary, all=True, now=DAY).problems
    assert sorted((p.key, p.kind) for p in problems) == sorted((s, "unexpected") for s in strays)
    for stray in strays:
        (copies.primary_path / stray).unlink()
    assert verify(copies.primary, budget=Budget(percent=1), now=DAY).problems == []


def test_a_damaged_state_file_only_costs_the_cursor(copies: Copies) -> None:
    verify(copies.primary, cycle_days=3, now=DAY)
    (copies.primary_path / STATE_KEY).write_text("{not json")
    assert load_state(copies.primary).problems[0].key == STATE_KEY
    report = verify(copies.primary, cycle_days=3, now=DAY + timedelta(days=1))
    assert report.healthy and load_state(copies.primary).verified_this_cycle == report.objects_verified


def test_the_verify_command(copies: Copies) -> None:
    data = copies.cli_json("verify", "--store", "primary", "--all")
    assert data["healthy"] and data["stores"][0]["store"] == "primary"
    assert data["stores"][0]["coverage_percent"] == 100.0 and data["stores"][0]["bytes"] > 0
    done = copies.cli("verify", "--budget", "soon", expect=4)
    assert "neither a duration" in done.stderr
    assert "no store named 'nas3' (configured: primary, secondary)" in copies.cli("verify", "--store", "nas3",
                                                                                 expect=3).stderr
    key = next(k for k in store_keys(copies.primary) if k.startswith("trees/"))
    storekit.flip(copies.primary_path, key)
    done = copies.cli("verify", "--store", "primary", "--all", expect=7)
    assert key in done.stdout and "corrupt" in done.stdout


def test_two_verifies_at_once_leave_a_readable_state(copies: Copies) -> None:
    # no lock between verifies: each saves the state it computed and the last one wins, never a torn file
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda day: verify(copies.primary, cycle_days=3, now=DAY + timedelta(days=day)),
                                [0, 1]))
    state = load_state(copies.primary)
    assert all(r.healthy for r in reports) and state.problems == []
    assert state.verified_this_cycle in {r.objects_verified for r in reports} | {sum(r.objects_verified
                                                                                       for r in reports)}


class FolderListingOnly(DirectoryBackend):
    """A backend that lists folders but not the whole store at once (as S3 under a prefix may)."""

    def list(self, prefix: str) -> Iterator[str]:
        return iter(()) if prefix == "" else super().list(prefix)


def test_a_backend_without_a_whole_store_listing_is_verified_all_the_same(copies: Copies) -> None:
    keys = store_keys(copies.primary)
    store = Store.of(FolderListingOnly(copies.primary_path), copies.primary.info)
    assert store_keys(store) == keys
    assert verify(store, all=True).objects_verified == len(keys)


def test_an_unreachable_store_fails_alone(copies: Copies) -> None:
    shutil.rmtree(copies.secondary_path)  # an unmounted NAS
    done = copies.cli("verify", "--json", expect=8)
    primary, secondary = json.loads(done.stdout)["stores"]
    assert primary["healthy"] and primary["objects_verified"] > 0
    assert not secondary["healthy"] and "does not exist" in secondary["error"]
