"""Validation: TOML data checked against the schema, every problem found in one pass.

Each problem names its dotted path (`stores.nas1.path: expected a string, got integer 3`); the whole list
is raised at once as a `ConfigError`, so a user fixes the file in one go.
"""

from __future__ import annotations

import datetime
import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtvault.config.schema import BARE_KEY, Field, Section, SectionMap, dotted
from rtvault.config.settings import LEGACY_SOURCE, SCHEMA, Config
from rtvault.errors import ConfigError

_ABSENT: Any = object()


@dataclass
class _Run:
    """One validation: where relative paths start, and the problems found so far."""

    base_dir: Path
    problems: list[str] = field(default_factory=list)

    def report(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")


def validate(data: Mapping[str, Any], file: Path) -> Config:
    """The `Config` described by `data` (parsed TOML) read from `file`, with defaults applied and
    relative paths resolved against the file's directory; raises `ConfigError` listing every problem."""
    run = _Run(base_dir=file.absolute().parent)
    values = _section(SCHEMA, data, "", run)
    _check_copies(data.get("stores"), run)
    _check_pairs(data.get("schedule"), data.get("stores"), run)
    _check_sources(data, run)
    if run.problems or values is None:
        raise ConfigError(str(file), run.problems)
    return Config(file=file, **values)


def _section(section: Section, data: object, where: str, run: _Run) -> dict[str, Any] | None:
    """The checked values of one table, or None when it has problems (already reported)."""
    if not isinstance(data, dict):
        run.report(where, f"expected a table, got {describe(data)}")
        return None
    found = len(run.problems)
    _reject_unknown(section, data, where, run)
    values = {m.name: _member(m, data.get(m.name, _ABSENT), dotted(where, m.name), run) for m in section.members}
    if len(run.problems) == found and hasattr(section.cls, "problems"):  # keys that are only valid together
        for message in section.cls.problems(values):
            run.report(where, message)
    return values if len(run.problems) == found else None


def _member(member: Field | Section | SectionMap, raw: Any, where: str, run: _Run) -> Any:
    if isinstance(member, Field):
        return _field(member, raw, where, run)
    if raw is _ABSENT:
        raw = {}
    if isinstance(member, SectionMap):
        return _section_map(member, raw, where, run)
    values = _section(member, raw, where, run)
    return None if values is None else member.cls(**values)


def _section_map(section_map: SectionMap, data: object, where: str, run: _Run) -> dict[str, Any] | None:
    if not isinstance(data, dict):
        run.report(where, f"expected a table of named tables, got {describe(data)}")
        return None
    items = {}
    for name, raw in data.items():
        item_where = dotted(where, name)
        if not BARE_KEY.fullmatch(name):
            run.report(item_where, "a name may only hold letters, digits, '-' and '_'")
        values = _section(section_map.item, raw, item_where, run)
        if values is not None:
            items[name] = section_map.item.cls(**values)
    return items


def _field(spec: Field, raw: Any, where: str, run: _Run) -> Any:
    if raw is _ABSENT:
        if spec.required:
            run.report(where, "required key is missing")
            return None
        return spec.kind.convert(spec.default, run.base_dir)
    if not spec.kind.accepts(raw):
        run.report(where, f"expected {spec.kind.name}, got {describe(raw)}")
        return None
    wrong = [message for check in spec.checks if (message := check(raw))]
    for message in wrong:
        run.report(where, message)
    return None if wrong else spec.kind.convert(raw, run.base_dir)


def _reject_unknown(section: Section, data: dict[str, Any], where: str, run: _Run) -> None:
    known = [m.name for m in section.members]
    for key in data:
        if key in known:
            continue
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
        run.report(dotted(where, key), f"unknown key ({hint})")


def _check_sources(data: Mapping[str, Any], run: _Run) -> None:
    """[source.pinnacle] is the source named pinnacle: a [sources.pinnacle] beside it would be a second one."""
    legacy, named = data.get("source"), data.get("sources")
    if isinstance(legacy, dict) and isinstance(legacy.get("pinnacle"), dict) and "root" in legacy["pinnacle"] \
            and isinstance(named, dict) and LEGACY_SOURCE in named:
        run.report(f"sources.{LEGACY_SOURCE}", "[source.pinnacle] already configures the source named pinnacle: "
                   "keep one of the two tables (move its root and exclude into [sources.pinnacle])")


def _check_copies(stores: object, run: _Run) -> None:
    """Each `copy_of` names another configured store, and following them never comes back to where it started:
    a chain of copies begins at an original (replicate copies from it; status measures the lag behind it)."""
    if not isinstance(stores, dict):
        return  # already reported
    sources = {name: raw.get("copy_of") for name, raw in stores.items() if isinstance(raw, dict)}
    sources = {name: source for name, source in sources.items() if isinstance(source, str) and source}
    for name, source in sources.items():
        where = dotted(dotted("stores", name), "copy_of")
        if source == name:
            run.report(where, "a store cannot be a copy of itself")
        elif source not in stores:
            run.report(where, f"no store named {source!r} (configured: {', '.join(stores)})")
    reported: set[str] = set()
    for start in sources:
        chain, name = [start], sources[start]
        while name in sources and name not in chain and name != sources[name]:
            chain.append(name)
            name = sources[name]
        if name == start and len(chain) > 1 and not reported & set(chain):
            reported.update(chain)
            run.report(dotted(dotted("stores", start), "copy_of"),
                       f"the copies go round in a circle ({' -> '.join([*chain, start])}): the first store of a "
                       "chain of copies is the original, without copy_of")


def _check_pairs(schedule: object, stores: object, run: _Run) -> None:
    """Each [schedule.pairs.<name>] names a configured store that is a copy (it has copy_of)."""
    if not isinstance(schedule, dict) or not isinstance(schedule.get("pairs"), dict) or not isinstance(stores, dict):
        return
    copies = [name for name, raw in stores.items() if isinstance(raw, dict) and raw.get("copy_of")]
    for name in schedule["pairs"]:
        if name not in copies:
            known = f"the copies: {', '.join(copies)}" if copies else "no store has copy_of"
            run.report(dotted(dotted("schedule", "pairs"), name), f"names no copy store ({known})")


def describe(value: object) -> str:
    """A TOML value as a message shows it: `integer 3`, `boolean true`, `string "x"`, `table`."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"{'integer' if isinstance(value, int) else 'float'} {value}"
    if isinstance(value, str):
        return f"string {_shorten(json.dumps(value, ensure_ascii=False))}"
    if isinstance(value, list):
        return f"array {_shorten(json.dumps(value, ensure_ascii=False, default=str))}"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return f"date/time {value.isoformat()}"
    return type(value).__name__


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
