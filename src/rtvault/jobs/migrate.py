"""`rtvault migrate`: every configured store (or one) brought to the current store format, under its lock."""

from __future__ import annotations

from rtvault.config import Config
from rtvault.errors import Problem
from rtvault.events import Progress
from rtvault.jobs.stores import open_store
from rtvault.store.locks import WriterLock
from rtvault.store.migrate import MigrateReport, migrate


def migrate_stores(config: Config, name: str | None, progress: Progress | None = None) -> list[MigrateReport]:
    """Migrate the named store, or every configured store in turn; a store already at version 2 only has
    what an interrupted migration left behind finished."""
    reports = []
    for each in [name] if name else list(config.stores):
        store = open_store(config, each)
        warnings: list[Problem] = []
        with WriterLock(store.backend, "migrate", config.backup.lock_lease_seconds, warnings.append) as lock:
            report = migrate(store, lock.ensure_held, progress)
        report.store = each
        reports.append(report)
    return reports
