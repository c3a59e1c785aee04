"""Retention rules: golden cases (expected results written by hand) and properties.

Each tests/store/golden/retention/*.json holds a "description", all six "rules" counts, "snapshots" as
[id, ISO time] pairs in input order, and the "expected" decisions newest first as {"id", "keep", "reasons"}.
To add a case, write the expected result by reasoning, never by running `apply_retention`.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtvault.config.settings import Retention
from rtvault.store.formats import Manifest, PatientEntry
from rtvault.store.retention import KEEP_ALL, Decision, apply_retention, summarise

GOLDEN = Path(__file__).parent / "golden" / "retention"
GOLDEN_FILES = sorted(GOLDEN.glob("*.json"))
RULE_NAMES = [item.name for item in dataclasses.fields(Retention)]
ZERO = Retention(**dict.fromkeys(RULE_NAMES, 0))


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _snapshots(case: dict[str, Any]) -> list[tuple[str, datetime]]:
    return [(snapshot_id, datetime.fromisoformat(time)) for snapshot_id, time in case["snapshots"]]


def test_there_are_enough_golden_cases() -> None:
    assert len(GOLDEN_FILES) >= 10


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=[path.stem for path in GOLDEN_FILES])
def test_golden(path: Path) -> None:
    case = _load(path)
    assert set(case) == {"description", "rules", "snapshots", "expected"}
    assert sorted(case["rules"]) == sorted(RULE_NAMES), "a golden case spells out all six counts"
    snapshots = _snapshots(case)

    decisions = apply_retention(snapshots, Retention(**case["rules"]))

    got = [{"id": d.id, "keep": d.keep, "reasons": list(d.reasons)} for d in decisions]
    assert got == case["expected"], case["description"]
    given_times = dict(snapshots)
    for decision in decisions:
        assert decision.time.tzinfo is UTC
        assert decision.time == given_times[decision.id]


def test_summarise() -> None:
    time = datetime(2026, 11, 24, tzinfo=UTC)
    decisions = [
        Decision("a", time, True, ("last",)),
        Decision("b", time, False, ()),
        Decision("c", time, False, ()),
    ]
    assert summarise(decisions) == {"keep": 1, "forget": 2}
    assert summarise([]) == {"keep": 0, "forget": 0}


def test_naive_time_is_refused() -> None:
    snapshots = [("aware", datetime(2026, 11, 24, 5, tzinfo=UTC)), ("naive", datetime(2026, 11, 24, 6))]
    with pytest.raises(ValueError, match="naive"):
        apply_retention(snapshots, Retention())
    with pytest.raises(ValueError, match="naive"):
        apply_retention(snapshots, ZERO)


def test_negative_count_is_refused() -> None:
    with pytest.raises(ValueError, match="keep_daily"):
        apply_retention([("a", datetime(2026, 11, 24, tzinfo=UTC))], Retention(keep_daily=-1))


ZONES = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))])
WIDE = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2060, 12, 31), timezones=ZONES)
NARROW = st.datetimes(min_value=datetime(2026, 11, 20), max_value=datetime(2026, 11, 24), timezones=ZONES)
# A few distinct instants drawn often, so that identical times and shared periods are common.
REPEATED = st.sampled_from([datetime(2025, 12, 28, 23, 59, 59, tzinfo=UTC), datetime(2025, 12, 29, tzinfo=UTC)])
TIMES = st.one_of(WIDE, NARROW, REPEATED)
COUNT = st.integers(min_value=0, max_value=6)
RULES = st.builds(Retention, **{name: COUNT for name in RULE_NAMES}).filter(
    lambda rules: any(getattr(rules, name) > 0 for name in RULE_NAMES)
)


def _with_ids(times: list[datetime]) -> list[tuple[str, datetime]]:
    return [(f"s{index:03d}", time) for index, time in enumerate(times)]


@given(rules=RULES, times=st.lists(TIMES, min_size=1, max_size=40), data=st.data())
def test_properties(rules: Retention, times: list[datetime], data: st.DataObject) -> None:
    snapshots = _with_ids(times)
    decisions = apply_retention(snapshots, rules)
    kept = [decision for decision in decisions if decision.keep]

    assert kept, "at least one snapshot is kept"
    assert decisions[0].keep, "the newest snapshot is always kept"
    assert decisions[0].time == max(times)
    assert len(kept) <= sum(getattr(rules, name) for name in RULE_NAMES)
    assert all(decision.keep == bool(decision.reasons) for decision in decisions)
    assert [decision.time for decision in decisions] == sorted(times, reverse=True)
    assert summarise(decisions) == {"keep": len(kept), "forget": len(decisions) - len(kept)}

    shuffled = data.draw(st.permutations(snapshots), label="shuffled")
    assert apply_retention(shuffled, rules) == decisions, "the result does not depend on input order"


@given(times=st.lists(TIMES, max_size=20))
def test_no_rule_set_keeps_everything(times: list[datetime]) -> None:
    decisions = apply_retention(_with_ids(times), ZERO)
    assert len(decisions) == len(times)
    assert all(decision.keep and decision.reasons == (KEEP_ALL,) for decision in decisions)


def _at(hour: int) -> tuple[str, datetime]:
    return f"s{hour:02d}", datetime(2026, 3, 1, hour, tzinfo=UTC)


def test_the_last_complete_version_of_a_patient_is_kept_whatever_the_rules() -> None:
    from rtvault.store.retention import keep_last_complete

    snapshots = [_at(h) for h in (1, 2, 3, 4)]
    decisions = apply_retention(snapshots, Retention(keep_last=1, keep_hourly=0, keep_daily=0, keep_weekly=0,
                                                     keep_monthly=0, keep_yearly=0))
    assert [d.id for d in decisions if d.keep] == ["s04"]
    incomplete = {  # P1 unreadable since s03; P2 complete everywhere; P3 incomplete in a forgotten snapshot only
        "s01": {"P1": False, "P2": False, "P3": False},
        "s02": {"P1": False, "P2": False, "P3": True},
        "s03": {"P1": True, "P2": False, "P3": False},
        "s04": {"P1": True, "P2": False, "P3": False},
    }
    kept = {d.id: d.reasons for d in keep_last_complete(decisions, incomplete) if d.keep}
    assert kept == {"s04": ("last",), "s02": ("last complete version of P1",)}


def test_a_patient_never_complete_protects_nothing_and_order_is_kept() -> None:
    from rtvault.store.retention import keep_last_complete

    decisions = apply_retention([_at(h) for h in (1, 2)], Retention(keep_last=1, keep_hourly=0, keep_daily=0,
                                                                     keep_weekly=0, keep_monthly=0, keep_yearly=0))
    result = keep_last_complete(decisions, {"s01": {"P": True}, "s02": {"P": True}})
    assert [(d.id, d.keep) for d in result] == [("s02", True), ("s01", False)]


def test_the_last_copy_of_a_patient_awaiting_its_archive_is_kept_whatever_the_rules() -> None:
    from rtvault.archive.pending import awaiting_archive
    from rtvault.store.retention import keep_awaiting_archive

    def manifest(hour: int, *paths: str) -> Manifest:
        return Manifest(_at(hour)[0], "", patients=tuple(PatientEntry(p, f"{p}-tree") for p in paths))

    # A deleted after s01, archived; B deleted after s02, its archive failed; C deleted after s03, not archived
    manifests = [manifest(1, "A", "B", "C", "D"), manifest(2, "B", "C", "D"), manifest(3, "C", "D"),
                 manifest(4, "D")]
    waiting = awaiting_archive(manifests, {("A", "A-tree")})
    assert [(w.path, w.snapshot) for w in waiting] == [("B", "s02"), ("C", "s03")]
    decisions = apply_retention([_at(h) for h in (1, 2, 3, 4)], ZERO_BUT_LAST)
    kept = {d.id: d.reasons for d in keep_awaiting_archive(decisions, {"s02": ["B"], "s03": ["C"]}) if d.keep}
    assert kept == {"s04": ("last",), "s03": ("awaiting archive of C",), "s02": ("awaiting archive of B",)}


def test_an_archived_or_returned_patient_awaits_nothing() -> None:
    from rtvault.archive.pending import awaiting_archive

    old = Manifest("s01", "", patients=(PatientEntry("A", "a1"), PatientEntry("B", "b1")))
    new = Manifest("s02", "", patients=(PatientEntry("A", "a2"),))  # A changed and is back; B archived
    assert awaiting_archive([old, new], {("B", "b1")}) == []
    assert [w.path for w in awaiting_archive([old, new], {("B", "an older version")})] == ["B"]
    assert awaiting_archive([], set()) == []


ZERO_BUT_LAST = Retention(keep_last=1, keep_hourly=0, keep_daily=0, keep_weekly=0, keep_monthly=0, keep_yearly=0)
