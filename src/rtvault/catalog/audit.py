"""The audit trail: who did what, when, from where, to which patient, with which result.

The `audit` table is append-only (database triggers refuse UPDATE and DELETE), so this module only adds
and reads. Times are UTC ISO strings, as everywhere in the catalog.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, astuple, dataclass, fields
from datetime import UTC, date, datetime, timedelta

from rtvault.catalog.db import Catalog
from rtvault.errors import InputError
from rtvault.utc import iso, now_iso

MAX_LIMIT = 10_000
MAX_VALUE = 200  # characters of one value typed in a request (a name, a criterion, a path)
MAX_ITEMS = 20  # values of a detail's list or object
MAX_DETAIL = 8000  # characters of a whole detail
MAX_RESULT = 1000  # characters of a result (an error's sentence quotes what was asked)
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Actor:
    """Who made a change (a web user, or the operating-system user at the command line) and from where (a
    client address, or "cli")."""

    user: str
    address: str


@dataclass(frozen=True)
class Entry:
    id: int
    time: str
    user: str
    address: str
    action: str
    patient: str
    detail: str
    result: str

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def cap(text: str, most: int) -> str:
    """`text` cut to `most` characters, the cut marked with …"""
    return text if len(text) <= most else text[:most - 1] + "…"


def capped(value: object) -> object:
    if isinstance(value, str):
        return cap(value, MAX_VALUE)
    if isinstance(value, list | tuple):
        return [capped(item) for item in value[:MAX_ITEMS]]
    if isinstance(value, dict):
        return {cap(str(k), MAX_VALUE): capped(v) for k, v in list(value.items())[:MAX_ITEMS]}
    return value


def _compact(data: object) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def record(db: Catalog, *, user: str, address: str, action: str, patient: str = "", detail: dict | str = "",
           result: str = "ok", journal: tuple[str, int] | None = None, time: str = "") -> None:
    """Append one entry; a dict detail (search criteria, snapshot...) is stored as compact JSON. What a request
    typed is capped (MAX_VALUE per value, MAX_DETAIL and MAX_RESULT in all), so no request writes a big row.
    `journal`: the journal segment id and the entry's index in it, when the entry is in the journal (an entry
    without one was written only here: before the journal of actions, or by the catalog itself)."""
    if isinstance(detail, dict):
        detail = _compact(capped(detail))
        if len(detail) > MAX_DETAIL:  # still too big (many values): kept as valid JSON all the same
            detail = _compact({"truncated": cap(detail, MAX_DETAIL // 3)})
    segment, index = journal if journal is not None else (None, None)
    row = (time or now_iso(), cap(user, MAX_VALUE), cap(address, MAX_VALUE), cap(action, MAX_VALUE),
           cap(patient, MAX_VALUE), cap(detail, MAX_DETAIL), cap(result, MAX_RESULT), segment, index)
    db.insert("INSERT INTO audit (time, username, address, action, patient, detail, result, journal_id, "
              "journal_entry) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)


def _moment(value: str, option: str, *, end_of_day: bool) -> str:
    """A date or date-time (UTC unless it says otherwise) as the catalog's ISO form; a bare date given as
    `until` means up to the end of that day."""
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1 if end_of_day else 0)
        else:
            moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
    except ValueError:
        raise InputError(f"{option} {value!r} is not a date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM:SS)") from None
    except OverflowError:  # 9999-12-31 as `until` is the day after the last one a date can hold
        raise InputError(f"{option} {value!r} is out of range: give a date before 9999-12-31") from None
    return iso(moment)


def _where(user: str, action: str, patient: str, since: str, until: str) -> tuple[str, list[str]]:
    clauses, params = [], []
    for column, value in (("username", user), ("action", action), ("patient", patient)):
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    if since:
        clauses.append("time >= ?")
        params.append(_moment(since, "since", end_of_day=False))
    if until:
        bare_date = len(until) == 10
        clauses.append("time < ?" if bare_date else "time <= ?")
        params.append(_moment(until, "until", end_of_day=True))
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def entries(db: Catalog, *, user: str = "", action: str = "", patient: str = "", since: str = "", until: str = "",
            limit: int = 100, offset: int = 0) -> tuple[list[Entry], int]:
    """Entries matching every filter given (exact user, action and patient; time range), newest first,
    and how many match in all."""
    if not 0 <= limit <= MAX_LIMIT or offset < 0:
        raise InputError(f"limit must be 0 to {MAX_LIMIT} and offset 0 or more")
    where, params = _where(user, action, patient, since, until)
    rows = db.execute("SELECT id, time, username, address, action, patient, detail, result FROM audit "
                      f"{where} ORDER BY time DESC, id DESC LIMIT {int(limit)} OFFSET {int(offset)}", params)
    total = db.one(f"SELECT COUNT(*) FROM audit {where}", params)
    return [Entry(*row) for row in rows], int(total[0]) if total else 0


def spreadsheet_cell(value: object, clean: Callable[[str], str] = str) -> object:
    """A CSV cell a spreadsheet will not run: text starting like a formula (`=`, `+`, `-`, `@`, tab, CR) gets a
    leading apostrophe, after `clean` rewrote it."""
    if isinstance(value, str):
        value = clean(value)
        if value.startswith(_FORMULA_START):
            return "'" + value
    return value


def to_csv(rows: Iterable[Entry], clean: Callable[[str], str] = str) -> str:
    """The entries as CSV with a header row; text a spreadsheet would run as a formula is defused with '.
    `clean` rewrites each text cell first (the command line escapes control characters for a terminal)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([f.name for f in fields(Entry)])
    for entry in rows:
        writer.writerow([spreadsheet_cell(value, clean) for value in astuple(entry)])
    return out.getvalue()


def actions(db: Catalog) -> list[str]:
    """Every action recorded so far, for the audit page's filter."""
    return [row[0] for row in db.execute("SELECT DISTINCT action FROM audit ORDER BY action")]
