"""The catalog's own state taken (SQLite's online backup API, PostgreSQL's pg_dump) and put back into a new
catalog, on both databases and across them; pg_dump's COPY text read back whatever the values hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.catalog import new_url
from rtvault.catalog import open_catalog
from rtvault.catalog.own_backup import OWN_TABLES, _connection, parse_copy, put_back, take
from rtvault.catalog.users import add_user, authenticate, create_token, token_user
from rtvault.catalog.volumes import Held, Volume, all_volumes, held, record_disk, register
from rtvault.config.web import Ldap
from rtvault.store import catalog_backups

PASSWORD = "Élodie-Dupré-2026\ttab"
ODD = "disque\t« n°1 »\nligne \\N \\. fin"  # a tab, a line feed, a backslash, what COPY's text format escapes


def _fill(db) -> str:
    add_user(db, "e.ndiaye", "admin", PASSWORD)
    add_user(db, "hlefevre", "viewer", None, source="ldap")
    token = create_token(db, "e.ndiaye", label="export \\ « nuit »")
    register(db, Volume("archives-a", "1f2e-uuid", ODD, "2026-01-02T03:04:05Z"))
    record_disk(db, "archives-a", ODD, "2026-01-03T00:00:00Z",
                [Held("a" * 64, "a.tar.gz", 2 ** 40, "2026-01-03T00:00:00Z")])
    db.execute("INSERT INTO store_samples (store, time, total_bytes, free_bytes, store_bytes) VALUES (?, ?, ?, ?, ?)",
               ("0" * 32, "2026-01-03T00:00:00Z", 2 ** 41, 2 ** 40, None))
    return token


@pytest.mark.parametrize("target", ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def test_what_lives_only_in_the_catalog_comes_back_whole(catalog, request: pytest.FixtureRequest, tmp_path: Path,
                                                        target: str) -> None:
    token = _fill(catalog)
    taken_with, tables = take(catalog)
    assert set(tables) == set(OWN_TABLES) and ("pg_dump" in taken_with) == (catalog.dialect == "postgresql")
    document = catalog_backups.CatalogBackup("20260101T000000Z-abcdef", "2026-01-01T00:00:00Z", "h", catalog.dialect,
                                             taken_with, tables)
    key = catalog_backups.key_of(document.id)
    read = catalog_backups.decode(catalog_backups.encode(document), key)  # through the stored form
    (tmp_path / "new").mkdir()
    with open_catalog(new_url(request, target, tmp_path / "new", migrated=False)) as fresh:
        done = put_back(fresh, read.tables)
        assert (done.users, done.tokens, done.volumes, done.volume_archives, done.store_samples) == (
            ["e.ndiaye", "hlefevre"], 1, ["archives-a"], 1, 1)
        assert authenticate(fresh, Ldap(), "e.ndiaye", PASSWORD).role == "admin"
        assert token_user(fresh, token).name == "e.ndiaye"
        [disk] = all_volumes(fresh)
        assert (disk.path, disk.archives) == (ODD, 1) and held(fresh, "archives-a")["a" * 64].bytes == 2 ** 40
        again = put_back(fresh, read.tables)  # a second time: everything is there, nothing overwritten
        assert (again.users, again.users_kept, again.tokens, again.volumes_kept) == (
            [], ["e.ndiaye", "hlefevre"], 0, ["archives-a"])


def test_a_user_already_in_the_new_catalog_is_kept_with_its_password(tmp_path: Path) -> None:
    with open_catalog(f"sqlite:///{tmp_path / 'old.sqlite'}") as old:
        token = _fill(old)
        _, tables = take(old)
    with open_catalog(f"sqlite:///{tmp_path / 'new.sqlite'}") as new:
        add_user(new, "e.ndiaye", "viewer", "un tout autre mot de passe")
        register(new, Volume("archives-a", "another-disk", "/media/x", "2026-02-01T00:00:00Z"))
        done = put_back(new, tables)
        assert (done.users, done.users_kept, done.tokens_not_restored) == (["hlefevre"], ["e.ndiaye"], 1)
        assert done.volumes_kept == ["archives-a"] and done.volume_archives == 0  # another disk of that label
        assert authenticate(new, Ldap(), "e.ndiaye", PASSWORD) is None and token_user(new, token) is None


def test_copy_text_is_read_back_exactly() -> None:
    dump = ("SET client_encoding = 'UTF8';\n\nCOPY public.volumes (label, uuid, path, created, last_seen) FROM stdin;\n"
            "a\tu\tdisque\\t« n°1 »\\nligne \\\\N \\\\. fin\t2026\t\\N\n"
            "b\t\\x41\\101\\b\\f\\v\\r\t\t2026\t2027\n\\.\n\n")
    [(columns, rows)] = parse_copy(dump).values()
    assert columns == ("label", "uuid", "path", "created", "last_seen")
    assert rows == [["a", "u", ODD, "2026", None],
                    ["b", "AA\b\f\v\r", "", "2026", "2027"]]
    with pytest.raises(ValueError, match="cut short"):
        parse_copy("COPY public.users (name) FROM stdin;\nx\n")
    with pytest.raises(ValueError, match="2 values for 1 columns"):
        parse_copy("COPY public.users (name) FROM stdin;\nx\ty\n\\.\n")


def test_pg_dump_is_never_given_the_password_on_its_command_line() -> None:
    url, environment = _connection("postgresql://rtvault:s%40cret@db.example:5433/rtvault?sslmode=require")
    assert url == "postgresql://rtvault@db.example:5433/rtvault?sslmode=require"
    assert environment == {"PGPASSWORD": "s@cret"}
    url, environment = _connection("postgresql://db/rtvault?password=x&application_name=rtvault")
    assert "password" not in url and environment == {"PGPASSWORD": "x"}


@pytest.mark.parametrize(("change", "said"), [
    (lambda d: d.replace(b'"viewer"', b'"admin"'), "does not match its integrity hash"),
    (lambda d: d[: len(d) // 2], "not a JSON"),
    (lambda d: b"\xff\xfe", "not a JSON"),
    (lambda d: b'{"format": "rtvault-journal"}', "not a catalog backup"),
])
def test_a_damaged_backup_document_is_refused(tmp_path: Path, change, said: str) -> None:
    with open_catalog(f"sqlite:///{tmp_path / 'c.sqlite'}") as db:
        _fill(db)
        _, tables = take(db)
    document = catalog_backups.CatalogBackup("20260101T000000Z-abcdef", "t", "h", "sqlite", "x", tables)
    with pytest.raises(ValueError, match=said):
        catalog_backups.decode(change(catalog_backups.encode(document)), catalog_backups.key_of(document.id))
    with pytest.raises(ValueError, match="not the catalog backup of this name"):
        catalog_backups.decode(catalog_backups.encode(document), "catalog/20260101T000000Z-000000.json")
