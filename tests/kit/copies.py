"""The copies tests' site (replicate, status, verify, repair): a primary and a secondary directory store
configured as a pair (`[stores.secondary] copy_of = "primary"`), and what they compare: every snapshot and every
archived patient of a store, restored."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from kit.cli import rtvault_json, run_cli
from kit.config import write_config
from rtvault.archive import records
from rtvault.config import Config, load
from rtvault.demo import EvolveResult, evolve_database
from rtvault.jobs.archives import restore_from_archive
from rtvault.jobs.backup import BackupSummary, run_backup
from rtvault.jobs.restore import restore_all
from rtvault.store import Store


def write_pair_config(path: Path, root: Path, primary: Path, secondary: Path, *, cycle_days: int = 30,
                      repair: bool = False) -> Path:
    """A configuration with the two stores, the secondary a copy of the primary, and these [verify] settings."""
    secondary_table = {"path": secondary, "copy_of": "primary"}
    return write_config(path, root=root, stores={"primary": primary, "secondary": secondary_table},
                        verify={"cycle_days": cycle_days, "repair": repair})


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

    def configure(self, *, cycle_days: int = 30, repair: bool = False) -> None:
        """(Re)write the configuration, with these [verify] settings."""
        write_pair_config(self.config_path, self.root, self.primary_path, self.secondary_path,
                          cycle_days=cycle_days, repair=repair)

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
        return run_cli(*args, config=self.config_path, expect=expect, timeout=timeout)

    def cli_json(self, *args: str, expect: int | None = 0) -> dict:
        """The command's standard output: one JSON document, nothing else."""
        return rtvault_json(self.config_path, *args, expect=expect)

    def patient_paths(self) -> list[str]:
        """Relative paths of the patients of the primary's latest snapshot."""
        return [p.path for p in self.primary.manifests()[-1].patients]


def restore_everything(store: Store, out: Path) -> dict[str, bytes]:
    """Every snapshot and every archived patient, restored; the bytes of every file (the Institution file an
    archive restore writes is dated now, so it is left out)."""
    for manifest in store.manifests():
        restore_all(store, out / manifest.id, snapshot=manifest.id)
    for record in records.all_records(store):
        for patient in record.patients:
            restore_from_archive(store, patient.path, out / record.id, archive_id=record.id)
            (out / record.id / "Institution").unlink()
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
