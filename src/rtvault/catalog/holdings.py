"""What the catalog says each patient is held as, for `rtvault reconcile` (jobs/reconcile.py): the newest snapshot
version of each patient path, every copy of every archive (stores and removable disks), and who the patients are.

The queries cost what the source holds (a lookup per patient path, through `patients_path`) or one pass over the
archive locations: they stay within seconds on a catalog of 100,000 patients (bench/reconcile.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from rtvault.catalog.db import Catalog
from rtvault.catalog.volumes import STORE_PREFIX

_CHUNK = 500  # values in one IN (...): under SQLite's oldest limit of 999 parameters


@dataclass(frozen=True)
class Patient:
    """Who one catalog patient is."""

    id: int
    key: str
    path: str
    patient_id: str
    mrn: str
    last_name: str
    first_name: str
    status: str
    last_modified: str | None

    @property
    def name(self) -> str:
        return f"{self.last_name} {self.first_name}".strip()


@dataclass(frozen=True)
class Latest:
    """The newest snapshot holding a patient path: its patient, version (catalog id and tree), snapshot and time,
    and every store whose snapshots hold that same version."""

    patient: Patient
    version: int
    tree: str
    snapshot: str
    time: str
    stores: tuple[str, ...]


class ArchiveCopy(NamedTuple):
    """One copy of one patient's version in one archive: on a store, or on a removable disk (`volume:<label>`,
    with the time the disk's copy was last verified). A tuple: a catalog of 100,000 patients holds hundreds of
    thousands of them."""

    patient: int
    version: int
    archive: str
    holder: str
    file: str
    damaged: bool
    disk_verified: str | None = None

    @property
    def on_disk(self) -> bool:
        return self.holder.startswith(STORE_PREFIX)


_PATIENT = "p.id, p.key, p.path, p.patient_id, p.mrn, p.last_name, p.first_name, p.status, p.last_modified"


def _patient(row: Sequence) -> Patient:
    return Patient(int(row[0]), *(str(value or "") for value in row[1:8]), row[8])


def _chunks(values: Sequence, size: int = _CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _marks(values: Sequence) -> str:
    return ", ".join("?" * len(values)) or "NULL"


def latest_snapshots(db: Catalog, paths: Iterable[str], named: Mapping[str, str],
                     source: str | None = None) -> dict[str, Latest]:
    """For each of these patient paths that a snapshot of the stores `named` (id → name) holds, the newest such
    snapshot's version (its holders by name); of the snapshots of `source` only, when given (two servers may hold
    a patient at the same path).

    Read through `patients_path` then each patient's own locations (`locations_patient`): `|| ''` keeps SQLite,
    which has no statistics, from walking every snapshot location of the stores instead (`locations_ref`)."""
    found: dict[str, list[tuple]] = {}
    stores = list(named)
    of = ("" if source is None else
          " AND {0}.ref IN (SELECT i.ref FROM indexed i WHERE i.kind = 'snapshot' AND i.source = ?)")
    for chunk in _chunks(sorted(set(paths))):
        rows = db.execute(
            f"SELECT {_PATIENT}, v.id, v.tree, l.store, l.ref, l.time FROM patients p "
            "JOIN locations l ON l.patient = p.id JOIN versions v ON v.id = l.version "
            f"WHERE p.path IN ({_marks(chunk)}) AND l.kind || '' = 'snapshot'{of.format('l')} AND l.time = ("
            "SELECT MAX(n.time) FROM locations n WHERE n.patient = p.id AND n.kind || '' = 'snapshot' "
            f"AND n.store || '' IN ({_marks(stores)}){of.format('n')})",
            (*chunk, *([source] if source is not None else []), *stores, *([source] if source is not None else [])))
        for row in rows:
            if row[11] in stores:
                found.setdefault(str(row[2]), []).append(tuple(row))
    latest = {}
    for path, rows in found.items():
        newest = max(rows, key=lambda row: (row[13], row[12]))
        holders = sorted({named[row[11]] for row in rows if row[9] == newest[9]})
        latest[path] = Latest(_patient(newest), int(newest[9]), str(newest[10]), str(newest[12]), str(newest[13]),
                              tuple(holders))
    return latest


def archive_copies(db: Catalog, named: Mapping[str, str], versions: Sequence[int] | None = None) -> list[ArchiveCopy]:
    """Every copy of an archive on the stores `named` (id → name; each copy's holder by name) or on a removable
    disk (of these versions only, when given)."""
    stores = list(named)
    query = ("SELECT l.patient, l.version, l.ref, l.store, l.file, l.damaged, va.verified FROM locations l "
             "LEFT JOIN volume_archives va ON l.volume <> '' AND va.volume = l.volume AND va.archive = l.ref "
             f"WHERE l.kind = 'archive' AND (l.store IN ({_marks(stores)}) OR l.store LIKE ?)")
    if versions is None:
        rows = db.execute(query, (*stores, STORE_PREFIX + "%"))
    else:
        rows = [row for chunk in _chunks(sorted(set(versions)))
                for row in db.execute(f"{query} AND l.version IN ({_marks(chunk)})",
                                      (*stores, STORE_PREFIX + "%", *chunk))]
    return [ArchiveCopy(int(row[0]), int(row[1]), str(row[2]), named.get(str(row[3]), str(row[3])), str(row[4] or ""),
                        bool(row[5]), row[6])
            for row in rows]


def patients(db: Catalog, ids: Iterable[int]) -> dict[int, Patient]:
    """Who these catalog patients are, by id."""
    found = {}
    for chunk in _chunks(sorted(set(ids))):
        for row in db.execute(f"SELECT {_PATIENT} FROM patients p WHERE p.id IN ({_marks(chunk)})", tuple(chunk)):
            found[int(row[0])] = _patient(row)
    return found


def indexed_snapshots(db: Catalog, store: str) -> set[str]:
    """The snapshots of this store (its id) the catalog has read."""
    return {str(row[0]) for row in db.execute("SELECT ref FROM indexed WHERE store = ? AND kind = 'snapshot'",
                                              (store,))}
