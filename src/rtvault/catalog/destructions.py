"""Legal destructions as the catalog keeps them (written by jobs/destruction.py): each archive destroyed, its
certificate (JSON) and every copy it had, on a store or a removable disk, with the time that copy was removed
(None while it is pending). `rtvault status`, `rtvault health` and the dashboard read the pending copies here.

These tables are not part of the index that `catalog rebuild` empties: like the volumes they say what no store
says alone (a disk in a drawer). The stores' `archives/destroyed/<id>.json` records hold the decision, so a lost
catalog gets its destructions back from them (`archive delete --pending`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from rtvault.catalog.db import Catalog

STORE = "store"
VOLUME = "volume"


@dataclass(frozen=True)
class Copy:
    """One copy of a destroyed archive: on a store or a disk (`kind`), its name (`place`), when it was removed
    (None: pending), and a note (why it is pending, or that the store did not hold it)."""

    archive: str
    kind: str
    place: str
    removed: str | None
    note: str = ""

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "place": self.place, "removed": self.removed,
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
        catalog.many("INSERT INTO destruction_copies (archive, kind, place, removed, note) VALUES (?, ?, ?, ?, ?)",
                     [(archive, c.kind, c.place, c.removed, c.note) for c in copies])
    return True


def add_copy(catalog: Catalog, copy: Copy) -> None:
    """A copy found later (a store that answers again, a disk that was not known): listed, pending or not."""
    with catalog.transaction():
        if catalog.one("SELECT 1 FROM destruction_copies WHERE archive = ? AND kind = ? AND place = ?",
                       (copy.archive, copy.kind, copy.place)) is None:
            catalog.execute("INSERT INTO destruction_copies (archive, kind, place, removed, note) "
                            "VALUES (?, ?, ?, ?, ?)", (copy.archive, copy.kind, copy.place, copy.removed, copy.note))


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
        "SELECT archive, kind, place, removed, note FROM destruction_copies WHERE archive = ? ORDER BY kind, place",
        (archive,)))
    return Destruction(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], copies)


def all_destructions(catalog: Catalog) -> list[Destruction]:
    ids = [r[0] for r in catalog.execute("SELECT archive FROM destructions ORDER BY decided, archive")]
    return [d for d in (find(catalog, i) for i in ids) if d is not None]


def pending(catalog: Catalog, kind: str | None = None, place: str | None = None) -> list[Copy]:
    """The copies still to remove (of one kind and place when given), oldest decision first."""
    rows = catalog.execute(
        "SELECT c.archive, c.kind, c.place, c.removed, c.note FROM destruction_copies c "
        "JOIN destructions d ON d.archive = c.archive WHERE c.removed IS NULL ORDER BY d.decided, c.archive, "
        "c.kind, c.place")
    return [c for c in (Copy(*r) for r in rows) if (kind is None or c.kind == kind)
            and (place is None or c.place == place)]


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
