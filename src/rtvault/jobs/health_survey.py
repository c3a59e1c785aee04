"""What the health checks and the metrics read, each thing read once per evaluation: the stores opened, their
snapshot listings, verification states, and the catalog. A store or the catalog that cannot be read is
remembered as its error (one sentence), which each check that needed it turns into UNKNOWN.

Only listings and small files are read: a snapshot's time is in its id (`YYYYMMDDTHHMMSSZ-xxxxxx`,
store/repository.py), so no manifest is opened to tell how old a backup is, unless several sources are configured
(then the newest few, to tell whose each is).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from rtvault.catalog import Catalog
from rtvault.config import Config
from rtvault.config.settings import LEGACY_SOURCE
from rtvault.configured import acting, open_catalog_for, open_store, store_ids, where
from rtvault.copies.verify import VerifyState, load_state
from rtvault.errors import RtvaultError, StoreError, os_advice
from rtvault.store import Store
from rtvault.store.repository import parse_manifest, snapshot_key
from rtvault.utc import parse

_SNAPSHOT_ID = re.compile(r"(\d{8}T\d{6}Z)-")
GRACE_S = 86400  # a verification cycle ends on its last daily run: a day's slack before it counts as late
RETRY_S = 3  # an S3 store silent this long is UNKNOWN: a monitoring plugin is killed after 10 s (Centreon), not
# after the 30 s a backup gives its store


def snapshot_time(snapshot_id: str) -> datetime | None:
    """When a snapshot was taken, from its id; None for an id that does not start with its time."""
    match = _SNAPSHOT_ID.match(snapshot_id)
    if match is None:
        return None
    return datetime.strptime(match[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def sources(config: Config) -> list[str]:
    """The configured sources by name ([source.pinnacle] is `pinnacle`, also on a host that sets no root: its
    backups are those of the stores it sees)."""
    return list(config.all_sources()) or [LEGACY_SOURCE]


def primary_stores(config: Config) -> list[str]:
    """The stores backups go into: those that are no `copy_of` another, or the copy one is failed over to."""
    return [acting(config, name) for name, settings in config.stores.items() if not settings.copy_of]


class Survey:
    """One evaluation's view of the site at `now`: each store, listing and file read at most once."""

    def __init__(self, config: Config, now: datetime) -> None:
        self.config = config
        self.now = now.astimezone(UTC)  # a naive time is local time
        self._memo: dict[tuple[str, str], tuple[bool, Any]] = {}

    def _once(self, key: tuple[str, str], read: Callable[[], Any]) -> Any:
        if key not in self._memo:
            try:
                self._memo[key] = (True, read())
            except RtvaultError as error:
                self._memo[key] = (False, error)
            except OSError as error:  # what a backend did not already turn into a sentence
                self._memo[key] = (False, StoreError(f"cannot read {key[1] or 'it'}: {os_advice(error)}"))
        ok, value = self._memo[key]
        if not ok:
            raise value
        return value

    def store(self, name: str) -> Store:
        """The configured store; its error (StoreError, ConfigError ...) when it cannot be opened."""

        def opened() -> Store:
            settings = self.config.stores[name]
            quick = dataclasses.replace(settings, retry_seconds=min(settings.retry_seconds, RETRY_S))
            try:
                return open_store(dataclasses.replace(self.config, stores={**self.config.stores, name: quick}), name)
            except StoreError as error:
                raise StoreError(f"store {name} ({where(self.config.stores[name])}) cannot be read: {error}") from None

        return self._once(("store", name), opened)

    def store_ids(self) -> dict[str, str]:
        """name → store id of the stores that can be read (the catalog knows stores by id), each store opened
        once, by `store`: a silent one is left out, not waited for; one opened for reading only (no key here)
        has its id read without the key."""

        def found() -> dict[str, str]:
            ids, keyless = {}, []
            for name in self.config.stores:
                try:
                    info = self.store(name).info
                except StoreError:
                    continue  # silent or gone: not asked again
                except RtvaultError:
                    keyless.append(name)
                    continue
                if isinstance(info.get("id"), str):
                    ids[name] = info["id"]
            if keyless:
                quick = {name: dataclasses.replace(s, retry_seconds=min(s.retry_seconds, RETRY_S))
                         for name, s in self.config.stores.items()}
                ids.update(store_ids(dataclasses.replace(self.config, stores=quick), keyless))
            return ids

        return self._once(("store_ids", ""), found)

    def snapshots(self, name: str) -> dict[str, datetime]:
        """Snapshot id -> time of every snapshot of a store whose id carries its time, from the listing alone."""

        def listed() -> dict[str, datetime]:
            store = self.store(name)
            try:
                ids = [key.removeprefix("snapshots/").removesuffix(".json")
                       for key in store.backend.list("snapshots/") if key.endswith(".json")]
            except StoreError as error:
                raise StoreError(f"store {name}: cannot list its snapshots: {error}") from None
            return {i: t for i in ids if (t := snapshot_time(i)) is not None}

        return self._once(("snapshots", name), listed)

    def newest(self, names: list[str], source: str | None = None
               ) -> tuple[tuple[datetime, str, str] | None, list[str]]:
        """The newest snapshot of these stores, as (time, id, store), and a sentence for each unreadable store; of
        the source `source` when given. With one source configured, every snapshot is of it (no manifest is read);
        with several, manifests are read newest first until one of `source` is found (backups of the sources run
        together: a handful, not the store's history)."""
        whose = source is not None and len(sources(self.config)) > 1
        newest, unreadable = None, []
        for name in names:
            try:
                found = self.snapshots(name)
            except RtvaultError as error:
                unreadable.append(str(error))
                continue
            for snapshot_id, time in sorted(found.items(), key=lambda item: (item[1], item[0]), reverse=True):
                if newest is not None and (time, snapshot_id) <= newest[:2]:
                    break
                try:
                    if whose and self.source_of(name, snapshot_id) != source:
                        continue
                except RtvaultError as error:
                    unreadable.append(str(error))
                    break
                newest = (time, snapshot_id, name)
                break
        return newest, unreadable

    def source_of(self, name: str, snapshot_id: str) -> str:
        """The source a snapshot is of, from its manifest (read once)."""

        def read() -> str:
            try:
                return parse_manifest(self.store(name).backend.get(snapshot_key(snapshot_id))).source_name
            except ValueError as error:
                raise StoreError(f"snapshot {snapshot_id} in {name} is damaged: {error}") from None

        return self._once(("source_of", f"{name}/{snapshot_id}"), read)

    def verify_state(self, name: str) -> VerifyState:
        return self._once(("verify", name), lambda: load_state(self.store(name)))

    def verification_current(self, name: str) -> bool:
        """Whether the store's verification is up to date: a cycle completed within [verify] cycle_days (and a
        day's grace), or, never completed, the store still within its first cycle. False when unreadable."""
        try:
            state, store = self.verify_state(name), self.store(name)
        except RtvaultError:
            return False
        age = self.age_of(state.last_cycle_completed or store.info.get("created"))
        return age is not None and age <= self.config.verify.cycle_days * 86400 + GRACE_S

    def age_of(self, text: object) -> float | None:
        """Seconds from a stored UTC time to now (0 when it is in the future); None when there is no such time."""
        if not isinstance(text, str) or not text:
            return None
        try:
            moment = parse(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return max(0.0, (self.now - moment).total_seconds())

    def catalog(self) -> Catalog:
        """The catalog, opened once for the evaluation (CatalogError, ConfigError when it cannot be)."""
        return self._once(("catalog", ""), lambda: open_catalog_for(self.config))

    def since(self, seconds: float) -> str:
        """The UTC time `seconds` before now, as the catalog writes times."""
        return (self.now - timedelta(seconds=seconds)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def close(self) -> None:
        found = self._memo.get(("catalog", ""))
        if found and found[0]:
            found[1].close()

    def __enter__(self) -> Survey:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
