"""The audit trail: append-only, filtered, exported as CSV a spreadsheet cannot turn into formulas."""

from __future__ import annotations

import csv
import io
import json

import pytest

from rtvault.catalog.audit import Entry, entries, record, to_csv
from rtvault.errors import CatalogError, InputError


@pytest.fixture
def db(catalog):  # conftest.py: each test runs on SQLite and on PostgreSQL
    return catalog


def _fill(db) -> None:
    record(db, user="e.dupre", address="10.0.0.7", action="login")
    record(db, user="e.dupre", address="10.0.0.7", action="search", detail={"last_name": "lefèvre", "born": "1950"})
    record(db, user="e.dupre", address="10.0.0.7", action="view", patient="3f2a9c0e11b4d7a8")
    record(db, user="c.roux", address="10.0.0.8", action="download", patient="3f2a9c0e11b4d7a8",
           detail={"snapshot": "a1b2c3"})
    record(db, user="c.roux", address="10.0.0.8", action="restore", patient="9e8d7c6b5a493827", result="refused")


def test_entries_newest_first_with_compact_json_detail(db):
    _fill(db)
    found, total = entries(db)
    assert total == 5 and [e.action for e in found] == ["restore", "download", "view", "search", "login"]
    search = found[3]
    assert json.loads(search.detail) == {"last_name": "lefèvre", "born": "1950"}
    assert " " not in search.detail and "lefèvre" in search.detail
    assert search.to_json()["user"] == "e.dupre" and search.time.endswith("Z")
    assert found[0].result == "refused"


def test_filters_and_paging(db):
    _fill(db)
    assert entries(db, user="c.roux")[1] == 2
    assert [e.action for e in entries(db, patient="3f2a9c0e11b4d7a8")[0]] == ["download", "view"]
    assert entries(db, action="search", user="c.roux") == ([], 0)
    page, total = entries(db, limit=2, offset=2)
    assert total == 5 and [e.action for e in page] == ["view", "search"]
    today = entries(db)[0][0].time[:10]
    assert entries(db, since=today, until=today)[1] == 5  # a bare until date means up to the end of that day
    assert entries(db, until="2001-01-01")[1] == 0
    assert entries(db, since="2999-01-01T00:00:00+02:00")[1] == 0
    with pytest.raises(InputError, match="not a date"):
        entries(db, since="yesterday")
    with pytest.raises(InputError, match="limit"):
        entries(db, limit=-1)


_ROW = "(id, time, username, address, action) VALUES (1, '2020-01-01T00:00:00Z', 'nobody', '', 'login')"
# Every SQL form that changes or removes rows, with the databases that have it.
REWRITES = [
    ("UPDATE audit SET username = 'nobody'", "both"),
    ("UPDATE audit SET id = id + 100 WHERE id = 1", "both"),
    ("DELETE FROM audit", "both"),
    ("DELETE FROM audit WHERE id = 1", "both"),
    (f"INSERT INTO audit {_ROW} ON CONFLICT (id) DO UPDATE SET username = excluded.username", "both"),
    (f"REPLACE INTO audit {_ROW}", "sqlite"),
    (f"INSERT OR REPLACE INTO audit {_ROW}", "sqlite"),
    ("UPDATE OR REPLACE audit SET id = 1 WHERE id = 2", "sqlite"),
    ("TRUNCATE audit", "postgresql"),
    ("TRUNCATE TABLE audit RESTART IDENTITY CASCADE", "postgresql"),
    ("MERGE INTO audit a USING (SELECT 1 AS id) s ON a.id = s.id WHEN MATCHED THEN DELETE", "postgresql"),
    ("MERGE INTO audit a USING (SELECT 1 AS id) s ON a.id = s.id WHEN MATCHED THEN UPDATE SET username = 'x'",
     "postgresql"),
    ("WITH gone AS (DELETE FROM audit RETURNING id) SELECT COUNT(*) FROM gone", "postgresql"),
]


@pytest.mark.parametrize(("catalog_url", "statement"), [
    (dialect, statement) for statement, dialects in REWRITES for dialect in ("sqlite", "postgresql")
    if dialects in ("both", dialect)], indirect=["catalog_url"])
def test_audit_is_append_only(db, statement):
    _fill(db)
    before = entries(db)
    with pytest.raises(CatalogError, match="append-only"):
        db.execute(statement)
    assert entries(db) == before
    record(db, user="e.dupre", address="10.0.0.7", action="logout")  # appending still works
    assert entries(db)[1] == 6


def test_csv_has_a_header_and_defuses_formulas(db):
    hostile = "=HYPERLINK(\"http://evil.example\",\"clic\")"
    record(db, user="@admin", address="10.0.0.9", action="search", detail=hostile, patient="+33123456789")
    record(db, user="e.dupre", address="10.0.0.9", action="view", patient="-1", detail={"note": "N'Diaye, Éloïse"})
    text = to_csv(entries(db)[0])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["id", "time", "user", "address", "action", "patient", "detail", "result"]
    view, search = rows[1], rows[2]
    assert view[5] == "'-1" and json.loads(view[6]) == {"note": "N'Diaye, Éloïse"}
    assert search[2] == "'@admin"
    assert search[6] == "'" + hostile and search[5] == "'+33123456789"
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


def test_csv_of_nothing_is_just_the_header():
    assert to_csv([]).strip() == "id,time,user,address,action,patient,detail,result"
    entry = Entry(1, "2026-11-24T07:33:18Z", "a", "cli", "user_add", "", "", "ok")
    assert to_csv([entry]).splitlines()[1] == "1,2026-11-24T07:33:18Z,a,cli,user_add,,,ok"


def test_what_a_request_typed_is_capped(db):
    huge = "é" * 100_000
    record(db, user=huge, address=huge, action="search", patient=huge, result=f"no patient {huge!r}",
           detail={"last_name": huge, "words": [huge[:300]] * 1000, huge: "x"})
    record(db, user="e.dupre", address="10.0.0.7", action="view", detail=huge)
    record(db, user="e.dupre", address="10.0.0.7", action="search", detail={f"k{i}": [huge] * 20 for i in range(20)})
    many, viewed, searched = entries(db)[0]
    assert all(len(value) <= 200 for value in (searched.user, searched.address, searched.patient))
    assert searched.user.endswith("…") and len(searched.result) <= 1000
    detail = json.loads(searched.detail)
    assert len(detail["last_name"]) == 200 and len(detail["words"]) == 20
    assert all(len(word) == 200 for word in detail["words"]) and max(map(len, detail)) <= 200
    assert len(viewed.detail) <= 8000
    assert len(many.detail) <= 8000 and "truncated" in json.loads(many.detail)
