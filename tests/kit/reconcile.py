"""The reconciliation tests' site (jobs, e2e, web): a generated Pinnacle database whose every file and folder was
last changed two years ago, a primary store and its offsite copy (`[stores.offsite] copy_of = "primary"`,
`offsite = true`), a SQLite catalog; backed up once (the catalog refreshed, as `rtvault backup` does).

    site = ReconcileSite.made(tmp_path)         # backed up; nothing archived, replicated or verified yet
    site.made_safe()                            # archive now --idle, replicate, verify both stores
    site.lists()                                # {"never_captured": [paths], "under_copied": [...], ...}
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from kit.cli import rtvault_json, run_cli
from kit.config import write_config
from kit.files import patient_paths
from rtvault.config import Config, load
from rtvault.configured import init_stores, open_store
from rtvault.copies.verify import verify
from rtvault.demo import generate_database
from rtvault.jobs.archive_now import ArchivedNow, archive_now
from rtvault.jobs.backup import backup
from rtvault.jobs.copies import replicate
from rtvault.jobs.reconcile import reconcile
from rtvault.jobs.reconcile_report import LISTS, Reconciliation

PATIENTS = 4
TWO_YEARS_S = 2 * 366 * 86400


def age(directory: Path, seconds: float = TWO_YEARS_S) -> None:
    """Every file and folder under `directory` (itself included) last changed `seconds` ago."""
    when = time.time() - seconds
    for current, dirs, names in os.walk(directory, topdown=False):
        for name in [*names, *dirs]:
            os.utime(Path(current, name), (when, when), follow_symlinks=False)
    os.utime(directory, (when, when))


def touch(path: Path) -> None:
    """A file changed now (a plan edited in Pinnacle): its mtime is now, and so its ctime."""
    os.utime(path, None)


@dataclass
class ReconcileSite:
    base: Path

    catalog_url: str = ""  # empty: a SQLite file beside the configuration

    @classmethod
    def made(cls, base: Path, *, offsite: bool = True, patients: int = PATIENTS,
             catalog_url: str = "") -> ReconcileSite:
        site = cls(base, catalog_url)
        generate_database(site.root, patients=patients, seed=11, image_mb=0.02)
        age(site.root)
        site.configure(offsite=offsite)
        init_stores(site.config)
        site.backup()
        return site

    @property
    def root(self) -> Path:
        return self.base / "pinnacle"

    @property
    def config_path(self) -> Path:
        return self.base / "rtvault.toml"

    @property
    def catalog_path(self) -> Path:
        return self.base / "catalog.sqlite"

    def configure(self, *, offsite: bool = True, **tables: dict | None) -> None:
        """(Re)write the configuration: `offsite` for the copy store, and any other tables given."""
        write_config(self.config_path, root=self.root,
                     stores={"primary": self.base / "primary",
                             "offsite": {"path": self.base / "offsite", "copy_of": "primary", "offsite": offsite}},
                     catalog={"url": self.catalog_url or f"sqlite:///{self.catalog_path}"}, **tables)

    @property
    def config(self) -> Config:
        return load(self.config_path)

    def paths(self) -> list[str]:
        return patient_paths(self.root)

    def backup(self, *, allow_shrink: bool = False) -> None:
        done = backup(self.config, open_store(self.config, "primary"), allow_shrink=allow_shrink)
        assert done.catalog is None, done.catalog

    def archive_now(self, *keys: str, idle: bool = False) -> ArchivedNow:
        return archive_now(self.config, open_store(self.config, "primary", write=True), keys=keys, idle=idle)

    def replicate(self) -> None:
        assert replicate(self.config).verdict().code == 0

    def verify(self, *names: str) -> None:
        for name in names or tuple(self.config.stores):
            verify(open_store(self.config, name), all=True)

    def made_safe(self) -> None:
        self.archive_now(idle=True)
        self.replicate()
        self.verify()

    def reconcile(self) -> Reconciliation:
        return reconcile(self.config)

    def lists(self, found: Reconciliation | None = None) -> dict[str, list[str]]:
        """The patient paths of each list, in path order."""
        data = (found or self.reconcile()).to_json()
        return {name: sorted(entry["path"] for entry in data[name]) for name in LISTS}

    def cli(self, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, config=self.config_path, expect=expect)

    def cli_json(self, *args: str, expect: int | None = 0) -> dict:
        return rtvault_json(self.config_path, *args, expect=expect)
