"""Which snapshots to keep: restic's `forget --keep-*` rules, as a pure function.

`keep_last N` keeps the N newest snapshots. Each period rule (hourly, daily, weekly, monthly, yearly) keeps, for
each of its N most recent periods that hold a snapshot, the newest snapshot of that period. Periods are calendar
buckets in UTC (weekly: ISO year and week, so 2025-12-29 is in 2026-W01); a period without snapshots uses up no
slot. A snapshot kept by any rule is kept. When every count is 0 everything is kept, so that a missing
configuration never deletes all snapshots. Whatever the rules, the last complete version of a patient whose
newer kept versions are incomplete (files that could not be read) is kept (`keep_last_complete`), and so is
the last copy of a patient gone from the source and not archived yet (`keep_awaiting_archive`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime

from rtvault.config.settings import Retention

KEEP_ALL = "no rule set: keep all"


@dataclass(frozen=True)
class Decision:
    """What retention decided for one snapshot, and which rules keep it (empty when it is forgotten)."""

    id: str
    time: datetime  # aware, UTC
    keep: bool
    reasons: tuple[str, ...]


def _hour(time: datetime) -> str:
    return time.strftime("%Y-%m-%dT%H:00")


def _day(time: datetime) -> str:
    return time.date().isoformat()


def _week(time: datetime) -> str:
    year, week, _ = time.isocalendar()
    return f"{year:04d}-W{week:02d}"


def _month(time: datetime) -> str:
    return f"{time.year:04d}-{time.month:02d}"


def _year(time: datetime) -> str:
    return f"{time.year:04d}"


# (reason prefix, Retention field, label of the period a UTC time falls in), in the order reasons are listed.
_PERIODS: tuple[tuple[str, str, Callable[[datetime], str]], ...] = (
    ("hourly", "keep_hourly", _hour),
    ("daily", "keep_daily", _day),
    ("weekly", "keep_weekly", _week),
    ("monthly", "keep_monthly", _month),
    ("yearly", "keep_yearly", _year),
)


def _check_rules(rules: Retention) -> None:
    for item in fields(rules):
        count = getattr(rules, item.name)
        if count < 0:
            raise ValueError(f"retention {item.name} must be 0 or more, got {count}")


def _in_utc(snapshot_id: str, time: datetime) -> datetime:
    if time.tzinfo is None or time.utcoffset() is None:
        raise ValueError(f"snapshot {snapshot_id}: time {time.isoformat()} is naive (it has no time zone)")
    return time.astimezone(UTC)


def _newest_first(snapshots: Sequence[tuple[str, datetime]]) -> list[tuple[str, datetime]]:
    """Newest first; snapshots taken at the same instant in order of id."""
    in_utc = [(snapshot_id, _in_utc(snapshot_id, time)) for snapshot_id, time in snapshots]
    by_id = sorted(in_utc, key=lambda snapshot: snapshot[0])
    return sorted(by_id, key=lambda snapshot: snapshot[1], reverse=True)  # stable: ties stay in order of id


def _keep_newest_per_period(
    times: Sequence[datetime], count: int, prefix: str, label: Callable[[datetime], str]
) -> dict[int, str]:
    """Index (in `times`, newest first) -> reason, for the newest snapshot of each of the `count` latest periods."""
    kept: dict[int, str] = {}
    seen: set[str] = set()
    for index, time in enumerate(times):
        period = label(time)
        if period in seen:
            continue
        if len(seen) == count:
            break
        seen.add(period)
        kept[index] = f"{prefix} {period}"
    return kept


def _no_rule_set(rules: Retention) -> bool:
    return all(getattr(rules, item.name) == 0 for item in fields(rules))


def _reasons(times: Sequence[datetime], rules: Retention) -> list[list[str]]:
    if _no_rule_set(rules):
        return [[KEEP_ALL] for _ in times]
    reasons: list[list[str]] = [[] for _ in times]
    for index in range(min(rules.keep_last, len(times))):
        reasons[index].append("last")
    for prefix, name, label in _PERIODS:
        count = getattr(rules, name)
        if count:
            for index, reason in _keep_newest_per_period(times, count, prefix, label).items():
                reasons[index].append(reason)
    return reasons


def apply_retention(snapshots: Sequence[tuple[str, datetime]], rules: Retention) -> list[Decision]:
    """Decide, newest first, which snapshots the rules keep, as restic's `forget --keep-*` does.

    Snapshots are (id, aware time) pairs in any order; periods are calendar buckets in UTC; snapshots taken at
    the same instant are ordered by id (the smallest id counts as the newest). Every rule at 0 keeps everything.
    Raises ValueError for a time without time zone or a negative count.
    """
    _check_rules(rules)
    ordered = _newest_first(snapshots)
    reasons = _reasons([time for _, time in ordered], rules)
    return [
        Decision(id=snapshot_id, time=time, keep=bool(why), reasons=tuple(why))
        for (snapshot_id, time), why in zip(ordered, reasons, strict=True)
    ]


LAST_COMPLETE = "last complete version of"


def keep_last_complete(decisions: Sequence[Decision],
                       incomplete: Mapping[str, Mapping[str, bool]]) -> list[Decision]:
    """Keep, besides what the rules keep, the newest snapshot holding a complete version of each patient that
    a newer kept snapshot holds incomplete. `incomplete` maps a snapshot id to {patient path: incomplete}.
    Decisions come newest first (as `apply_retention` returns them) and go back in the same order."""
    protect: dict[str, list[str]] = {}
    waiting: set[str] = set()  # patients seen incomplete in a kept snapshot, whose complete version is older
    for decision in decisions:
        for path, partial in sorted(incomplete.get(decision.id, {}).items()):
            if partial and decision.keep:
                waiting.add(path)
            elif not partial and path in waiting:
                waiting.discard(path)
                protect.setdefault(decision.id, []).append(path)
    return keep_also(decisions, {sid: [f"{LAST_COMPLETE} {path}" for path in paths] for sid, paths in protect.items()})


AWAITING_ARCHIVE = "awaiting archive of"


def keep_awaiting_archive(decisions: Sequence[Decision], awaiting: Mapping[str, Sequence[str]]) -> list[Decision]:
    """Keep, whatever the rules, each snapshot holding the last copy of a patient gone from the source whose
    archive is not written yet. `awaiting` maps a snapshot id to those patients' paths."""
    return keep_also(decisions, {sid: [f"{AWAITING_ARCHIVE} {path}" for path in sorted(paths)]
                                 for sid, paths in awaiting.items()})


def keep_also(decisions: Sequence[Decision], reasons: Mapping[str, Sequence[str]]) -> list[Decision]:
    """Keep the snapshots `reasons` names (id → why), whatever the rules decided, adding the reasons."""
    return [Decision(d.id, d.time, True, (*d.reasons, *reasons[d.id])) if reasons.get(d.id) else d
            for d in decisions]


def summarise(decisions: Iterable[Decision]) -> dict[str, int]:
    """How many snapshots are kept and how many forgotten: {"keep": n, "forget": n}."""
    kept = forgotten = 0
    for decision in decisions:
        if decision.keep:
            kept += 1
        else:
            forgotten += 1
    return {"keep": kept, "forget": forgotten}
