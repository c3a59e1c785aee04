"""Keeping the catalog in step with the stores."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from rtvault.catalog.indexer import SyncSummary, rebuild, sync
from rtvault.config import Config
from rtvault.configured import open_catalog_for, open_store
from rtvault.errors import ExitCode, RtvaultError, StoreError
from rtvault.jobs.catalog_backup import Restored, restore_newest
from rtvault.report import Line, Report, Verdict, err
from rtvault.store import Store


@dataclass(frozen=True)
class Synced(Report):
    """What a catalog sync or rebuild indexed, store by store, and what a rebuild put back from the catalog's own
    backup; partial (exit 9) when a store, snapshot or archive could not be indexed, or a catalog backup found on
    a store was damaged. DICOM patients kept apart from the Pinnacle patient of their MRN (`dicom_unlinked`) are
    named, a fact to correct at the source, not a failure of the sync."""

    summaries: tuple[SyncSummary, ...]
    restored: Restored | None = field(default=None)

    def to_json(self) -> dict[str, object]:
        return {"stores": [asdict(s) for s in self.summaries],
                **({"catalog_backup": self.restored.to_json()} if self.restored else {})}

    def lines(self) -> Iterable[Line]:
        for s in self.summaries:
            yield Line(f"store {s.store}: {s.snapshots_added} snapshot(s) and {s.archives_added} archive(s) indexed, "
                       f"{s.snapshots_removed + s.archives_removed} dropped, {s.versions_added} new patient "
                       f"version(s) in {s.duration_s:.1f} s")
            yield from (err(f"  problem: {problem}") for problem in s.problems)
            yield from (err(f"  not linked: {sentence}") for sentence in s.dicom_unlinked)
        if self.restored:
            yield from self.restored.lines()

    def verdict(self) -> Verdict:
        damaged = self.restored is not None and self.restored.problems
        return Verdict.unless(any(s.problems for s in self.summaries) or damaged, ExitCode.PARTIAL)


def _stores(config: Config) -> tuple[dict[str, Store], list[SyncSummary]]:
    """The stores that open, and a summary naming each one that does not: an unmounted NAS or an S3 outage
    leaves that store's entries in the catalog as they were (never read as an empty store)."""
    opened, failed = {}, []
    for name in config.stores:
        try:
            opened[name] = open_store(config, name)
        except StoreError as error:
            failed.append(SyncSummary(name, problems=[f"store {name} not indexed, its entries kept: {error}"]))
    return opened, failed


def refresh(config: Config, *, archives: frozenset[str] = frozenset()) -> list[SyncSummary]:
    """Index what the stores gained or lost since the last refresh, and read `archives` again."""
    stores, failed = _stores(config)
    with open_catalog_for(config) as catalog:
        return sync(catalog, stores, again=archives, site=config.site.name) + failed


def refresh_quietly(config: Config, *, archives: frozenset[str] = frozenset()) -> str | None:
    """After a backup, ingest or prune: refresh the catalog, but let a catalog problem never fail the job
    that already succeeded; returns the problem as a sentence, if any."""
    try:
        problems = [p for s in refresh(config, archives=archives) for p in s.problems]
    except RtvaultError as error:
        return f"the catalog was not updated ({error}); run `rtvault catalog sync` once it is fixed"
    return "; ".join(problems) or None


def rebuild_all(config: Config) -> Synced:
    """The index rebuilt from the stores, then what lives only in the catalog (users, tokens, removable disks) put
    back from the newest catalog backup on the stores. Refused while a store cannot be read: a rebuild would
    forget what only that store holds."""
    stores, failed = _stores(config)
    if failed:
        raise StoreError("; ".join(p for f in failed for p in f.problems) + ": rebuild once every store is reachable")
    with open_catalog_for(config) as catalog:
        summaries = rebuild(catalog, stores, site=config.site.name)
        return Synced(tuple(summaries), restore_newest(catalog, stores, config))
