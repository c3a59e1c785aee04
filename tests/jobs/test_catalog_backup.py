"""Which stores may hold the catalog's backup, and the whole round trip through the stores with a PostgreSQL
catalog: its database lost and created anew, `catalog rebuild` brings the users, tokens and disks back."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit import postgres
from kit.config import write_config
from kit.crypto import PASSPHRASE
from rtvault.catalog import open_catalog
from rtvault.catalog.users import add_user, authenticate, create_token, token_user
from rtvault.catalog.volumes import Volume, all_volumes, register
from rtvault.config import load
from rtvault.config.web import Ldap
from rtvault.configured import init_stores
from rtvault.jobs.catalog import rebuild_all
from rtvault.jobs.catalog_backup import back_up, eligibility

PASSWORD = "Élodie-Dupré-2026"


def _config(tmp_path: Path, url: str, **stores: object) -> Path:
    passphrase = tmp_path / "pass"
    passphrase.write_bytes(PASSPHRASE + b"\n")
    passphrase.chmod(0o600)
    (tmp_path / "pinnacle").mkdir(exist_ok=True)
    return write_config(tmp_path / "rtvault.toml", root=tmp_path / "pinnacle", stores=stores, catalog={"url": url},
                        daemon={"state_dir": tmp_path / "state"})


def test_only_an_encrypted_or_owner_only_store_may_hold_it(tmp_path: Path) -> None:
    passphrase = tmp_path / "pass"
    config = load(_config(tmp_path, f"sqlite:///{tmp_path / 'c.sqlite'}", mine=tmp_path / "mine",
                          shared=tmp_path / "shared", sealed={"path": tmp_path / "sealed", "encrypt": True,
                                                              "passphrase_file": passphrase},
                          bucket={"url": "s3://bucket/site", "endpoint": "http://127.0.0.1:9"},
                          theirs={"path": tmp_path / "theirs", "read_only": True}))
    for name, mode in (("mine", 0o700), ("shared", 0o750), ("sealed", 0o755)):
        (tmp_path / name).mkdir(mode=mode)
        (tmp_path / name).chmod(mode)
    assert eligibility(config, "mine") == (True, "owner-only")
    assert eligibility(config, "sealed") == (True, "encrypted")
    allowed, why = eligibility(config, "shared")
    assert not allowed and "store shared" in why and "mode 0750" in why and "chmod 700" in why
    allowed, why = eligibility(config, "bucket")
    assert not allowed and "s3://bucket/site" in why and "not encrypted" in why
    allowed, why = eligibility(config, "theirs")
    assert not allowed and "read-only on this host" in why
    if os.geteuid() == 0:  # a directory of mode 0700 that belongs to someone else is not owner-only for us
        os.chown(tmp_path / "mine", 1, 1)
        allowed, why = eligibility(config, "mine")
        assert not allowed and "belongs to user id 1" in why


@pytest.fixture(scope="module")
def server() -> Iterator[postgres.PostgresServer]:
    started = postgres.start_or_skip()
    yield started
    started.stop()


@pytest.mark.slow
def test_a_postgresql_catalog_lost_comes_back_with_its_users(tmp_path: Path, server: postgres.PostgresServer) -> None:
    url = server.new_database(migrated=False)
    config = load(_config(tmp_path, url, vault=tmp_path / "vault", sealed={
        "path": tmp_path / "sealed", "encrypt": True, "passphrase_file": tmp_path / "pass"}))
    init_stores(config)
    (tmp_path / "vault").chmod(0o755)  # readable by others: the encrypted store alone gets it
    with open_catalog(url) as db:
        add_user(db, "e.ndiaye", "admin", PASSWORD)
        token = create_token(db, "e.ndiaye")
        register(db, Volume("archives-a", "uuid-1", "/media/a", "2026-01-01T00:00:00Z"))
    saved = back_up(config)
    assert saved.written == {"sealed": "encrypted"} and "pg_dump" in saved.taken_with and saved.rows["users"] == 1
    assert list(saved.not_written) == ["vault"] and saved.verdict().code == 0
    database = url.rsplit("/", 1)[1]
    server.admin(f"DROP DATABASE {database}")
    server.admin(f"CREATE DATABASE {database} {postgres.DATABASE_OPTIONS}")
    rebuilt = rebuild_all(config)
    assert rebuilt.restored.store == "sealed" and rebuilt.restored.restored.users == ["e.ndiaye"]
    assert rebuilt.verdict().code == 0
    with open_catalog(url) as db:
        assert authenticate(db, Ldap(), "e.ndiaye", PASSWORD).role == "admin"
        assert token_user(db, token).name == "e.ndiaye"
        assert [v.label for v in all_volumes(db)] == ["archives-a"]
