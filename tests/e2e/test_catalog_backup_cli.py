"""`rtvault catalog backup` and the `catalog rebuild` that puts it back, as an administrator lives them: the
catalog file lost, users signing in again with their passwords, a store others may read refused and named, an
encrypted store holding only ciphertext, a killed backup, a damaged one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kit.cli import rtvault, rtvault_json
from kit.config import write_config
from kit.crypto import PASSPHRASE
from rtvault.catalog import open_catalog
from rtvault.catalog.users import authenticate, token_id, token_user
from rtvault.config.web import Ldap
from rtvault.store import catalog_backups

PASSWORD = "Éloïse-N'Diaye-2026"
OTHER = "un autre mot de passe bien long"


def _site(tmp_path: Path, pinnacle: Path, **stores: object) -> Path:
    passphrase = tmp_path / "safe.passphrase"
    passphrase.write_bytes(PASSPHRASE + b"\n")
    passphrase.chmod(0o600)
    given = {name: {"path": tmp_path / name, "encrypt": True, "passphrase_file": passphrase} if kind == "encrypted"
             else tmp_path / name for name, kind in stores.items()}
    config = write_config(tmp_path / "rtvault.toml", root=pinnacle, stores=given,
                          catalog={"url": f"sqlite:///{tmp_path / 'catalog.sqlite'}"})
    rtvault(config, "init")
    for name, kind in stores.items():
        (tmp_path / name).chmod(0o700 if kind == "owner-only" else 0o755)
    return config


def _lose_the_catalog(config: Path) -> None:
    for path in config.parent.glob("catalog.sqlite*"):
        path.unlink()


def _catalog(config: Path):
    return open_catalog(f"sqlite:///{config.parent / 'catalog.sqlite'}")


def _add_user(config: Path, name: str, role: str, password: str) -> None:
    rtvault(config, "user", "add", name, "--role", role, stdin=password + "\n")


def test_users_tokens_and_a_disk_come_back_after_the_catalog_is_lost(tmp_path: Path, pinnacle_sample: Path) -> None:
    config = _site(tmp_path, pinnacle_sample, vault="owner-only", nas="plain", safe="encrypted")
    _add_user(config, "e.ndiaye", "admin", PASSWORD)
    _add_user(config, "hlefevre", "viewer", PASSWORD)
    token = rtvault(config, "token", "create", "--user", "hlefevre").stdout.strip()
    (tmp_path / "disk").mkdir()
    rtvault(config, "volume", "init", tmp_path / "disk", "--label", "archives-a")
    rtvault(config, "backup")
    saved = rtvault_json(config, "catalog", "backup")
    assert saved["written"] == {"vault": "owner-only", "safe": "encrypted"}
    assert "store nas" in saved["not_written"]["nas"] and "readable by others" in saved["not_written"]["nas"]
    assert saved["rows"]["users"] == 2 and saved["rows"]["tokens"] == 1 and saved["rows"]["volumes"] == 1

    _lose_the_catalog(config)
    _add_user(config, "e.ndiaye", "viewer", OTHER)  # the administrator got in again before rebuilding
    rebuilt = rtvault(config, "catalog", "rebuild")
    assert f"catalog backup {saved['id']}" in rebuilt.stdout and "from store vault" in rebuilt.stdout
    assert "user(s) e.ndiaye" in rebuilt.stdout and "not overwritten" in rebuilt.stdout
    with _catalog(config) as db:
        assert authenticate(db, Ldap(), "hlefevre", PASSWORD).role == "viewer"  # signs in with the same password
        assert token_user(db, token).name == "hlefevre"
        assert authenticate(db, Ldap(), "e.ndiaye", OTHER).role == "viewer"  # kept as it is now
        assert authenticate(db, Ldap(), "e.ndiaye", PASSWORD) is None
        assert [row[0] for row in db.execute("SELECT path FROM patients")]  # the index is back too
    [disk] = rtvault_json(config, "volume", "list")
    assert disk["label"] == "archives-a"
    assert rtvault(config, "verify", "--store", "vault", "--all").returncode == 0  # catalog/ is no unknown file


def test_a_store_others_may_read_is_refused_and_named(tmp_path: Path, pinnacle_sample: Path) -> None:
    config = _site(tmp_path, pinnacle_sample, nas="plain")
    refused = rtvault(config, "catalog", "backup", expect=9)
    assert "not written to store nas" in refused.stderr and "readable by others (mode 0755)" in refused.stderr
    assert f"chmod 700 {tmp_path / 'nas'}" in refused.stderr and "written to no store" in refused.stderr
    assert not (tmp_path / "nas" / "catalog").exists()
    (tmp_path / "nas").chmod(0o700)
    assert rtvault_json(config, "catalog", "backup")["written"] == {"nas": "owner-only"}
    [written] = (tmp_path / "nas" / "catalog").iterdir()
    assert written.stat().st_mode & 0o777 == 0o600


def test_an_encrypted_store_holds_it_only_as_ciphertext(tmp_path: Path, pinnacle_sample: Path) -> None:
    config = _site(tmp_path, pinnacle_sample, vault="owner-only", safe="encrypted")
    _add_user(config, "e.ndiaye", "admin", PASSWORD)
    rtvault(config, "catalog", "backup")
    with _catalog(config) as db:
        [(secret,)] = db.execute("SELECT password_hash FROM users")

    def holding(store: str) -> list[Path]:
        return [path for path in (tmp_path / store).rglob("*") if path.is_file()
                and (secret.encode() in path.read_bytes() or b"e.ndiaye" in path.read_bytes())]

    assert holding("vault")  # the owner-only store holds it in clear: the search would find it
    assert holding("safe") == []


def test_a_damaged_backup_is_named_and_the_index_is_still_rebuilt(tmp_path: Path, pinnacle_sample: Path) -> None:
    config = _site(tmp_path, pinnacle_sample, vault="owner-only")
    rtvault(config, "backup")
    _add_user(config, "e.ndiaye", "admin", PASSWORD)
    older = rtvault_json(config, "catalog", "backup")["id"]
    time.sleep(1.1)  # backup ids are named by the second
    _add_user(config, "hlefevre", "viewer", PASSWORD)
    newer = rtvault_json(config, "catalog", "backup")["id"]
    newest = tmp_path / "vault" / catalog_backups.key_of(newer)
    newest.write_bytes(newest.read_bytes().replace(b'"viewer"', b'"admin"'))  # a role raised by hand
    _lose_the_catalog(config)
    rebuilt = rtvault(config, "catalog", "rebuild", "--json", expect=9)
    report = json.loads(rebuilt.stdout)
    [problem] = report["catalog_backup"]["problems"]
    assert catalog_backups.key_of(newer) in problem and "does not match its integrity hash" in problem
    assert report["catalog_backup"]["id"] == older and report["catalog_backup"]["restored"]["users"] == ["e.ndiaye"]
    assert report["stores"][0]["snapshots_added"] == 1
    (tmp_path / "vault" / catalog_backups.key_of(older)).write_bytes(b"{")
    _lose_the_catalog(config)
    again = rtvault(config, "catalog", "rebuild", expect=9)
    assert "no usable catalog backup" in again.stdout and again.stderr.count("is damaged or unreadable") == 2
    with _catalog(config) as db:
        assert db.one("SELECT COUNT(*) FROM patients")[0] >= 1 and db.one("SELECT COUNT(*) FROM users")[0] == 0


def test_a_killed_backup_leaves_the_previous_one_usable(tmp_path: Path, pinnacle_sample: Path) -> None:
    config = _site(tmp_path, pinnacle_sample, vault="owner-only", safe="encrypted")
    _add_user(config, "e.ndiaye", "admin", PASSWORD)
    with _catalog(config) as db:  # a large catalog: the backup takes long enough to be killed in the middle
        db.many("INSERT INTO store_samples (store, time, total_bytes, free_bytes) VALUES (?, ?, ?, ?)",
                [("s" * 40, f"2026-01-01T00:00:{n:09d}Z", 10 ** 12, 10 ** 11) for n in range(300_000)])
    first = rtvault_json(config, "catalog", "backup", timeout=300)["id"]
    for delay in (0.3, 0.8, 1.5, 2.5):
        child = subprocess.Popen([sys.executable, "-m", "rtvault", "--config", str(config), "catalog", "backup"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    for store in ("vault", "safe"):
        assert catalog_backups.key_of(first).removeprefix("catalog/") in os.listdir(tmp_path / store / "catalog")
    for path in (tmp_path / "vault" / "catalog").iterdir():  # whatever was written is whole
        catalog_backups.decode(path.read_bytes(), f"catalog/{path.name}")
    _lose_the_catalog(config)
    rebuilt = rtvault_json(config, "catalog", "rebuild", timeout=300)["catalog_backup"]
    assert rebuilt["problems"] == [] and rebuilt["restored"]["users"] == ["e.ndiaye"]
    with _catalog(config) as db:
        assert authenticate(db, Ldap(), "e.ndiaye", PASSWORD).role == "admin"


def test_a_catalog_older_than_the_backup_gets_nothing_back(tmp_path: Path, pinnacle_sample: Path) -> None:
    """A rebuild of a catalog that was never lost: a user removed after the backup is not brought back."""
    config = _site(tmp_path, pinnacle_sample, vault="owner-only")
    _add_user(config, "e.ndiaye", "admin", PASSWORD)
    _add_user(config, "hlefevre", "viewer", PASSWORD)
    token = rtvault(config, "token", "create", "--user", "hlefevre").stdout.strip()
    time.sleep(1.1)  # the catalog is older than the backup by a second at least
    rtvault(config, "catalog", "backup")
    rtvault(config, "token", "revoke", token_id(token))
    rebuilt = rtvault_json(config, "catalog", "rebuild")["catalog_backup"]
    assert rebuilt["restored"] is None and "before the backup was taken" in rebuilt["skipped"]
    with _catalog(config) as db:
        assert token_user(db, token) is None
