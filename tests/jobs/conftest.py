"""Fixtures of the backup and restore tests: one small generated Pinnacle database per session, copied for each
test (tests change it), with a configuration and a store next to it (kit.vault.Vault), and the
restore tests' history: two backups around one clinical day."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kit.vault import History, Vault
from rtvault.demo import evolve_database, generate_database
from rtvault.store import Store

PATIENTS = 6
DAY_1 = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)
DAY_2 = datetime(2026, 1, 6, 18, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def generated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six patients with 0.2 MB image sets, made once per session and never changed."""
    out = tmp_path_factory.mktemp("jobs-db") / "db"
    generate_database(out, patients=PATIENTS, seed=11, image_mb=0.2)
    return out


@pytest.fixture(scope="session")
def new_vault(generated_db: Path) -> Callable[[Path], Vault]:
    """Makes, in an empty directory, a fresh copy of the database, its configuration and an initialised store."""

    def make(directory: Path) -> Vault:
        root = directory / "db"
        shutil.copytree(generated_db, root)
        made = Vault(root, directory / "store", directory / "rtvault.toml")
        made.configure()
        Store.init(made.store_path)
        return made

    return make


@pytest.fixture
def vault(new_vault: Callable[[Path], Vault], tmp_path: Path) -> Vault:
    """A fresh copy of the database, its configuration and an initialised (empty) store."""
    return new_vault(tmp_path)


@pytest.fixture(scope="module")
def history(new_vault: Callable[[Path], Vault], tmp_path_factory: pytest.TempPathFactory) -> History:
    """Backed up on day 1 (with a few unusual permissions), one clinical day played, backed up on day 2, the
    day-1 database kept aside. Shared by the tests of a module: they must not change it."""
    vault = new_vault(tmp_path_factory.mktemp("history"))
    for patient in vault.patients():
        os.chmod(patient / "ImageSet_0.header", 0o640)
        os.chmod(patient / "Plan_0" / "plan.Points", 0o600)
        os.chmod(patient / "Plan_0", 0o750)
    vault.backup(now=DAY_1)
    day_1 = vault.root.parent / "day-1"
    shutil.copytree(vault.root, day_1)
    day = evolve_database(vault.root, 1)
    vault.backup(now=DAY_2)
    return History(vault, day, day_1)


@pytest.fixture
def backed_up(history: History) -> Vault:
    return history.vault


@pytest.fixture
def own_store(history: History, tmp_path: Path) -> Vault:
    """The shared database with a copy of its store, for tests that damage or tamper with the store."""
    shutil.copytree(history.vault.store_path, tmp_path / "store")
    made = Vault(history.vault.root, tmp_path / "store", tmp_path / "rtvault.toml")
    made.configure()
    return made
