"""Which configured store a command works on."""

from __future__ import annotations

from pathlib import Path

from rtvault.config import Config
from rtvault.errors import ConfigError
from rtvault.store import Store


def store_path(config: Config, name: str | None) -> tuple[str, Path]:
    """The named store, else the first one configured (the primary)."""
    if not config.stores:
        raise ConfigError(str(config.file), ["no store configured: add a [stores.<name>] table with a path"])
    if name is None:
        name = next(iter(config.stores))
    if name not in config.stores:
        known = ", ".join(config.stores)
        raise ConfigError(str(config.file), [f"no store named {name!r} (configured: {known})"])
    return name, config.stores[name].path


def open_store(config: Config, name: str | None) -> Store:
    return Store.open(store_path(config, name)[1])


def init_stores(config: Config) -> list[dict[str, object]]:
    """Create every configured store (idempotent); returns what was done for each."""
    if not config.stores:
        store_path(config, None)
    done = []
    for name, settings in config.stores.items():
        store, created = Store.init(settings.path)
        done.append({"store": name, "path": str(settings.path), "created": created, "id": store.info["id"]})
    return done
