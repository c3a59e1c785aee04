"""Keep-until dates of archived patients: the French retention rule for medical records.

Legal reference: Code de la santé publique, article R1112-7 (decree 2006-6 of 4 January 2006). In short:
the medical record is kept 20 years from the patient's last stay or outpatient consultation; when that term
ends before the patient's 28th birthday it is extended to that birthday; "in all cases", when the patient dies
less than 10 years after the last visit, the record is kept 10 years from the death; any amicable or
contentious claim against the establishment or its practitioners suspends these terms.

rtvault knows a patient's last modification (used as the last visit) and, often, the birth date. An
administrator records `Override`s: a known last visit, a known death, a litigation hold or its release, or an
explicit keep-until date. `keep_until` turns all of it into one `KeepUntil`: a date (the last day the record
must be kept; None = keep indefinitely), the sentence explaining it, and the active holds. `may_destroy`
says whether a record may be destroyed on a given day. Everything here is pure: no clock, no I/O.

The rules, in the order they are applied:

1. Last visit: the latest date of the "last_visit" overrides if there is any (it replaces the data date, even
   an earlier one: the last modification is only a proxy, e.g. a migration rewrites every file), else the
   given last visit. None known: no date ("kept indefinitely until an administrator sets one").
2. Base term: last visit + 20 years.
3. Death: with a "death" override (the latest death date when several) no later than last visit + 10 years,
   the term is death + 10 years instead, which can be shorter than 20 years: that is the law. "Within 10
   years" is read inclusively (death <= last visit + 10 years). The text says "moins de dix ans" (strictly
   less); on that day both readings give the same date (death + 10 = last visit + 20), except for a last
   visit on 29 February, where the inclusive reading ends one day earlier. A death recorded *before* the
   last visit (data modified after the death) also takes the death rule: nobody visits after death, the true
   last visit was on or before it, so the legal term is at most death + 10 years whatever it was.
4. 28th birthday: with a known birth date, a term ending before the 28th birthday is extended to it. This is
   the article's own wording; for consistent data it is exactly "the patient was under 18 at the last visit
   and the term ends before the 28th birthday", which only happens when the last visit was before age 8, or
   when the death rule applies. Our reading of "dans tous les cas" for a minor who died: the death rule
   replaces the 20-year base, and the 28th-birthday minimum still applies when it is later. (Some guides read
   the death rule as prevailing outright; ours keeps longer, the safe error for a tool that refuses to
   delete.) A birth date after the last visit counts as under 18.
5. Litigation holds: a "hold" with no "release" recorded strictly later (by `at`) is active: date None, the
   reasons listed in `holds`. A release ends every earlier hold; a release recorded at the same instant as a
   hold does not end it. The article *suspends* the terms during a claim, so a released hold pushes the date
   back by the number of days it lasted (from the day of the hold to the day of the release, local dates of
   `at`; overlapping holds count once; only days after the last visit count; a hold starting after the term
   had already ended adds nothing).
6. "until": an administrator's date can only extend. The result is the later of the legal date (after
   suspensions) and the latest "until" date; an "until" not later than the legal date is ignored and the
   sentence says so. Without a last visit there is no legal date to compare with: the "until" is ignored
   and the record is kept indefinitely.

Dates: `add_years` keeps the month and day; 29 February becomes 28 February in a non-leap target year (so a
person born on 29 February turns 18 and 28 on 28 February in non-leap years). The keep-until date is the
last day the record must be kept: destruction is allowed only strictly after it (`today > date`).
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import MAXYEAR, MINYEAR, date, datetime, timedelta

__all__ = [
    "DEATH",
    "HOLD",
    "KINDS",
    "LAST_VISIT",
    "RELEASE",
    "UNTIL",
    "KeepUntil",
    "Override",
    "add_years",
    "keep_until",
    "may_destroy",
]

LAST_VISIT = "last_visit"
DEATH = "death"
HOLD = "hold"
RELEASE = "release"
UNTIL = "until"
DATED_KINDS = frozenset({LAST_VISIT, DEATH, UNTIL})
KINDS = DATED_KINDS | {HOLD, RELEASE}

RECORD_YEARS = 20
DEATH_WINDOW_YEARS = 10
AFTER_DEATH_YEARS = 10
MAJORITY_AGE = 18
MINOR_KEEP_AGE = 28

NO_LAST_VISIT = "no last visit known: kept indefinitely until an administrator sets one"


@dataclass(frozen=True)
class Override:
    """One administrator decision about a patient's retention, recorded once and never edited.

    kind: "last_visit" (last visit known from elsewhere), "death" (date of death), "hold" (litigation hold:
    no destruction while set), "release" (ends the earlier holds) or "until" (an explicit keep-until date,
    which can only extend the legal date). `date` is required for last_visit / death / until and must be None
    for hold / release; `reason` is required; `at` is when the override was recorded (timezone-aware).
    """

    kind: str
    date: date | None
    reason: str
    by: str
    at: datetime

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown override kind {self.kind!r}: expected one of {', '.join(sorted(KINDS))}")
        if not isinstance(self.reason, str) or not self.reason.strip():
            raise ValueError(f"a {self.kind} override needs a reason")
        if not isinstance(self.by, str):
            raise ValueError(f"a {self.kind} override needs who recorded it (by), as text")
        if self.kind in DATED_KINDS:
            if self.date is None:
                raise ValueError(f"a {self.kind} override needs a date")
            _check_day(f"the date of a {self.kind} override", self.date, error=ValueError)
        elif self.date is not None:
            raise ValueError(f"a {self.kind} override takes no date (got {self.date!r})")
        if not isinstance(self.at, datetime) or self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError(f"a {self.kind} override needs a timezone-aware recording time (at), got {self.at!r}")


@dataclass(frozen=True)
class KeepUntil:
    """Until when one patient's record must be kept, and why.

    date: the last day to keep it (None = indefinitely: litigation hold, or no last visit known); rule: the
    English sentence explaining the date; last_visit: the last visit used; holds: reasons of the active holds.
    """

    date: date | None
    rule: str
    last_visit: date | None
    holds: tuple[str, ...] = ()


def add_years(day: date, years: int) -> date:
    """The same month and day `years` later (or earlier); 29 February → 28 February in non-leap years."""
    _check_day("day", day)
    if isinstance(years, bool) or not isinstance(years, int):
        raise TypeError(f"years must be an int, got {years!r}")
    year = day.year + years
    if not MINYEAR <= year <= MAXYEAR:
        raise ValueError(f"{day.isoformat()} {years:+d} years is outside the calendar")
    if day.month == 2 and day.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return day.replace(year=year)


def keep_until(last_visit: date | None, birth_date: date | None, overrides: Sequence[Override] = ()) -> KeepUntil:
    """The keep-until date of one patient (rules in the module docstring, in order)."""
    _check_day("last_visit", last_visit, optional=True)
    _check_day("birth_date", birth_date, optional=True)
    items = tuple(overrides)
    for item in items:
        if not isinstance(item, Override):
            raise TypeError(f"overrides must be Override objects, got {item!r}")

    visit_override = _latest(items, LAST_VISIT)
    visit = visit_override.date if visit_override is not None else last_visit
    active, spans = _holds(items)
    if active:
        since = ", ".join(f"since {hold.at.date().isoformat()} ({hold.reason})" for hold in active)
        return KeepUntil(
            None, f"litigation hold {since}: kept until released", visit, tuple(hold.reason for hold in active)
        )

    until = _latest(items, UNTIL)
    if visit is None:
        rule = NO_LAST_VISIT
        if until is not None:
            rule += f"; {_until_words(until)} ignored: no legal date without a last visit"
        return KeepUntil(None, rule, None)

    death = _latest(items, DEATH)
    legal, rule = _legal_date(visit, birth_date, death.date if death is not None else None)
    if visit_override is not None:
        rule += f"; last visit set by {visit_override.by} ({visit_override.reason})"
    legal, days, reasons = _suspend(legal, visit, spans)
    if days:
        rule += f"; extended by {days} day{'s' if days > 1 else ''} of litigation hold ({'; '.join(reasons)})"
    if until is not None:
        assert until.date is not None
        if until.date > legal:
            return KeepUntil(until.date, f"{_until_words(until)} ({until.reason}); legal date {legal}: {rule}", visit)
        rule += f"; {_until_words(until)} ignored: not later than the legal date"
    return KeepUntil(legal, rule, visit)


def may_destroy(keep: KeepUntil, today: date) -> tuple[bool, str]:
    """(True, why) only when no hold is active and `today` is strictly after the keep-until date."""
    _check_day("today", today)
    if keep.holds:
        return False, f"under litigation hold ({'; '.join(keep.holds)}): kept until released"
    if keep.date is None:
        return False, f"kept indefinitely: {keep.rule}"
    if today <= keep.date:
        return False, f"kept until {keep.date.isoformat()} inclusive: {keep.rule}"
    return True, f"retention ended on {keep.date.isoformat()}: {keep.rule}"


def _legal_date(visit: date, birth: date | None, death: date | None) -> tuple[date, str]:
    """Rules 2 to 4: the term from the last visit, the death and the birth date, with its sentence."""
    death_rule = death is not None and death <= add_years(visit, DEATH_WINDOW_YEARS)
    if death_rule:
        assert death is not None
        term = add_years(death, AFTER_DEATH_YEARS)
        short = f"10 years after death ({death})"
        if death < visit:
            sentence = f"{short}: death recorded before the last visit ({visit})"
        else:
            sentence = f"{short}: died within 10 years of the last visit ({visit})"
    else:
        term = add_years(visit, RECORD_YEARS)
        short = sentence = f"20 years after the last visit ({visit})"
        if death is not None:
            sentence += f": death ({death}) more than 10 years after it"
    if birth is not None:
        birthday = add_years(birth, MINOR_KEEP_AGE)
        if birthday > term:
            if visit < add_years(birth, MAJORITY_AGE):
                sentence = f"until the 28th birthday ({birthday}): under 18 at the last visit ({visit})"
                if death_rule:
                    sentence += f"; {short} ends before it"
            else:
                sentence = f"until the 28th birthday ({birthday}): {short} ends before it"
            term = birthday
    return term, sentence


def _holds(items: tuple[Override, ...]) -> tuple[list[Override], list[tuple[date, date, str]]]:
    """Active holds (oldest first) and released ones as (first day, release day, reason)."""
    releases = sorted(item.at for item in items if item.kind == RELEASE)
    active: list[Override] = []
    spans: list[tuple[date, date, str]] = []
    for hold in sorted((item for item in items if item.kind == HOLD), key=lambda item: (item.at, item.reason)):
        ended = next((at for at in releases if at > hold.at), None)
        if ended is None:
            active.append(hold)
        else:
            spans.append((hold.at.date(), ended.date(), hold.reason))
    return active, spans


def _suspend(end: date, visit: date, spans: list[tuple[date, date, str]]) -> tuple[date, int, list[str]]:
    """Push `end` back by the days the clock was suspended: (new end, days added, reasons of those holds)."""
    merged: list[tuple[date, date, list[str]]] = []
    for start, stop, reason in sorted((max(start, visit), stop, reason) for start, stop, reason in spans):
        if stop <= start:
            continue
        if merged and start <= merged[-1][1]:
            first, last, reasons = merged[-1]
            merged[-1] = (first, max(last, stop), [*reasons, reason])
        else:
            merged.append((start, stop, [reason]))
    added = 0
    why: list[str] = []
    for start, stop, reasons in merged:
        if start > end:
            break  # the term had already run out when this hold began; later ones begin later still
        added += (stop - start).days
        end += timedelta(days=(stop - start).days)
        why.extend(reason for reason in reasons if reason not in why)
    return end, added, why


def _latest(items: tuple[Override, ...], kind: str) -> Override | None:
    """The override of `kind` with the latest date (then the latest recorded): mistakes can only lengthen."""
    found = [item for item in items if item.kind == kind]
    return max(found, key=lambda item: (item.date, item.at, item.reason, item.by)) if found else None


def _until_words(until: Override) -> str:
    return f"until {until.date} set by {until.by}"


def _check_day(name: str, value: object, *, optional: bool = False, error: type[Exception] = TypeError) -> None:
    if value is None and optional:
        return
    if isinstance(value, datetime) or not isinstance(value, date):
        raise error(f"{name} must be a date (not a datetime), got {value!r}")
