"""Failures found by a hostile test of issue 14's several sources, physics, sites and the catalog's own backup, each
kept as a minimal reproduction: those fixed since are plain regression tests; those still open are strict xfail,
the reason saying what is wrong."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from argon2 import PasswordHasher

import pytest

from kit.cli import rtvault, rtvault_json
from kit.config import write_config
from rtvault.catalog import open_catalog
from rtvault.catalog.users import authenticate
from rtvault.config.web import Ldap
from rtvault.demo import generate_database
from rtvault.demo.physics import generate_physics
from rtvault.store import catalog_backups

@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small patient database and a physics tree (PinnacleSiteData), shared by the module's tests (read only)."""
    base = tmp_path_factory.mktemp("attack4")
    generate_database(base / "db", patients=3, seed=4, image_mb=0.05)
    generate_physics(base / "physics")
    return base / "db", base / "physics"


def _sources(tmp_path: Path, **sources: dict) -> Path:
    """The configuration: `[sources.NAME]` for each, one directory store `primary`, a SQLite catalog."""
    return write_config(tmp_path / "rtvault.toml", stores={"primary": tmp_path / "store"},
                        catalog={"url": f"sqlite:///{tmp_path / 'catalog.sqlite'}"},
                        **{f"sources.{name}": table for name, table in sources.items()})


PASSWORD = "Éloïse-N'Diaye-2026"
MALLORY = "mallory's own long passphrase"


# --- the catalog's own backup ----------------------------------------------------------------------------------------

def _forge_catalog_backup(genuine: Path, into: Path) -> str:
    """A catalog backup newer than `genuine`, with an admin `mallory` added, sealed anew (the seal is a plain hash)
    and written into the store directory `into` by someone who may write there; its id."""
    backup = catalog_backups.decode(genuine.read_bytes(), catalog_backups.key_of(genuine.stem))
    users = backup.tables["users"]
    row = dict(zip(users.columns, users.rows[0], strict=True))
    row.update(name="mallory", role="admin", password_hash=PasswordHasher().hash(MALLORY), sites="", disabled=0)
    forged_id = backup.id[:-6] + "ffffff"  # taken in the same second, it sorts after the genuine one
    forged = replace(backup, id=forged_id, host="elsewhere",
                     tables={**backup.tables, "users": catalog_backups.Table(
                         users.columns, (*users.rows, tuple(row[c] for c in users.columns)))})
    target = into / catalog_backups.key_of(forged_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(catalog_backups.encode(forged))
    return forged_id


def test_rebuild_puts_back_no_catalog_backup_from_a_store_others_may_write(tmp_path: Path,
                                                                          pinnacle_sample: Path) -> None:
    """A catalog backup is written only to stores nobody else may read or write (encrypted, or owner-only). A
    rebuild that reads one from any other store (a NAS others may write, an unencrypted bucket shared with another
    site, another host's read-only store) puts back whoever planted it: here an admin `mallory`."""
    config = write_config(tmp_path / "rtvault.toml", root=pinnacle_sample,
                          stores={"vault": tmp_path / "vault", "nas": tmp_path / "nas"},
                          catalog={"url": f"sqlite:///{tmp_path / 'catalog.sqlite'}"})
    rtvault(config, "init")
    (tmp_path / "vault").chmod(0o700)
    (tmp_path / "nas").chmod(0o777)  # the department's NAS share: anyone there may write
    rtvault(config, "user", "add", "e.ndiaye", "--role", "admin", stdin=PASSWORD + "\n")
    saved = rtvault_json(config, "catalog", "backup", expect=None)
    assert saved["written"] == {"vault": "owner-only"}
    _forge_catalog_backup(tmp_path / "vault" / catalog_backups.key_of(saved["id"]), tmp_path / "nas")
    for path in tmp_path.glob("catalog.sqlite*"):
        path.unlink()
    rebuilt = rtvault(config, "catalog", "rebuild", expect=None)
    with open_catalog(f"sqlite:///{tmp_path / 'catalog.sqlite'}") as db:
        assert authenticate(db, Ldap(), "mallory", MALLORY) is None, "a forged admin was put back"
        assert authenticate(db, Ldap(), "e.ndiaye", PASSWORD).role == "admin"
    assert "nas" in rebuilt.stdout + rebuilt.stderr  # the backup it would not trust is named
    assert rebuilt.returncode == 9


# --- several sources ---------------------------------------------------------------------------------------------

def test_a_source_name_given_to_the_physics_archives_no_patient_as_deleted(tmp_path: Path,
                                                                          trees: tuple[Path, Path]) -> None:
    """The administrator reorganises: the source `main` (the patients) becomes the physics tree, the patients get a
    source of their own. The physics snapshot of `main` holds no patient, yet no patient left Pinnacle: none may be
    archived as deleted (an archive of origin "deleted" for a patient still treated)."""
    db, physics = trees
    config = _sources(tmp_path, main={"kind": "pinnacle-patients", "root": db, "site": "A"})
    rtvault(config, "init")
    rtvault(config, "backup")
    _sources(tmp_path, main={"kind": "pinnacle-physics", "root": physics, "site": "A"},
             patients={"kind": "pinnacle-patients", "root": db, "site": "A"})
    rtvault(config, "backup", "--allow-shrink")  # main holds fewer files now: the administrator knows why
    swept = rtvault_json(config, "archive", "sweep")
    assert swept["archived"] == [], [p["path"] for a in swept["archived"] for p in a["patients"]]
