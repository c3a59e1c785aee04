"""Keeping the catalog in step with the stores, and opening it for a command or the web server."""

from __future__ import annotations

from rtvault.catalog import Catalog, open_catalog
from rtvault.catalog.indexer import SyncSummary, rebuild, sync
from rtvault.config import Config
from rtvault.errors import RtvaultError
from rtvault.store import Store


def open_for(config: Config) -> Catalog:
    return open_catalog(config.catalog.url)


def _stores(config: Config) -> dict[str, Store]:
    return {name: Store.open(settings.path) for name, settings in config.stores.items()}


def refresh(config: Config, *, archives: frozenset[str] = frozenset()) -> list[SyncSummary]:
    """Index what the stores gained or lost since the last refresh, and read `archives` again."""
    with open_for(config) as catalog:
        return sync(catalog, _stores(config), again=archives)


def refresh_quietly(config: Config, *, archives: frozenset[str] = frozenset()) -> str | None:
    """After a backup, ingest or prune: refresh the catalog, but let a catalog problem never fail the job
    that already succeeded; returns the problem as a sentence, if any."""
    try:
        problems = [p for s in refresh(config, archives=archives) for p in s.problems]
    except RtvaultError as error:
        return f"the catalog was not updated ({error}); run `rtvault catalog sync` once it is fixed"
    return "; ".join(problems) or None


def rebuild_all(config: Config) -> list[SyncSummary]:
    with open_for(config) as catalog:
        return rebuild(catalog, _stores(config))
