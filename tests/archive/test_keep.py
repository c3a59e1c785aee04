"""Keep-until dates (Code de la santé publique, art. R1112-7): golden cases written by hand, and properties.

Each tests/archive/golden/keep/*.json holds a "description", the inputs "last_visit", "birth_date" (ISO dates or
null) and "overrides" (kind, date, reason, by, at), the "expected" KeepUntil (date, rule, last_visit, holds) and
"may_destroy" checks as [today, allowed] pairs. To add a case, work the expected result out by hand from the
rules in rtvault.archive.keep's docstring, never by running `keep_until`.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtvault.archive.keep import KeepUntil, Override, add_years, keep_until, may_destroy

GOLDEN = Path(__file__).parent / "golden" / "keep"
GOLDEN_FILES = sorted(GOLDEN.glob("*.json"))
AT = datetime(2026, 11, 24, 9, 0, tzinfo=timezone(timedelta(hours=1)))


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text is not None else None


def _override(data: dict[str, Any]) -> Override:
    return Override(
        kind=data["kind"],
        date=_day(data["date"]),
        reason=data["reason"],
        by=data["by"],
        at=datetime.fromisoformat(data["at"]),
    )


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def ov(kind: str, day: date | None = None, reason: str = "because", at: datetime = AT, by: str = "admin") -> Override:
    return Override(kind=kind, date=day, reason=reason, by=by, at=at)


# --- golden cases -------------------------------------------------------------------------------------------------


def test_there_are_enough_golden_cases() -> None:
    assert len(GOLDEN_FILES) >= 12


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=[path.stem for path in GOLDEN_FILES])
def test_golden(path: Path) -> None:
    case = _load(path)
    assert set(case) == {"description", "last_visit", "birth_date", "overrides", "expected", "may_destroy"}
    overrides = [_override(item) for item in case["overrides"]]

    keep = keep_until(_day(case["last_visit"]), _day(case["birth_date"]), overrides)

    expected = case["expected"]
    assert keep == KeepUntil(
        date=_day(expected["date"]),
        rule=expected["rule"],
        last_visit=_day(expected["last_visit"]),
        holds=tuple(expected["holds"]),
    ), case["description"]
    assert keep_until(_day(case["last_visit"]), _day(case["birth_date"]), overrides[::-1]) == keep, (
        "the order in which overrides are given does not matter"
    )
    assert case["may_destroy"], "every case checks may_destroy at least once"
    for today, allowed in case["may_destroy"]:
        got, why = may_destroy(keep, date.fromisoformat(today))
        assert got is allowed, f"{case['description']} on {today}: {why}"
        assert why


# --- add_years ----------------------------------------------------------------------------------------------------


def test_add_years() -> None:
    assert add_years(date(2024, 3, 1), 20) == date(2044, 3, 1)
    assert add_years(date(2024, 2, 29), 20) == date(2044, 2, 29)
    assert add_years(date(2024, 2, 29), 1) == date(2025, 2, 28)
    assert add_years(date(2080, 2, 29), 20) == date(2100, 2, 28)
    assert add_years(date(2024, 2, 29), -4) == date(2020, 2, 29)
    assert add_years(date(2024, 2, 29), -1) == date(2023, 2, 28)
    assert add_years(date(2024, 12, 31), 0) == date(2024, 12, 31)


def test_add_years_refuses_bad_input() -> None:
    with pytest.raises(TypeError):
        add_years(datetime(2024, 3, 1, tzinfo=UTC), 1)
    with pytest.raises(TypeError):
        add_years(date(2024, 3, 1), 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        add_years(date(2024, 3, 1), True)
    with pytest.raises(ValueError, match="outside the calendar"):
        add_years(date(9990, 1, 1), 20)


@given(st.dates(min_value=date(1, 1, 1), max_value=date(9000, 12, 31)), st.integers(min_value=0, max_value=999))
def test_add_years_properties(day: date, years: int) -> None:
    later = add_years(day, years)
    assert later.year == day.year + years
    if (day.month, day.day) == (2, 29) and later.day != 29:
        assert (later.month, later.day) == (2, 28)
    else:
        assert (later.month, later.day) == (day.month, day.day)
    assert add_years(later, -years) == day or (day.month, day.day) == (2, 29)


# --- Override validation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_override_needs_a_reason(reason: str) -> None:
    with pytest.raises(ValueError, match="reason"):
        Override(kind="hold", date=None, reason=reason, by="admin", at=AT)
    with pytest.raises(ValueError, match="reason"):
        Override(kind="until", date=date(2050, 1, 1), reason=reason, by="admin", at=AT)


def test_override_validation() -> None:
    with pytest.raises(ValueError, match="unknown override kind"):
        ov("forget")
    for kind in ("last_visit", "death", "until"):
        with pytest.raises(ValueError, match="needs a date"):
            ov(kind)
        with pytest.raises(ValueError, match="not a datetime"):
            ov(kind, datetime(2024, 1, 1, tzinfo=UTC))
        with pytest.raises(ValueError, match="not a datetime"):
            ov(kind, "2024-01-01")  # type: ignore[arg-type]
    for kind in ("hold", "release"):
        with pytest.raises(ValueError, match="takes no date"):
            ov(kind, date(2024, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        ov("hold", at=datetime(2026, 11, 24, 9, 0))
    with pytest.raises(ValueError, match="by"):
        Override(kind="hold", date=None, reason="r", by=None, at=AT)  # type: ignore[arg-type]
    assert ov("release").kind == "release"


def test_keep_until_refuses_bad_input() -> None:
    with pytest.raises(TypeError, match="last_visit"):
        keep_until(datetime(2024, 3, 1, tzinfo=UTC), None)
    with pytest.raises(TypeError, match="birth_date"):
        keep_until(date(2024, 3, 1), "1960-01-01")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Override"):
        keep_until(date(2024, 3, 1), None, [{"kind": "hold"}])  # type: ignore[list-item]


# --- a few rules outside the golden files -------------------------------------------------------------------------


def test_latest_death_date_wins() -> None:
    visit = date(2020, 1, 1)
    early = ov("death", date(2021, 1, 1), at=AT + timedelta(days=1))
    late = ov("death", date(2025, 6, 1), at=AT)
    assert keep_until(visit, None, [early, late]).date == date(2035, 6, 1)


def test_latest_until_wins_and_others_are_not_mentioned() -> None:
    keep = keep_until(date(2024, 3, 1), None, [ov("until", date(2046, 1, 1), "a"), ov("until", date(2048, 1, 1), "b")])
    assert keep.date == date(2048, 1, 1)
    assert keep.rule.startswith("until 2048-01-01 set by admin (b); legal date 2044-03-01")


def test_until_equal_to_the_legal_date_is_ignored() -> None:
    keep = keep_until(date(2024, 3, 1), None, [ov("until", date(2044, 3, 1))])
    assert keep.date == date(2044, 3, 1)
    assert keep.rule.endswith("ignored: not later than the legal date")


def test_one_day_hold_and_same_day_release() -> None:
    visit = date(2024, 3, 1)
    one_day = [ov("hold", at=AT), ov("release", at=AT + timedelta(days=1))]
    keep = keep_until(visit, None, one_day)
    assert keep.date == date(2044, 3, 2)
    assert keep.rule.endswith("extended by 1 day of litigation hold (because)")
    same_day = [ov("hold", at=AT), ov("release", at=AT + timedelta(hours=2))]
    plain = KeepUntil(date(2044, 3, 1), "20 years after the last visit (2024-03-01)", visit)
    assert keep_until(visit, None, same_day) == plain


def test_hold_starting_on_the_last_day_still_counts() -> None:
    """The keep-until date is a day the record is still kept: a hold starting that day suspends the clock."""
    start = datetime(2044, 3, 1, 10, 0, tzinfo=UTC)
    keep = keep_until(date(2024, 3, 1), None, [ov("hold", at=start), ov("release", at=start + timedelta(days=10))])
    assert keep.date == date(2044, 3, 11)


def test_hold_keeps_the_last_visit_and_beats_until() -> None:
    overrides = [
        ov("last_visit", date(2020, 1, 1)),
        ov("until", date(2090, 1, 1)),
        ov("hold", reason="first", at=AT),
        ov("hold", reason="second", at=AT + timedelta(days=1)),
    ]
    keep = keep_until(None, None, overrides)
    assert keep.date is None
    assert keep.last_visit == date(2020, 1, 1)
    assert keep.holds == ("first", "second")
    assert keep.rule == "litigation hold since 2026-11-24 (first), since 2026-11-25 (second): kept until released"


def test_birth_after_last_visit_counts_as_minor() -> None:
    keep = keep_until(date(2020, 1, 1), date(2021, 1, 1), [])
    assert keep.date == date(2049, 1, 1)
    assert keep.rule == "until the 28th birthday (2049-01-01): under 18 at the last visit (2020-01-01)"


# --- may_destroy --------------------------------------------------------------------------------------------------


def test_may_destroy_only_strictly_after_the_date() -> None:
    keep = keep_until(date(2024, 3, 1), None)
    assert may_destroy(keep, date(2030, 1, 1)) == (
        False,
        "kept until 2044-03-01 inclusive: 20 years after the last visit (2024-03-01)",
    )
    assert may_destroy(keep, date(2044, 3, 1))[0] is False
    assert may_destroy(keep, date(2044, 3, 2)) == (
        True,
        "retention ended on 2044-03-01: 20 years after the last visit (2024-03-01)",
    )
    assert may_destroy(keep, date(2100, 1, 1))[0] is True


def test_may_destroy_never_under_hold_or_without_date() -> None:
    held = keep_until(date(1990, 1, 1), None, [ov("hold", reason="lawsuit 12")])
    assert may_destroy(held, date(2100, 1, 1)) == (False, "under litigation hold (lawsuit 12): kept until released")
    unknown = keep_until(None, None)
    allowed, why = may_destroy(unknown, date(2200, 1, 1))
    assert allowed is False
    assert why.startswith("kept indefinitely: no last visit known")
    with pytest.raises(TypeError):
        may_destroy(unknown, datetime(2200, 1, 1, tzinfo=UTC))


# --- properties ---------------------------------------------------------------------------------------------------

DAYS = st.dates(min_value=date(1900, 1, 1), max_value=date(2150, 12, 31))
ZONES = st.sampled_from([UTC, *(timezone(timedelta(hours=hours)) for hours in (1, 2, -5))])
ATS = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=ZONES)
REASONS = st.sampled_from(["complaint", "lawsuit 26/0001", "research protocol", "heirs' request", "typo fixed"])
DATED = st.builds(
    Override,
    kind=st.sampled_from(["last_visit", "death", "until"]),
    date=DAYS,
    reason=REASONS,
    by=st.just("admin"),
    at=ATS,
)
UNDATED = st.builds(
    Override, kind=st.sampled_from(["hold", "release"]), date=st.none(), reason=REASONS, by=st.just("legal"), at=ATS
)
OVERRIDES = st.lists(st.one_of(DATED, UNDATED), max_size=8)


def _active_holds(overrides: list[Override]) -> list[Override]:
    releases = [o.at for o in overrides if o.kind == "release"]
    return [o for o in overrides if o.kind == "hold" and not any(at > o.at for at in releases)]


def _dates(overrides: list[Override], kind: str) -> list[date]:
    return [o.date for o in overrides if o.kind == kind and o.date is not None]


@given(st.none() | DAYS, st.none() | DAYS, OVERRIDES)
def test_keep_until_properties(last_visit: date | None, birth: date | None, overrides: list[Override]) -> None:
    keep = keep_until(last_visit, birth, overrides)
    assert keep_until(last_visit, birth, overrides[::-1]) == keep
    active = _active_holds(overrides)
    visit = max(_dates(overrides, "last_visit"), default=last_visit)
    assert keep.last_visit == visit
    assert keep.rule
    if active:
        assert keep.date is None, "a hold always keeps indefinitely"
        assert sorted(keep.holds) == sorted(o.reason for o in active)
        return
    assert keep.holds == ()
    if visit is None:
        assert keep.date is None
        return
    assert keep.date is not None
    floor = add_years(visit, 20)
    deaths = _dates(overrides, "death")
    if deaths and max(deaths) <= add_years(visit, 10):
        floor = min(floor, add_years(max(deaths), 10))
    assert keep.date >= floor
    for until in _dates(overrides, "until"):
        assert keep.date >= until, "an administrator's date is never cut short"
    if birth is not None and visit < add_years(birth, 18):
        assert keep.date >= add_years(birth, 28)


@given(DAYS, st.none() | DAYS, st.lists(DATED, max_size=4), ATS, st.integers(min_value=1, max_value=4000))
def test_holds_only_ever_lengthen(
    visit: date, birth: date | None, dated: list[Override], start: datetime, days: int
) -> None:
    plain = keep_until(visit, birth, dated)
    hold = Override(kind="hold", date=None, reason="claim", by="legal", at=start)
    released = keep_until(
        visit,
        birth,
        [
            *dated,
            hold,
            Override(kind="release", date=None, reason="closed", by="legal", at=start + timedelta(days=days)),
        ],
    )
    assert plain.date is not None and released.date is not None
    assert plain.date <= released.date <= plain.date + timedelta(days=days)
    held = keep_until(visit, birth, [*dated, hold])
    assert held.date is None
    assert held.holds == ("claim",)


@given(st.none() | DAYS, st.none() | DAYS, OVERRIDES, DAYS)
def test_may_destroy_matches_the_date(
    last_visit: date | None, birth: date | None, overrides: list[Override], today: date
) -> None:
    keep = keep_until(last_visit, birth, overrides)
    allowed, why = may_destroy(keep, today)
    assert allowed is (keep.date is not None and not keep.holds and today > keep.date)
    assert why
