"""The catalog's schema and connection on SQLite and PostgreSQL: named migrations applied once and in order,
an old catalog upgraded in place, the append-only audit trail, transactions, and clear connection errors."""

from __future__ import annotations

import os
import socket
import stat

import pytest

from rtvault.catalog import Catalog, dicom, dicom_patients, open_catalog, schema
from rtvault.catalog.search import Criteria, search
from rtvault.demo.catalog import fill
from rtvault.errors import CatalogError, ConfigError, http_status
from rtvault.store.receipts import ReceivedInstance
from rtvault.utc import now_iso

NAMES = [name for name, _statements in schema.MIGRATIONS]


def recorded(catalog: Catalog) -> list[str]:
    return [row[0] for row in catalog.execute("SELECT name FROM schema_migrations ORDER BY applied, name")]


def test_migrations_applied_once_in_order(empty_url: str) -> None:
    with open_catalog(empty_url, migrate=False) as catalog:
        assert schema.apply_migrations(catalog) == NAMES
        assert recorded(catalog) == NAMES
        assert sorted(NAMES) == NAMES and len(set(NAMES)) == len(NAMES)
        assert all(len(row[0]) == 20 and row[0].endswith("Z") for row in catalog.execute(
            "SELECT applied FROM schema_migrations"))
        assert schema.apply_migrations(catalog) == []
    with open_catalog(empty_url) as again:
        assert recorded(again) == NAMES
        assert again.one("SELECT COUNT(*) FROM schema_migrations") == (len(NAMES),)


def test_an_old_catalog_is_upgraded_and_keeps_its_data(empty_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_catalog(empty_url, migrate=False) as old:
        monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
        assert schema.apply_migrations(old) == NAMES[:1]
        old.execute("INSERT INTO patients (key, path, last_name, first_name, sort_name, status) "
                    "VALUES (?, ?, ?, ?, ?, ?)", ("0123456789abcdef", "Institution_1/Mount_0/Patient_9",
                                                  "LEFÈVRE", "Anaïs", "lefevre anais", "deleted"))
        monkeypatch.undo()
    with open_catalog(empty_url) as upgraded:
        assert recorded(upgraded) == NAMES
        assert upgraded.one("SELECT last_name FROM patients WHERE key = ?", ("0123456789abcdef",)) == ("LEFÈVRE",)
        assert search(upgraded, Criteria(status="deleted")).total == 1
        upgraded.execute("INSERT INTO users (name, role, created) VALUES (?, ?, ?)", ("alice", "viewer", now_iso()))


def test_a_catalog_from_before_the_year_physician_index_finds_the_same(empty_url: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    before = NAMES.index("0012_year_physician_in_name_order")
    with open_catalog(empty_url, migrate=False) as old:
        monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:before])
        assert schema.apply_migrations(old) == NAMES[:before]
        fill(old, 300, seed=5)
        physician, year = old.one("SELECT physician, birth_year FROM patients WHERE birth_year IS NOT NULL "
                                  "ORDER BY id LIMIT 1")
        asked = [Criteria(born=str(year), physician=physician), Criteria(born=f"{year - 5}-{year + 5}")]
        # What each criterion matches, in name order, read with no index chosen (the search code of today reads
        # columns the old schema lacks).
        seen = [[key for (key,) in old.execute(f"SELECT key FROM patients WHERE {where} ORDER BY sort_name, id",
                                               params)]
                for where, params in (("birth_year = ? AND physician = ?", (year, physician)),
                                      ("birth_year BETWEEN ? AND ?", (year - 5, year + 5)))]
        monkeypatch.undo()
    with open_catalog(empty_url) as upgraded:
        assert recorded(upgraded) == NAMES
        found = [search(upgraded, criteria, per_page=50) for criteria in asked]
        assert [[p["key"] for p in result.patients] for result in found] == [keys[:50] for keys in seen]
        assert [result.total for result in found] == [len(keys) for keys in seen]
    assert all(seen)


def test_audit_is_append_only(catalog: Catalog) -> None:
    row = ("2026-11-24T07:33:18Z", "alice", "127.0.0.1", "search", "", '{"last_name": "lefevre"}')
    first = catalog.insert("INSERT INTO audit (time, username, address, action, patient, detail) "
                           "VALUES (?, ?, ?, ?, ?, ?)", row)
    second = catalog.insert("INSERT INTO audit (time, username, address, action, patient, detail) "
                            "VALUES (?, ?, ?, ?, ?, ?)", row)
    assert second > first
    for statement in ("UPDATE audit SET username = 'mallory'", "DELETE FROM audit",
                      f"DELETE FROM audit WHERE id = {first}"):
        with pytest.raises(CatalogError, match="append-only"):
            catalog.execute(statement)
    assert catalog.execute("SELECT id, username, result FROM audit ORDER BY id") == [
        (first, "alice", "ok"), (second, "alice", "ok")]


def test_a_failed_transaction_leaves_nothing(catalog: Catalog) -> None:
    with pytest.raises(CatalogError), catalog.transaction():
        catalog.execute("INSERT INTO users (name, role, created) VALUES (?, ?, ?)", ("bob", "viewer", now_iso()))
        with catalog.transaction():  # joins the outer one
            catalog.execute("INSERT INTO users (name, role, created) VALUES (?, ?, ?)", ("bob", "admin", now_iso()))
    assert catalog.execute("SELECT name FROM users") == []
    with catalog.transaction():
        catalog.many("INSERT INTO users (name, role, created) VALUES (?, ?, ?)",
                     [(name, "viewer", now_iso()) for name in ("bob", "carole")])
    assert catalog.execute("SELECT name FROM users ORDER BY name") == [("bob",), ("carole",)]


def test_same_sql_on_both(catalog: Catalog) -> None:
    # a literal percent sign next to placeholders, booleans from EXISTS, and text compared byte by byte
    assert catalog.one("SELECT ? || '%', ?", ("50", 7)) == ("50%", 7)
    assert bool(catalog.one("SELECT EXISTS (SELECT 1 FROM schema_migrations)")[0]) is True
    catalog.many("INSERT INTO terms (field, term, patient) VALUES (?, ?, ?)",
                 [("last", t, n) for n, t in enumerate(["lef", "lefa", "lef-b", "Lefz", "lég", "leg"])])
    assert catalog.execute("SELECT term FROM terms WHERE term >= ? AND term < ? ORDER BY term",
                           ("lef", "lef\x7f")) == [("lef",), ("lef-b",), ("lefa",)]


def test_unreachable_server_is_named_without_its_password() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(CatalogError) as raised:
        open_catalog(f"postgresql://rtvault:s3cr3t-pw@127.0.0.1:{port}/catalog")
    message = str(raised.value)
    assert f"postgresql://rtvault@127.0.0.1:{port}/catalog" in message
    assert "s3cr3t-pw" not in message
    assert http_status(raised.value) == 503  # the web interface says the catalog is unavailable, not a bug


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://root:pw@db/catalog", "neither sqlite:///PATH nor postgresql://"),
    ("sqlite:////nonexistent-dir/catalog.sqlite", "directory /nonexistent-dir does not exist"),
])
def test_bad_urls_are_config_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        open_catalog(url)
    assert "pw" not in str(raised.value)


@pytest.mark.parametrize("umask", [0o022, 0o000, 0o277])
def test_a_sqlite_catalog_is_owner_only_whatever_the_umask(tmp_path, umask):
    path = tmp_path / "catalog.sqlite"
    old = os.umask(umask)
    try:
        with open_catalog(f"sqlite:///{path}") as db:
            db.execute("INSERT INTO audit (time, username, action) VALUES ('2026-01-01T00:00:00Z', 'x', 'login')")
            modes = {name: stat.S_IMODE(os.stat(f"{path}{name}").st_mode) for name in ("", "-wal", "-shm")}
    finally:
        os.umask(old)
    assert modes == {"": 0o600, "-wal": 0o600, "-shm": 0o600}


def test_an_existing_sqlite_catalog_open_to_others_is_closed(tmp_path):
    path = tmp_path / "catalog.sqlite"
    open_catalog(f"sqlite:///{path}").close()
    path.chmod(0o644)  # as versions before 0.2 created it
    open_catalog(f"sqlite:///{path}").close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640, "others lose access; the group an administrator set stays"


def test_a_catalog_from_before_sites_gets_its_sources_and_its_stores_sites(empty_url: str,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    with open_catalog(empty_url, migrate=False) as old:
        monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:NAMES.index("0022_sites")])
        schema.apply_migrations(old)
        old.execute("INSERT INTO stores (id, name, site, seen) VALUES ('s1', 'primary', 'Site A', '2026-01-01Z')")
        pid = old.insert("INSERT INTO patients (key, path, sort_name, status) VALUES ('0123456789abcdef', "
                         "'Institution_1/Mount_0/Patient_9', 'x', 'active')")
        version = old.insert("INSERT INTO versions (patient, tree) VALUES (?, 't')", (pid,))
        for kind, ref, when in (("snapshot", "snap", "2026-01-02Z"), ("archive", "arch", "2026-01-01Z")):
            old.execute("INSERT INTO locations (version, patient, store, kind, ref, time) VALUES (?, ?, 's1', ?, ?, ?)",
                        (version, pid, kind, ref, when))
            old.execute("INSERT INTO indexed (store, kind, ref, time, source) VALUES ('s1', ?, ?, ?, ?)",
                        (kind, ref, when, "b" if kind == "snapshot" else "pinnacle"))
        old.execute("INSERT INTO users (name, role, created) VALUES ('alice', 'viewer', '2026-01-01Z')")
        monkeypatch.undo()
    with open_catalog(empty_url) as upgraded:
        assert upgraded.execute("SELECT kind, site, source FROM locations ORDER BY kind") == [
            ("archive", "Site A", ""), ("snapshot", "Site A", "b")]
        assert upgraded.one("SELECT site, source FROM patients") == ("Site A", "b")
        assert search(upgraded, Criteria(site="Site A", source="b")).total == 1
        assert upgraded.one("SELECT sites FROM users") == ("",)


def test_a_catalog_holding_received_instances_is_upgraded_and_answers_in_byte_order(
        empty_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_catalog(empty_url, migrate=False) as old:  # the DICOM node's first catalog, already in use
        monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:NAMES.index("0023_dicom_instances") + 1])
        schema.apply_migrations(old)
        fill(old, 40, seed=5)
        mrn, birth, key, site = old.one("SELECT mrn, birth_date, key, site FROM patients WHERE mrn <> '' AND "
                                        "birth_date IS NOT NULL ORDER BY key LIMIT 1")
        for n, (patient_id, name, born) in enumerate(((mrn, "PINNACLE^Linked", birth.replace("-", "")),
                                                      ("b-7", "MARTIN^Léa", ""), ("B_8", "Élodie^Zoé", ""))):
            old.execute("INSERT INTO dicom_instances (store, receipt, hash, size, sop_class, sop_instance, patient_id, "
                        "patient_name, birth_date, study_uid, series_uid, received, site) "
                        "VALUES ('s1', 'r1', ?, 10, '1.2.840.10008.5.1.4.1.1.2', ?, ?, ?, ?, ?, ?, ?, ?)",
                        (f"{n:064x}", f"1.2.3.{n}", patient_id, name, born, f"1.2.{9 + n}", f"1.2.{9 + n}.1",
                         "2026-01-01T00:00:00Z", site))
        monkeypatch.undo()
    with open_catalog(empty_url) as upgraded:
        assert recorded(upgraded) == NAMES
        with upgraded.transaction():
            dicom_patients.link(upgraded)  # what the next sync does with the rows 0024 unlinked
        assert [a["PatientID"] for a in dicom.find(upgraded, "PATIENT", {})] == sorted([mrn, "b-7", "B_8"])
        assert [a["StudyInstanceUID"] for a in dicom.find(upgraded, "STUDY", {})] == ["1.2.10", "1.2.11", "1.2.9"]
        assert [a["PatientID"] for a in dicom.find(upgraded, "PATIENT", {"PatientName": "martin^l*"})] == ["b-7"]
        [linked] = search(upgraded, Criteria(mrn=mrn)).patients
        assert linked["key"] == key and linked["dicom"]["instances"] == 1
        assert [p["status"] for p in search(upgraded, Criteria(mrn="B_8")).patients] == ["received"]
        # what 0023 could not hold on PostgreSQL: an object beyond 2 GiB
        dicom.add(upgraded, "s1", "r2", site, [ReceivedInstance("e" * 64, 5 * 2 ** 30, "2026-02-01T00:00:00Z", "SCU",
                                                                tags={"SOPClassUID": "1.2.840.10008.5.1.4.1.1.2",
                                                                      "SOPInstanceUID": "1.2.3.9",
                                                                      "StudyInstanceUID": "1.2.12",
                                                                      "SeriesInstanceUID": "1.2.12.1",
                                                                      "PatientID": "B_8"})])
        assert upgraded.one("SELECT size FROM dicom_instances WHERE sop_instance = '1.2.3.9'") == (5 * 2 ** 30,)
