"""The removable disks the catalog knows (written by copies/volumes.py): each volume's label, UUID, where it was
last mounted, when it was last seen and verified, and which archives it holds.

A disk sits in a drawer, not in a store: these tables are not part of the index `catalog rebuild` empties, and
only they say what a disk holds. Its copies are shown as locations (store `volume:<label>`, kind `archive`,
column `volume` = the label) mirrored from the stores' locations of the same archives by `derive_locations`,
which the indexer runs after every sync: the web patient page counts them as copies and search's "archive file
or volume" criterion finds them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from rtvault.catalog.db import Catalog
from rtvault.errors import InputError

STORE_PREFIX = "volume:"


@dataclass
class Volume:
    label: str
    uuid: str
    path: str
    created: str
    last_seen: str | None = None
    last_verified: str | None = None
    archives: int = 0

    @property
    def store(self) -> str:
        return STORE_PREFIX + self.label

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Held:
    """One archive as read on a disk: its id, file name there, size, when copied and when last verified."""

    archive: str
    file: str
    bytes: int
    copied: str
    verified: str | None = None


_VOLUME_COLUMNS = "v.label, v.uuid, v.path, v.created, v.last_seen, v.last_verified"


def _volume(row: tuple) -> Volume:
    return Volume(*row[:6], archives=int(row[6] or 0))


def all_volumes(catalog: Catalog) -> list[Volume]:
    rows = catalog.execute(f"SELECT {_VOLUME_COLUMNS}, (SELECT COUNT(*) FROM volume_archives a "
                           "WHERE a.volume = v.label) FROM volumes v ORDER BY v.label")
    return [_volume(row) for row in rows]


def find(catalog: Catalog, label: str) -> Volume:
    """The volume labelled `label`; an InputError naming the known labels when there is none."""
    found = next((v for v in all_volumes(catalog) if v.label == label), None)
    if found is None:
        known = ", ".join(v.label for v in all_volumes(catalog)) or "none yet: see `rtvault volume init`"
        raise InputError(f"no volume labelled {label!r} in the catalog (known: {known})")
    return found


def register(catalog: Catalog, volume: Volume) -> None:
    """Record a volume, or the same volume again (its UUID) at a new path; a label or UUID already taken by
    another volume is refused."""
    with catalog.transaction():
        clash = catalog.one("SELECT label, uuid FROM volumes WHERE label = ? OR uuid = ?",
                            (volume.label, volume.uuid))
        if clash and (clash[0], clash[1]) != (volume.label, volume.uuid):
            raise InputError(f"the catalog already has volume {clash[0]!r} (UUID {clash[1]}): choose another label")
        if clash:
            catalog.execute("UPDATE volumes SET path = ?, last_seen = ? WHERE label = ?",
                            (volume.path, volume.last_seen, volume.label))
        else:
            catalog.execute("INSERT INTO volumes (label, uuid, path, created, last_seen, last_verified) "
                            "VALUES (?, ?, ?, ?, ?, ?)", (volume.label, volume.uuid, volume.path, volume.created,
                                                          volume.last_seen, volume.last_verified))


def held(catalog: Catalog, label: str) -> dict[str, Held]:
    rows = catalog.execute("SELECT archive, file, bytes, copied, verified FROM volume_archives WHERE volume = ?",
                           (label,))
    return {row[0]: Held(*row) for row in rows}


def record_disk(catalog: Catalog, label: str, path: str, when: str, present: list[Held], *,
                verified: bool = False) -> None:
    """What was just read on the disk becomes the catalog's record of it: archives gone are dropped, new ones
    added, the path and last seen (and last verified) times updated; then the locations follow."""
    before = held(catalog, label)
    wanted = {h.archive: h for h in present}
    with catalog.transaction():
        for archive in sorted(before.keys() - wanted.keys()):
            catalog.execute("DELETE FROM volume_archives WHERE volume = ? AND archive = ?", (label, archive))
        for archive, new in sorted(wanted.items()):
            if new == before.get(archive):
                continue
            catalog.execute("DELETE FROM volume_archives WHERE volume = ? AND archive = ?", (label, archive))
            catalog.execute("INSERT INTO volume_archives (volume, archive, file, bytes, copied, verified) "
                            "VALUES (?, ?, ?, ?, ?, ?)", (label, *(getattr(new, f) for f in Held.__annotations__)))
        catalog.execute("UPDATE volumes SET path = ?, last_seen = ? WHERE label = ?", (path, when, label))
        if verified:
            catalog.execute("UPDATE volumes SET last_verified = ? WHERE label = ?", (when, label))


def derive_locations(catalog: Catalog) -> set[int]:
    """Make the volume locations mirror the stores' archive locations of the archives each volume holds (one
    per volume, archive and version); returns the patients whose volume locations were removed."""
    wanted: dict[tuple, tuple] = {}
    rows = catalog.execute(
        "SELECT a.volume, l.version, l.patient, l.ref, l.time, l.file, l.damaged FROM volume_archives a "
        "JOIN (SELECT DISTINCT store FROM indexed WHERE kind = 'archive') s ON 1 = 1 "
        "JOIN locations l ON l.store = s.store AND l.kind = 'archive' AND l.ref = a.archive "
        "ORDER BY l.time, l.store")
    for label, version, patient, ref, when, file, damaged in rows:
        key = (STORE_PREFIX + label, ref, version)
        first = wanted.setdefault(key, (patient, when, file, label, int(damaged)))
        wanted[key] = (*first[:4], max(first[4], int(damaged)))
    existing = {}
    for row_id, store, ref, version, *rest in catalog.execute(
            "SELECT id, store, ref, version, patient, time, file, volume, damaged FROM locations "
            "WHERE store LIKE ? AND kind = 'archive'", (STORE_PREFIX + "%",)):
        existing[(store, ref, version)] = (row_id, (rest[0], rest[1], rest[2], rest[3], int(rest[4])))
    removed: set[int] = set()
    for key, (row_id, values) in existing.items():
        if wanted.get(key) != values:
            catalog.execute("DELETE FROM locations WHERE id = ?", (row_id,))
            removed.add(int(values[0]))
    catalog.many("INSERT INTO locations (version, patient, store, kind, ref, time, file, volume, damaged) "
                 "VALUES (?, ?, ?, 'archive', ?, ?, ?, ?, ?)",
                 [(version, patient, store, ref, when, file, label, damaged)
                  for (store, ref, version), (patient, when, file, label, damaged) in wanted.items()
                  if existing.get((store, ref, version), (None, None))[1] != (patient, when, file, label, damaged)])
    return removed
