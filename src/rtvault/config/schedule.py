"""`[schedule]`: when each job runs. A value is a five-field cron expression (`0 7-19 * * 1-5`), a shorthand
(`hourly`, `daily 02:30`), `after <job>` (run once that job's run ended), or a list of these (runs at every time
any of them names). Parsed here, once, when the configuration is read: a wrong value is a configuration error
naming its key."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from croniter import croniter

from rtvault.config.schema import Kind

JOBS = ("backup", "sweep", "replicate", "verify", "retention", "catalog", "catalog_backup", "drill")
_DAILY = re.compile(r"daily ([01]\d|2[0-3]):([0-5]\d)")
_AFTER = re.compile(r"after (\S+)")


@dataclass(frozen=True)
class Rule:
    """One entry of a job's schedule: a cron expression, or the job it follows."""

    cron: str | None = None
    after: str | None = None

    @classmethod
    def parse(cls, text: str) -> Rule:
        """The rule a schedule entry says; ValueError saying what is wrong."""
        words = " ".join(text.split())
        if words == "hourly":
            return cls(cron="0 * * * *")
        if match := _DAILY.fullmatch(words):
            return cls(cron=f"{int(match[2])} {int(match[1])} * * *")
        if match := _AFTER.fullmatch(words):
            if match[1] not in JOBS:
                raise ValueError(f"{text!r} names no job (the jobs: {', '.join(JOBS)})")
            return cls(after=match[1])
        if len(words.split(" ")) == 5 and croniter.is_valid(words):
            return cls(cron=words)
        raise ValueError(f"{text!r} is not a schedule: write a five-field cron expression (minute hour day month "
                         "weekday, like '0 7-19 * * 1-5'), 'hourly', 'daily HH:MM' or 'after <job>'")


def rules(entries: tuple[str, ...]) -> tuple[Rule, ...]:
    return tuple(Rule.parse(entry) for entry in entries)


def _check(value: str | list[str]) -> str | None:
    entries = [value] if isinstance(value, str) else value
    if not entries:
        return "must name at least one time (a job that must never run is not in rtvault's schedule)"
    for entry in entries:
        try:
            Rule.parse(entry)
        except ValueError as error:
            return str(error)
    return None


SCHEDULE = Kind(
    "a schedule or an array of schedules",
    "schedule (string or array of strings)",
    lambda v: isinstance(v, str) or (isinstance(v, list) and all(isinstance(item, str) for item in v)),
    (_check,),
    lambda value, _base_dir: (value,) if isinstance(value, str) else tuple(value),
)


def problems(values: Mapping[str, Any]) -> list[str]:
    """A job may not follow itself, directly or through others: each `after` chain must reach a timed job."""
    follows = {job: {rule.after for rule in rules(values[job]) if rule.after} for job in JOBS if job in values}
    found = []
    for job in follows:
        seen, todo = set(), list(follows[job])
        while todo:
            other = todo.pop()
            if other == job:
                found.append(f"{job} runs after itself (through {', '.join(sorted(seen)) or 'itself'}): give one "
                             "of them a time")
                break
            if other not in seen:
                seen.add(other)
                todo.extend(follows.get(other, ()))
    return found
