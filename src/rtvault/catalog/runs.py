"""The run journal in the catalog: one row per run record of the stores' `journal/` segments (store/journal.py)
in `runs`, one row per check that changed in an alert record in `health_events`, and one row per action entry
in `audit` (the audit trail, which indexes them).

The stores are the truth: a record is added when the daemon writes it, and `catalog sync` adds every segment
of a store that the catalog lacks (after the loss of the catalog, or a record spooled while it was down).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from rtvault.catalog import audit
from rtvault.catalog.db import Catalog
from rtvault.errors import StoreError
from rtvault.store import Store, journal


@dataclass(frozen=True)
class RunRow:
    id: str
    job: str
    trigger: str
    started: str
    ended: str
    result: str
    error: str
    host: str
    record: dict[str, object]


@dataclass(frozen=True)
class HealthEvent:
    """A health check's change of status, as an alert record told it (`notified`: the alert channels that were
    to carry it, empty when none was configured)."""

    id: str
    check: str
    status: str
    previous: str | None
    at: str
    message: str
    notified: tuple[str, ...]
    host: str


def add(catalog: Catalog, records: Iterable[dict[str, object]]) -> int:
    """Index run and alert records (each as its segment holds it); one already indexed is left as it is. Returns
    how many were new."""
    records = [r for r in records if r.get("kind") in ("run", "alert", "actions")]
    if not records:
        return 0
    with catalog.transaction():
        known = _known(catalog, [str(r["id"]) for r in records])
        new = [r for r in records if str(r["id"]) not in known]
        runs = [(str(r["id"]), str(r.get("job", "")), str(r.get("trigger", "")), str(r.get("start", "")),
                 str(r.get("end", "")), str(r.get("result", "")), str(r.get("error") or ""), str(r.get("host", "")),
                 json.dumps(r, sort_keys=True)) for r in new if r["kind"] == "run"]
        if runs:
            catalog.many("INSERT INTO runs (id, job, trigger, started, ended, result, error, host, record) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", runs)
        events = [(str(r["id"]), seq, str(change["check"]), str(change["status"]), change.get("previous"),
                   str(r["time"]), str(change.get("message", "")), ",".join(map(str, r.get("channels") or ())),
                   str(r.get("host", ""))) for r in new if r["kind"] == "alert"
                  for seq, change in enumerate(r.get("changes") or ())]
        if events:
            catalog.many("INSERT INTO health_events (id, seq, check_name, status, previous, at, message, notified, "
                         "host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", events)
        for r in (r for r in new if r["kind"] == "actions"):
            for index, item in enumerate(r.get("entries") or ()):
                actor = item["actor"]
                where = actor.get("address") or f"{actor['via']}@{actor['host']}"
                audit.record(catalog, user=actor["user"], address=where, action=item["action"],
                             patient=str(item.get("patient", "")), detail=item.get("detail") or "",
                             result=item["result"], journal=(str(r["id"]), index), time=item["time"])
    return len(new)


def _known(catalog: Catalog, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        for table, column in (("runs", "id"), ("health_events", "id"), ("audit", "journal_id")):
            found |= {row[0] for row in catalog.execute(
                f"SELECT DISTINCT {column} FROM {table} WHERE {column} IN ({marks})", chunk)}
    return found


def sync_store(catalog: Catalog, store: Store) -> tuple[int, list[str]]:
    """Index the journal segments of a store that the catalog lacks: (how many, problems). A damaged segment is
    named, never indexed (verify and repair deal with it)."""
    keys = {key: record_id for key in store.backend.list(journal.FOLDER) if (record_id := journal.id_of(key))}
    known = _known(catalog, sorted(keys.values()))
    records, problems = [], []
    for key, record_id in sorted(keys.items()):
        if record_id in known:
            continue
        try:
            records.append(journal.decode(store.backend.get(key), key))
        except (ValueError, StoreError) as error:  # damaged, or the store failed meanwhile
            problems.append(f"{key}: not indexed: {error}")
    return add(catalog, records), problems


def runs(catalog: Catalog, *, job: str | None = None, since: str | None = None, before: str | None = None,
         limit: int | None = None) -> list[RunRow]:
    """Runs, newest first, of one job and/or started at or after `since` and before `before` (UTC ISO)."""
    where, params = [], []
    if job is not None:
        where.append("job = ?")
        params.append(job)
    if since is not None:
        where.append("started >= ?")
        params.append(since)
    if before is not None:
        where.append("started < ?")
        params.append(before)
    sql = "SELECT id, job, trigger, started, ended, result, error, host, record FROM runs"
    sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY started DESC, id DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [RunRow(*row[:8], json.loads(row[8])) for row in catalog.execute(sql, params)]


def last_runs(catalog: Catalog) -> dict[str, RunRow]:
    """The newest run of each job."""
    latest: dict[str, RunRow] = {}
    for row in catalog.execute("SELECT r.id, r.job, r.trigger, r.started, r.ended, r.result, r.error, r.host, "
                               "r.record FROM runs r JOIN (SELECT job, MAX(started) AS started FROM runs GROUP BY "
                               "job) m ON r.job = m.job AND r.started = m.started ORDER BY r.id"):
        latest[row[1]] = RunRow(*row[:8], json.loads(row[8]))
    return latest


def health_events(catalog: Catalog, *, before: str | None = None) -> list[HealthEvent]:
    """Every check's changes of status, oldest first, up to `before` (UTC ISO) when given."""
    sql = "SELECT id, check_name, status, previous, at, message, notified, host FROM health_events"
    params = [] if before is None else [before]
    sql += (" WHERE at < ?" if before is not None else "") + " ORDER BY at, id, seq"
    return [HealthEvent(row[0], row[1], row[2], row[3], row[4], row[5], tuple(filter(None, row[6].split(","))),
                        row[7]) for row in catalog.execute(sql, params)]


def journal_ids(catalog: Catalog) -> set[str]:
    """Every journal record the catalog indexes (runs, alerts, actions)."""
    found: set[str] = set()
    for sql in ("SELECT id FROM runs", "SELECT DISTINCT id FROM health_events",
                "SELECT DISTINCT journal_id FROM audit WHERE journal_id IS NOT NULL"):
        found |= {row[0] for row in catalog.execute(sql)}
    return found
