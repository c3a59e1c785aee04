"""Shared fixtures of the copies tests (replicate, status, verify, repair): a primary and a secondary directory
store configured as a pair (`[stores.secondary] copy_of = "primary"`), the primary holding real backups.

The primary is made once per session and copied for each test: a generated database (6 patients, seed 7,
0.2 MB image sets), `backup`, `demo evolve --day 1`, `backup` again, which also archives the patient deleted
that day. So the primary holds two snapshots and one archive (a gzip tar whose members are also objects).
The secondary is initialised and empty (its own store id); `replicated` has it filled by one replication.

    def test_something(copies: Copies) -> None:
        copies.primary / copies.secondary          # Store objects
        copies.cli("replicate", "--json")          # the real command in a subprocess
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from rtvault.config import Config, load
from rtvault.demo import EvolveResult, evolve_database, generate_database
from rtvault.jobs.backup import BackupSummary, run_backup
from rtvault.store import Store

PATIENTS = 6


def write_config(path: Path, root: Path, primary: Path, secondary: Path, *, cycle_days: int = 30,
                 repair: bool = False) -> Path:
    """A configuration with the two stores, the secondary a copy of the primary, and the catalog beside it."""
    text = (f"[source.pinnacle]\nroot = {json.dumps(str(root))}\n\n"
            f"[stores.primary]\npath = {json.dumps(str(primary))}\n\n"
            f"[stores.secondary]\npath = {json.dumps(str(secondary))}\ncopy_of = \"primary\"\n\n"
            f"[verify]\ncycle_days = {cycle_days}\nrepair = {'true' if repair else 'false'}\n")
    path.write_text(text, encoding="utf-8")
    return path


def files_of(root: Path) -> dict[str, bytes]:
    """Every regular file under root (relative `/` path) with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def run_cli(*args: str, expect: int | None = 0, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`rtvault ARGS` in a real subprocess; checks the exit code and that no traceback leaked out."""
    done = subprocess.run([sys.executable, "-m", "rtvault", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    if expect is not None:
        assert done.returncode == expect, f"exit {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


@dataclass
class Copies:
    """A Pinnacle database, a configuration, a primary store with backups and an initialised secondary."""

    root: Path
    primary_path: Path
    secondary_path: Path
    config_path: Path

    @property
    def config(self) -> Config:
        return load(self.config_path)

    @property
    def primary(self) -> Store:
        return Store.open(self.primary_path)

    @property
    def secondary(self) -> Store:
        return Store.open(self.secondary_path)

    def store(self, name: str) -> Store:
        return Store.open(self.primary_path if name == "primary" else self.secondary_path)

    def configure(self, **settings: object) -> None:
        """Rewrite the configuration with other [verify] settings (cycle_days, repair)."""
        write_config(self.config_path, self.root, self.primary_path, self.secondary_path,
                     **settings)  # type: ignore[arg-type]

    def backup(self) -> BackupSummary:
        """A backup into the primary (archives the patients gone since the last one)."""
        return run_backup(self.config, self.primary)

    def evolve(self, day: int) -> EvolveResult:
        return evolve_database(self.root, day)

    def replicate(self) -> object:
        """Copy what the secondary lacks from the primary, in-process (a ReplicateSummary)."""
        from rtvault.copies.replicate import replicate

        return replicate(self.primary, self.secondary)

    def cli(self, *args: str, expect: int | None = 0, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run_cli("--config", str(self.config_path), *args, expect=expect, timeout=timeout)

    def cli_json(self, *args: str, expect: int | None = 0) -> dict:
        return json.loads(self.cli(*args, "--json", expect=expect).stdout)

    def patient_paths(self) -> list[str]:
        """Relative paths of the patients of the primary's latest snapshot."""
        return [p.path for p in self.primary.manifests()[-1].patients]

    files_of = staticmethod(files_of)


@pytest.fixture(scope="session")
def copies_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Made once: the evolved database and a primary store with two snapshots and one archive."""
    base = tmp_path_factory.mktemp("copies-template")
    root, primary = base / "db", base / "primary"
    generate_database(root, patients=PATIENTS, seed=7, image_mb=0.2)
    Store.init(primary)
    config = load(write_config(base / "rtvault.toml", root, primary, base / "secondary"))
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
