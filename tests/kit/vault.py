"""One test's site: a Pinnacle database, a configuration and a directory store (and, for the archive tests, an
archive inbox), worked in-process (`backup`, `store`) or through the real command (`cli`).

    vault = Vault(root, base / "store", base / "rtvault.toml")                       # the jobs tests
    vault = Vault(root, base / "store", base / "rtvault.toml", base / "inbox", 0.5)  # the archive tests
    vault.configure()     # writes the configuration: [source.pinnacle], [stores.primary], [backup], [archive]
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from kit.cli import rtvault_json, run_cli
from kit.config import write_config
from kit.files import files_of, patient_dirs, patient_paths
from rtvault.config import Config, load
from rtvault.demo import EvolveResult
from rtvault.jobs.backup import run_backup
from rtvault.jobs.backup_report import BackupSummary
from rtvault.store import Store
from rtvault.store.formats import Manifest, PatientEntry, Tree


@dataclass
class Vault:
    """A source database, a configuration and a store (with an archive inbox when `inbox` is set)."""

    root: Path
    store_path: Path
    config_path: Path
    inbox: Path | None = None
    max_shrink: float | None = None  # the [backup] max_shrink `configure()` writes when not given another

    @property
    def base(self) -> Path:
        """The directory of the configuration (and of the store, the inbox)."""
        return self.config_path.parent

    def configure(self, *, exclude: list[str] | None = None, max_shrink: float | None = None,
                  lease: int | None = None) -> None:
        """(Re)write the configuration: the source (with `exclude`), the store, [backup] (`max_shrink`, the
        writer lock's `lease`) and, with an inbox, [archive]."""
        write_config(self.config_path, root=self.root, exclude=exclude, stores={"primary": self.store_path},
                     backup={"max_shrink": self.max_shrink if max_shrink is None else max_shrink,
                             "lock_lease_seconds": lease},
                     archive=None if self.inbox is None else {"inbox": self.inbox})

    @property
    def config(self) -> Config:
        return load(self.config_path)

    @property
    def store(self) -> Store:
        return Store.open(self.store_path)

    def backup(self, **options: object) -> BackupSummary:
        return run_backup(self.config, self.store, **options)  # type: ignore[arg-type]

    # --- the real command ---------------------------------------------------------------------------------

    def cli(self, *args: str, expect: int | None = 0, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, config=self.config_path, expect=expect, timeout=timeout)

    def cli_json(self, *args: str, expect: int | None = 0) -> dict:
        """The command's standard output: one JSON document, nothing else."""
        return rtvault_json(self.config_path, *args, expect=expect)

    # --- the store ------------------------------------------------------------------------------------------

    def manifests(self) -> list[Manifest]:
        return self.store.manifests()

    def snapshot_files(self) -> list[str]:
        return sorted(p.name for p in (self.store_path / "snapshots").glob("*.json"))

    def entry_of(self, patient_path: str, manifest: Manifest | None = None) -> PatientEntry:
        entry = (manifest or self.manifests()[-1]).patient(patient_path)
        assert entry is not None, patient_path
        return entry

    def tree_of(self, patient_path: str, manifest: Manifest | None = None) -> Tree:
        return self.store.get_tree(self.entry_of(patient_path, manifest).tree)

    def store_bytes(self) -> int:
        """The store's data bytes: not its locks, nor the journal (every command line action adds a record)."""
        return sum(p.stat().st_size for p in self.store_path.rglob("*")
                   if p.is_file() and not {"locks", "journal", "heads"} & set(p.parts))

    # --- the source -----------------------------------------------------------------------------------------

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def patients(self) -> list[Path]:
        return patient_dirs(self.root)

    def patient_paths(self) -> list[str]:
        return patient_paths(self.root)

    def source_files(self, *, transient: bool = False) -> dict[str, tuple[bytes, int, int]]:
        return files_of(self.root, transient=transient)

    # --- archives ---------------------------------------------------------------------------------------------

    def ingest(self, *paths: Path, expect: int | None = 0) -> dict:
        """`rtvault archive ingest PATHS --json`: {"archives": [...], "errors": [...]}."""
        return self.cli_json("archive", "ingest", *map(str, paths), expect=expect)

    def ingest_one(self, path: Path) -> dict:
        found = self.ingest(path)["archives"]
        assert len(found) == 1, found
        return found[0]

    def show(self, archive_id: str) -> dict:
        return self.cli_json("archive", "show", archive_id)

    def archives(self, *args: str) -> list[dict]:
        return self.cli_json("archive", "list", *args)["archives"]

    def tar_path(self, archive_id: str) -> Path:
        return self.store_path / "archives" / "tars" / archive_id[:2] / archive_id


@dataclass
class History:
    """A vault backed up on day 1, one clinical day played, backed up on day 2 (the jobs tests' `history`)."""

    vault: Vault
    day: EvolveResult  # what the clinical day between the two snapshots changed
    day_1: Path  # a copy of the database as the first snapshot saw it
