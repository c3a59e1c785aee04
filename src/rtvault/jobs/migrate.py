"""`rtvault migrate`: every configured store (or one) brought to the current store format, under its lock."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rtvault.config import Config
from rtvault.configured import open_store
from rtvault.errors import ExitCode, PartialResult, Problem
from rtvault.events import Progress
from rtvault.report import OK, Line, Report, Verdict
from rtvault.store.locks import WriterLock
from rtvault.store.migrate import MigrateReport, migrate


@dataclass(frozen=True)
class Migrated(Report):
    """One migration report per store, in the order of the configuration."""

    stores: tuple[MigrateReport, ...]

    def to_json(self) -> dict[str, object]:
        return {"stores": [r.to_json() for r in self.stores]}

    def lines(self) -> Iterable[Line]:
        for r in self.stores:
            yield Line(f"store {r.store}: version {r.from_version} -> {r.to_version}: {r.objects_packed} objects "
                       f"and {r.trees_packed} trees packed ({r.bytes_packed / 1e6:.1f} MB), {r.kept_loose} large "
                       f"objects kept in their own files, {r.loose_removed} loose files removed in "
                       f"{r.duration_s:.1f} s")
            for problem in r.damaged:
                yield Line(f"  damaged, left as it was: {problem}")

    def verdict(self) -> Verdict:
        damaged = sum(len(r.damaged) for r in self.stores)
        if not damaged:
            return OK
        return Verdict(ExitCode.PARTIAL, PartialResult(
            f"{damaged} damaged object(s) or tree(s) were not packed: run `rtvault verify --all`, then "
            "`rtvault repair`, then `rtvault migrate` again"))


def migrate_stores(config: Config, name: str | None, progress: Progress | None = None) -> Migrated:
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
    return Migrated(tuple(reports))
