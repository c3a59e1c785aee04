"""The health tests' site: a synthetic Pinnacle database, a primary store and its copy (`secondary`, copy_of
primary), a SQLite catalog, and a configuration whose [health], [verify] and [backup] tables each test chooses.
Backups are taken at the times the test gives (`backup(now)`), and health is evaluated at the times it gives.

    site = HealthSite.make(tmp_path, generated_db)     # copies the database, writes the config, inits the stores
    site.backup(T0); site.replicate(); site.refresh()
    assert site.check("backup:pinnacle", T0 + timedelta(hours=7)).status is Status.CRITICAL
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kit.config import Table, write_config
from rtvault.catalog import Catalog, open_catalog
from rtvault.config import Config, load
from rtvault.configured import init_stores
from rtvault.copies.replicate import replicate
from rtvault.jobs.backup import run_backup
from rtvault.jobs.catalog import refresh
from rtvault.jobs.health import Check, HealthReport, evaluate
from rtvault.store import Store


def second(moment: datetime | None = None) -> datetime:
    """`moment` (default: now) in UTC, to the second: snapshot ids keep seconds only."""
    return (moment or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)


@dataclass
class HealthSite:
    base: Path

    @property
    def root(self) -> Path:
        return self.base / "db"

    @property
    def config_path(self) -> Path:
        return self.base / "rtvault.toml"

    def path(self, store: str) -> Path:
        return self.base / store

    @classmethod
    def make(cls, base: Path, database: Path, **tables: Table | None) -> HealthSite:
        """A copy of `database`, the configuration (with `tables`: health, verify, backup ...) and both stores."""
        shutil.copytree(database, base / "db")
        site = cls(base)
        site.configure(**tables)
        init_stores(site.config)
        return site

    def configure(self, *, stores: dict | None = None, **tables: Table | None) -> None:
        """(Re)write the configuration: the two stores (or `stores`), the catalog and `tables`."""
        stores = stores or {"primary": self.path("primary"),
                            "secondary": {"path": self.path("secondary"), "copy_of": "primary"}}
        write_config(self.config_path, root=self.root, stores=stores,
                     catalog={"url": f"sqlite:///{self.base / 'catalog.sqlite'}"}, **tables)

    @property
    def config(self) -> Config:
        return load(self.config_path)

    def store(self, name: str) -> Store:
        return Store.open(self.path(name))

    def backup(self, now: datetime) -> str:
        """A backup into the primary taken at `now`; its snapshot id."""
        return run_backup(self.config, self.store("primary"), now=now).snapshot

    def replicate(self) -> None:
        replicate(self.store("primary"), self.store("secondary"))

    def refresh(self) -> None:
        refresh(self.config)

    def catalog(self) -> Catalog:
        return open_catalog(self.config.catalog.url)

    def evaluate(self, now: datetime) -> HealthReport:
        return evaluate(self.config, now)

    def check(self, name: str, now: datetime) -> Check:
        found = {check.name: check for check in self.evaluate(now).checks}
        assert name in found, (name, sorted(found))
        return found[name]
