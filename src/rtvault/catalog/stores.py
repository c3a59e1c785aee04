"""The stores the catalog knows, by the id of their `rtvault-store.json`: the name and site label the
configuration that last indexed each one gives it, so that a store another site configured is shown by
something a person recognises (docs/design.md, "Catalog").

Every row of the index names a store by its id (`locations.store`, `indexed.store`): two sites sharing one
catalog may both call their store `primary` without hiding each other's snapshots. A catalog written before
ids (migration 0017) holds configured names, and so do the store copies of legal destructions listed before
migration 0021 (catalog/destructions.py); `adopt` renames them to ids once a configuration says which store each
name is.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from rtvault.catalog import destructions
from rtvault.catalog.db import Catalog
from rtvault.utc import now_iso

_ID_SHOWN = 8  # characters of an id shown for a store another site configured without a site label


def register(catalog: Catalog, store_id: str, name: str, site: str) -> None:
    """Record (or update) the name and site a configuration gives this store."""
    catalog.execute("INSERT INTO stores (id, name, site, seen) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE "
                    "SET name = excluded.name, site = excluded.site, seen = excluded.seen",
                    (store_id, name, site, now_iso()))


def registered(catalog: Catalog, name: str, site: str) -> str | None:
    """The id of the store this site's configuration last indexed under `name` (None when none did): how a store
    that cannot be read now is known."""
    row = catalog.one("SELECT id FROM stores WHERE name = ? AND site = ? ORDER BY seen DESC", (name, site))
    return None if row is None else str(row[0])


def legacy_names(catalog: Catalog) -> set[str]:
    """The store names of rows written before stores were known by id (none once every one is adopted)."""
    return {str(row[0]) for row in catalog.execute(
        "SELECT DISTINCT store FROM indexed WHERE store NOT IN (SELECT id FROM stores)")} | destructions.legacy_places(
        catalog)


def adopt(catalog: Catalog, names: Mapping[str, str], site: str) -> list[str]:
    """Rename the rows that name a store by its configured name (`names`: name → id) to its id, in one
    transaction; returns the names adopted. A name no configuration sharing the catalog gives is left as it is."""
    legacy = legacy_names(catalog)
    adopted = sorted(name for name in names if name in legacy)
    if not adopted:
        return []
    with catalog.transaction():
        for name in adopted:
            for table in ("locations", "indexed"):
                catalog.execute(f"UPDATE {table} SET store = ? WHERE store = ?", (names[name], name))
            destructions.rename(catalog, name, names[name])
            register(catalog, names[name], name, site)
    return adopted


def labels(catalog: Catalog, known: Mapping[str, str], *, names: Collection[str] = (),
           site: str = "") -> dict[str, str]:
    """How each store of the catalog is shown: its configured name where this site knows it (`known`: id →
    name; else, for a store that cannot be read now, a registered one of this site's `names` at this `site`
    that no readable store takes), else the name another site gives it with that site's label (or the start of
    its id): `primary (Site B)`, never one of this site's names."""
    shown, taken = dict(known), set(known.values())
    for store_id, name, registered_site in catalog.execute("SELECT id, name, site FROM stores ORDER BY seen DESC"):
        if store_id in shown:
            continue
        if name in names and name not in taken and registered_site == site:
            shown[store_id] = name
            taken.add(name)
        else:
            shown[store_id] = f"{name} ({registered_site or store_id[:_ID_SHOWN]})"
    return shown


def label(shown: Mapping[str, str], store: str) -> str:
    """One store's label; a row of no registered store (a removable disk's `volume:<label>`, a name from before
    ids) is shown as the catalog holds it."""
    return shown.get(store, store)
