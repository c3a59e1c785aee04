"""Legal destructions as the catalog keeps them (written by jobs/destruction.py): each archive destroyed, its
certificate (JSON) and every copy it had, on a store or a removable disk, with the time that copy was removed
(None while it is pending). `rtvault status`, `rtvault health` and the dashboard read the pending copies here.

A store's copy is known by the store's id (its `rtvault-store.json`'s, as catalog/stores.py), so that sites
sharing one catalog may both call a store `primary`: a host carries on only the copies on the stores it
configures. A copy whose store's id could not be known is recorded by the store's name, with the site and host
of the configuration that listed it: only that configuration renames it to the id (`rename`) once the store
answers. Rows from before ids (site NULL) are renamed by the configuration naming their store (`stores.adopt`).

These tables are not part of the index that `catalog rebuild` empties: like the volumes they say what no store
says alone (a disk in a drawer). The stores' `archives/destroyed/<id>.json` records hold the decision, so a lost
catalog gets its destructions back from them (`archive delete --pending`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from rtvault.catalog.db import Catalog

STORE = "store"
VOLUME = "volume"


@dataclass(frozen=True)
class Copy:
    """One copy of a destroyed archive: on a store or a disk (`kind`), where (`place`: the store's id, else its
    name; the disk's label), when it was removed (None: pending), a note (why it is pending, or that the store did
    not hold it), and the `[site] name` and host of the configuration that listed it (None: from before ids)."""

    archive: str
    kind: str
    place: str
    removed: str | None
    note: str = ""
    site: str | None = None
    host: str | None = None

    def shown(self, labels: Mapping[str, str], site: str) -> str:
        """How a person is shown where the copy is (`labels`: id → label, catalog/stores.py `labels`): a store by
        this site's name for it or `NAME (SITE)`; a store recorded by name by another site with that site."""
        if self.kind != STORE or self.place in labels:
            return labels.get(self.place, self.place)
        return self.place if self.site in (None, site) else f"{self.place} ({self.site or self.host})"

    def store_id(self, labels: Mapping[str, str]) -> str | None:
        """The store's id (None for a store recorded by name: its id was not known)."""
        return self.place if self.place in labels else None

    def to_json(self, labels: Mapping[str, str], site: str) -> dict[str, object]:
        return {"kind": self.kind, "place": self.shown(labels, site),
                **({"store_id": self.store_id(labels)} if self.kind == STORE else {}), "removed": self.removed,
                "status": "pending" if self.removed is None else "removed", **({"note": self.note} if self.note
                                                                                else {})}


@dataclass(frozen=True)
class Destruction:
    archive: str
    decided: str
    by: str
    reason: str
    certificate: dict
    completed: str | None
    copies: tuple[Copy, ...]

    @property
    def pending(self) -> tuple[Copy, ...]:
        return tuple(c for c in self.copies if c.removed is None)


def begin(catalog: Catalog, archive: str, decided: str, by: str, reason: str, certificate: dict,
          copies: list[Copy]) -> bool:
    """Record a destruction decided and every copy it must remove, all pending, in one transaction: done before
    any copy is removed, so the catalog never says destroyed while a copy is not listed. False (nothing written)
    when another process recorded the decision first: the first one stands."""
    with catalog.transaction():
        catalog.lock(f"destruction {archive}")
        if catalog.one("SELECT 1 FROM destructions WHERE archive = ?", (archive,)) is not None:
            return False
        catalog.execute("INSERT INTO destructions (archive, decided, by_user, reason, certificate) "
                        "VALUES (?, ?, ?, ?, ?)", (archive, decided, by, reason, json.dumps(certificate)))
        catalog.many(_INSERT, [_row(c) for c in copies])
    return True


_COLUMNS = "archive, kind, place, removed, note, site, host"
_INSERT = f"INSERT INTO destruction_copies ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"


def _row(c: Copy) -> tuple[object, ...]:
    return (c.archive, c.kind, c.place, c.removed, c.note, c.site, c.host)


def add_copy(catalog: Catalog, copy: Copy) -> None:
    """A copy found later (a store that answers again, a disk that was not known): listed, pending or not."""
    with catalog.transaction():
        if catalog.one("SELECT 1 FROM destruction_copies WHERE archive = ? AND kind = ? AND place = ?",
                       (copy.archive, copy.kind, copy.place)) is None:
            catalog.execute(_INSERT, _row(copy))


def removed(catalog: Catalog, archive: str, kind: str, place: str, when: str, note: str = "") -> None:
    """One copy removed (and checked gone) at `when`."""
    with catalog.transaction():
        catalog.execute("UPDATE destruction_copies SET removed = ?, note = ? WHERE archive = ? AND kind = ? "
                        "AND place = ? AND removed IS NULL", (when, note, archive, kind, place))


def note(catalog: Catalog, archive: str, kind: str, place: str, text: str) -> None:
    """Why a copy is still pending (the store did not answer, the disk is not mounted)."""
    with catalog.transaction():
        catalog.execute("UPDATE destruction_copies SET note = ? WHERE archive = ? AND kind = ? AND place = ? "
                        "AND removed IS NULL", (text, archive, kind, place))


def completed(catalog: Catalog, archive: str, when: str, certificate: dict) -> None:
    with catalog.transaction():
        catalog.execute("UPDATE destructions SET completed = ?, certificate = ? WHERE archive = ?",
                        (when, json.dumps(certificate), archive))


def update_certificate(catalog: Catalog, archive: str, certificate: dict) -> None:
    with catalog.transaction():
        catalog.execute("UPDATE destructions SET certificate = ? WHERE archive = ?",
                        (json.dumps(certificate), archive))


def find(catalog: Catalog, archive: str) -> Destruction | None:
    row = catalog.one("SELECT archive, decided, by_user, reason, certificate, completed FROM destructions "
                      "WHERE archive = ?", (archive,))
    if row is None:
        return None
    copies = tuple(Copy(*r) for r in catalog.execute(
        f"SELECT {_COLUMNS} FROM destruction_copies WHERE archive = ? ORDER BY kind, place", (archive,)))
    return Destruction(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], copies)


def all_destructions(catalog: Catalog) -> list[Destruction]:
    ids = [r[0] for r in catalog.execute("SELECT archive FROM destructions ORDER BY decided, archive")]
    return [d for d in (find(catalog, i) for i in ids) if d is not None]


def pending(catalog: Catalog, kind: str | None = None, place: str | None = None) -> list[Copy]:
    """The copies still to remove (of one kind and place when given), oldest decision first."""
    columns = ", ".join(f"c.{name}" for name in _COLUMNS.split(", "))
    rows = catalog.execute(
        f"SELECT {columns} FROM destruction_copies c JOIN destructions d ON d.archive = c.archive "
        "WHERE c.removed IS NULL ORDER BY d.decided, c.archive, c.kind, c.place")
    return [c for c in (Copy(*r) for r in rows) if (kind is None or c.kind == kind)
            and (place is None or c.place == place)]


def pending_summary(catalog: Catalog, labels: Mapping[str, str], site: str) -> list[dict[str, object]]:
    """Every copy pending destruction, for `status`, `health` and the dashboard: archive, kind, place (as
    `Copy.shown`), store_id (a store's), decided, note; oldest decision first."""
    decided = {d.archive: d.decided for d in all_destructions(catalog)}
    return [{"archive": c.archive, **{k: v for k, v in c.to_json(labels, site).items() if k in ("kind", "place",
                                                                                                "store_id")},
             "decided": decided[c.archive], "note": c.note} for c in pending(catalog) if c.archive in decided]


def legacy_places(catalog: Catalog) -> set[str]:
    """The store names of copies listed before stores were known by id (none once every one is adopted)."""
    return {str(row[0]) for row in catalog.execute(
        "SELECT DISTINCT place FROM destruction_copies WHERE kind = ? AND site IS NULL "
        "AND place NOT IN (SELECT id FROM stores)", (STORE,))}


def rename(catalog: Catalog, name: str, store_id: str, *, site: str | None = None, host: str = "") -> None:
    """The store copies named `name` become copies on store `store_id`: those listed before ids (`site` None),
    else only those this configuration (`site`, `host`) listed by name. Where the store's id is already listed
    for that archive, the row by name goes: it is the same copy, and the row by id says where it stands."""
    who, params = ("site IS NULL", ()) if site is None else ("site = ? AND host = ?", (site, host))
    with catalog.transaction():
        catalog.execute(f"DELETE FROM destruction_copies WHERE kind = ? AND place = ? AND {who} AND archive IN "
                        "(SELECT archive FROM destruction_copies WHERE kind = ? AND place = ?)",
                        (STORE, name, *params, STORE, store_id))
        catalog.execute(f"UPDATE destruction_copies SET place = ? WHERE kind = ? AND place = ? AND {who}",
                        (store_id, STORE, name, *params))


def destroyed_ids(catalog: Catalog) -> set[str]:
    return {r[0] for r in catalog.execute("SELECT archive FROM destructions")}


def destroyed_versions(catalog: Catalog) -> set[tuple[str, str]]:
    """(path, tree) of every patient version a destroyed archive held (its certificate names them)."""
    found = set()
    for (text,) in catalog.execute("SELECT certificate FROM destructions"):
        for patient in json.loads(text).get("patients", []):
            if patient.get("tree"):
                found.add((patient["path"], patient["tree"]))
    return found


RECEIVED = "dicom-"  # the id of a destruction of a DICOM patient's received objects (jobs/dicom_destruction.py)


def is_received(ident: str) -> bool:
    """Whether a destruction is of received DICOM objects (else of an archive)."""
    return ident.startswith(RECEIVED)


def received_destroyed(catalog: Catalog, receipt: str) -> set[str]:
    """The hashes of the objects of receipt `receipt` (its id) that a legal destruction removed: never indexed
    again (a store whose copy is pending still holds the receipt; `catalog rebuild` reads every receipt again).
    The receiver indexes each group through here and a rebuild each receipt: the map of every destruction's
    receipts is read once per catalog connection and read again only when a destruction was decided since."""
    (count, last), = catalog.execute("SELECT COUNT(*), MAX(decided) FROM destructions WHERE archive LIKE ?",
                                     (RECEIVED + "%",))
    if not count:
        return set()
    cached = getattr(catalog, "_received_destroyed", None)
    if cached is None or cached[0] != (count, last):
        by_receipt: dict[str, set[str]] = {}
        for (text,) in catalog.execute("SELECT certificate FROM destructions WHERE archive LIKE ?",
                                       (RECEIVED + "%",)):
            certificate = json.loads(text)
            hashes = set(certificate.get("objects", []))
            for ident in certificate.get("receipts", []):
                by_receipt.setdefault(ident, set()).update(hashes)
        cached = ((count, last), by_receipt)
        catalog._received_destroyed = cached  # type: ignore[attr-defined]
    return cached[1].get(receipt, set())
