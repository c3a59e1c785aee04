"""Fixtures of the copies tests (replicate, status, verify, repair): a primary and a secondary directory store
configured as a pair (kit.copies.Copies), the primary holding real backups.

The primary is made once per session and copied for each test: a generated database (6 patients, seed 7,
0.2 MB image sets), `backup`, `demo evolve --day 1`, `backup` again, which also archives the patient deleted
that day. So the primary holds two snapshots and one archive (a gzip tar whose members are also objects).
The secondary is initialised and empty (its own store id); `replicated` has it filled by one replication.

    def test_something(copies: Copies) -> None:
        copies.primary / copies.secondary          # Store objects
        copies.cli("replicate", "--json")          # the real command in a subprocess
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kit.copies import Copies, write_pair_config
from rtvault.config import load
from rtvault.demo import evolve_database, generate_database
from rtvault.jobs.backup import run_backup
from rtvault.store import Store

PATIENTS = 6


@pytest.fixture(scope="session")
def copies_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Made once: the evolved database and a primary store with two snapshots and one archive."""
    base = tmp_path_factory.mktemp("copies-template")
    root, primary = base / "db", base / "primary"
    generate_database(root, patients=PATIENTS, seed=7, image_mb=0.2)
    Store.init(primary)
    config = load(write_pair_config(base / "rtvault.toml", root, primary, base / "secondary"))
    run_backup(config, Store.open(primary))
    evolve_database(root, 1)
    run_backup(config, Store.open(primary))
    return base


@pytest.fixture
def copies(copies_template: Path, tmp_path: Path) -> Copies:
    """A fresh copy of the template: the database, the primary with backups, and an empty secondary."""
    shutil.copytree(copies_template / "db", tmp_path / "db", symlinks=True)
    shutil.copytree(copies_template / "primary", tmp_path / "primary", symlinks=True)
    made = Copies(tmp_path / "db", tmp_path / "primary", tmp_path / "secondary", tmp_path / "rtvault.toml")
    made.configure()
    Store.init(made.secondary_path)
    return made


@pytest.fixture
def replicated(copies: Copies) -> Copies:
    """The same, with the secondary holding a complete copy of the primary."""
    copies.replicate()
    return copies
