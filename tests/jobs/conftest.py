"""Shared fixtures of the backup and restore tests: one small generated Pinnacle database per session, copied
for each test (tests change it), a configuration and a store next to it, and helpers to run the jobs
in-process or the real `rtvault` command in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from rtvault.config import Config, load
from rtvault.demo import generate_database
from rtvault.jobs.backup import run_backup
from rtvault.jobs.backup_report import BackupSummary
from rtvault.store import Store
from rtvault.store.formats import Manifest, PatientEntry, Tree

TRANSIENT_SUFFIXES = (".ErrorLog", ".Transcript", "~")
PATIENTS = 6


def is_transient(name: str) -> bool:
    """The files Pinnacle writes for itself and that a backup must skip."""
    base = name.rsplit("/", 1)[-1]
    return base.startswith(".auto.plan") or base.endswith(TRANSIENT_SUFFIXES)


def files_of(root: Path, *, transient: bool = False) -> dict[str, tuple[bytes, int, int]]:
    """Every regular file under root (relative `/` path) with its bytes, mtime in ns and permission bits."""
    found = {}
    for current, _dirs, names in os.walk(root):
        for name in names:
            path = Path(current, name)
            rel = path.relative_to(root).as_posix()
            if transient or not is_transient(rel):
                st = path.lstat()
                found[rel] = (path.read_bytes(), st.st_mtime_ns, st.st_mode & 0o7777)
    return found


def patient_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("Institution_*/Mount_*/Patient_*") if p.is_dir())


def write_config(path: Path, root: Path, store: Path, *, exclude: list[str] | None = None,
                 max_shrink: float | None = None, lease: int | None = None) -> Path:
    lines = ["[source.pinnacle]", f"root = {json.dumps(str(root))}"]
    if exclude is not None:
        lines.append(f"exclude = {json.dumps(exclude)}")
    lines += ["", "[stores.primary]", f"path = {json.dumps(str(store))}", "", "[backup]"]
    if max_shrink is not None:
        lines.append(f"max_shrink = {max_shrink}")
    if lease is not None:
        lines.append(f"lock_lease_seconds = {lease}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class Vault:
    """A source database, a configuration and a store, in one test's tmp_path."""

    root: Path
    store_path: Path
    config_path: Path

    def configure(self, **settings: object) -> None:
        write_config(self.config_path, self.root, self.store_path, **settings)  # type: ignore[arg-type]

    @property
    def config(self) -> Config:
        return load(self.config_path)

    @property
    def store(self) -> Store:
        return Store.open(self.store_path)

    def backup(self, **options: object) -> BackupSummary:
        return run_backup(self.config, self.store, **options)  # type: ignore[arg-type]

    def manifests(self) -> list[Manifest]:
        return self.store.manifests()

    def snapshot_files(self) -> list[str]:
        return sorted(p.name for p in (self.store_path / "snapshots").glob("*.json"))

    def tree_of(self, patient_path: str, manifest: Manifest | None = None) -> Tree:
        return self.store.get_tree(self.entry_of(patient_path, manifest).tree)

    def entry_of(self, patient_path: str, manifest: Manifest | None = None) -> PatientEntry:
        entry = (manifest or self.manifests()[-1]).patient(patient_path)
        assert entry is not None, patient_path
        return entry

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def patients(self) -> list[Path]:
        return patient_dirs(self.root)

    def source_files(self, *, transient: bool = False) -> dict[str, tuple[bytes, int, int]]:
        return files_of(self.root, transient=transient)

    is_transient = staticmethod(is_transient)
    files_of = staticmethod(files_of)
    run_cli = staticmethod(lambda *args, **kw: run_cli(*args, **kw))

    def cli(self, *args: str, expect: int | None = 0, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run_cli("--config", str(self.config_path), *args, expect=expect, timeout=timeout)

    def cli_json(self, *args: str, expect: int | None = 0) -> dict:
        return json.loads(self.cli(*args, "--json", expect=expect).stdout)


def run_cli(*args: str, expect: int | None = 0, timeout: float = 120,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`rtvault ARGS` in a real subprocess; checks the exit code and that no traceback leaked out."""
    done = subprocess.run([sys.executable, "-m", "rtvault", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env={**os.environ, "COLUMNS": "200"})
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    if expect is not None:
        assert done.returncode == expect, f"exit {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


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
