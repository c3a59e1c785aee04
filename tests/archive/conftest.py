"""Fixtures of the archive tests: one small generated Pinnacle database per session (copied for a test that changes
it), a configuration with an inbox and an initialised store beside it (kit.archive.make_vault)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kit.archive import PATIENTS, SEED, fingerprint, make_vault
from kit.vault import Vault
from rtvault.demo import generate_database


@pytest.fixture(scope="session")
def generated_db(tmp_path_factory: pytest.TempPathFactory):
    """Four patients with 0.2 MB image sets, made once per session. Tests that use it through `vault` only read
    it; at the end of the session it must be exactly as generated."""
    out = tmp_path_factory.mktemp("archive-db") / "db"
    generate_database(out, patients=PATIENTS, seed=SEED, image_mb=0.2)
    before = fingerprint(out)
    yield out
    assert fingerprint(out) == before, "a test changed the shared database: it must use `own_vault`"


@pytest.fixture
def vault(generated_db: Path, tmp_path: Path) -> Vault:
    """The shared database (to read only: back up, tar), with this test's own configuration, inbox and store."""
    return make_vault(tmp_path, generated_db)


@pytest.fixture
def own_vault(generated_db: Path, tmp_path: Path) -> Vault:
    """A private copy of the database (mtimes kept) that the test may change, with its configuration and store."""
    root = tmp_path / "db"
    shutil.copytree(generated_db, root, symlinks=True)
    return make_vault(tmp_path, root)
