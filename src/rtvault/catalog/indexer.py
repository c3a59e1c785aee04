"""Filling the catalog from the stores: every patient version in every snapshot and archive, and where it is.

`sync_store` is incremental: it reads only the snapshots and archives not indexed yet (and one tree per new
patient version), and drops what a store no longer holds. `rebuild` empties the index and syncs again: the
stores are the truth.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from rtvault.archive import records
from rtvault.archive.formats import OWN_ORIGINS, ArchiveRecord
from rtvault.catalog import destructions, dicom, dicom_patients, runs, stores, volumes
from rtvault.catalog import fold as folding
from rtvault.catalog.db import Catalog
from rtvault.catalog.schema import INDEX_TABLES, PLACE
from rtvault.errors import StoreError
from rtvault.pinnacle.discover import normalise_patient_path
from rtvault.pinnacle.model import PatientRecord
from rtvault.store import Store
from rtvault.store.formats import Manifest

_COLUMNS = ("path", "patient_id", "mrn", "mrn_fold", "last_name", "first_name", "middle_name", "birth_date",
            "birth_year", "gender", "physician", "physician_fold", "diagnosis", "comment", "last_modified",
            "sort_name")
_CHUNK = 500  # keys in one IN (...): under SQLite's oldest limit of 999 parameters
_GENDERS = {"m": "male", "h": "male", "f": "female", "w": "female", "o": "other"}


def patient_key(path: str, patient_id: object, mrn: str) -> str:
    """A patient's stable catalog key: the same person seen in snapshots and in archives shares it."""
    text = f"{normalise_patient_path(path)}\0{'' if patient_id is None else patient_id}\0{mrn.strip()}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def gender_code(value: str) -> str:
    """male, female, other or '' from Pinnacle's Gender or what a user types (French or English)."""
    folded = folding.fold(value or "")
    return _GENDERS.get(folded[:1], "other") if folded else ""


@dataclass
class Identity:
    """What the catalog keeps of one patient version, from a snapshot tree or an archive index."""

    values: dict[str, object]
    plans: list[str]
    image_sets: list[tuple[str, str]]
    files: int
    bytes: int
    complete: bool = True
    machines: tuple[str, ...] = ()  # the machines its plans name

    @classmethod
    def of(cls, data: dict, *, files: int, size: int, complete: bool = True) -> Identity:
        last, first = data.get("last_name") or "", data.get("first_name") or ""
        birth = data.get("birth_date") or None
        physician = data.get("radiation_oncologist") or ""
        patient_id, mrn = data.get("patient_id"), (data.get("mrn") or "").strip()
        values = {
            "path": normalise_patient_path(data.get("path") or ""),
            "patient_id": "" if patient_id is None else str(patient_id), "mrn": mrn,
            "mrn_fold": folding.compact(mrn), "last_name": last, "first_name": first,
            "middle_name": data.get("middle_name") or "", "birth_date": birth,
            "birth_year": int(birth[:4]) if birth else None, "gender": gender_code(data.get("gender") or ""),
            "physician": physician, "physician_fold": folding.physician_fold(physician),
            "diagnosis": data.get("diagnosis") or "", "comment": data.get("comment") or "",
            "last_modified": data.get("last_modified"),
            "sort_name": f"{folding.compact(last)} {folding.compact(first)}",
        }
        plans = [p.get("name", "") if isinstance(p, dict) else str(p) for p in data.get("plans") or []]
        images = [(i.get("name") or "", (i.get("modality") or "").upper()) for i in data.get("image_sets") or []]
        machines = tuple(sorted({str(m) for m in data.get("machines") or [] if m}))
        return cls(values, [p for p in plans if p], images, files, size, complete, machines)

    @property
    def key(self) -> str:
        return patient_key(str(self.values["path"]), self.values["patient_id"], str(self.values["mrn"]))

    def terms(self) -> list[tuple[str, str]]:
        v = self.values
        found = {("last", t) for t in folding.name_terms(str(v["last_name"]))}
        found |= {("first", t) for t in folding.name_terms(f"{v['first_name']} {v['middle_name']}".strip())}
        found |= {("first", t) for t in folding.name_terms(str(v["first_name"]))}
        found |= {("text", t) for t in folding.text_terms(f"{v['diagnosis']} {v['comment']}")}
        return sorted(found)


def plan_terms(name: str) -> set[str]:
    return folding.name_terms(name) | folding.text_terms(name)


@dataclass
class SyncSummary:
    store: str
    snapshots_added: int = 0
    snapshots_removed: int = 0
    archives_added: int = 0
    archives_removed: int = 0
    versions_added: int = 0
    runs_added: int = 0  # run journal records
    dicom_instances_added: int = 0  # received DICOM instances (receipts)
    # DICOM patients kept apart from the Pinnacle patient of their MRN (birth dates differ): named, not a failure
    dicom_unlinked: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    problems: list[str] = field(default_factory=list)


class Writer:
    """Upserts patients, versions and locations, with in-memory caches for the duration of one sync."""

    def __init__(self, catalog: Catalog) -> None:
        self.db = catalog
        self.vocabulary = {(f, t) for f, t in catalog.execute("SELECT field, term FROM vocabulary")}
        self.physicians = {row[0] for row in catalog.execute("SELECT fold FROM physicians")}
        self.touched: set[int] = set()

    def patient(self, identity: Identity) -> int:
        """The patient's row id; its identity is replaced when this version is at least as recent."""
        row = self.db.one("SELECT id, last_modified FROM patients WHERE key = ?", (identity.key,))
        values = identity.values
        if row is None:
            columns = ", ".join(_COLUMNS)
            pid = self.db.insert(f"INSERT INTO patients (key, {columns}) VALUES (?, {', '.join('?' * len(_COLUMNS))})",
                                 (identity.key, *(values[c] for c in _COLUMNS)))
        else:
            pid = int(row[0])
            if (values["last_modified"] or "") < (row[1] or ""):
                self._add_plans(pid, identity)
                return pid
            self.db.execute(f"UPDATE patients SET {', '.join(c + ' = ?' for c in _COLUMNS)} WHERE id = ?",
                            (*(values[c] for c in _COLUMNS), pid))
            self.db.execute("DELETE FROM terms WHERE patient = ? AND field <> 'plan'", (pid,))
        self._add_terms(pid, identity.terms(), str(values["sort_name"]))
        self._add_plans(pid, identity)
        self._add_physician(values)
        self.touched.add(pid)
        return pid

    def _add_terms(self, pid: int, terms: list[tuple[str, str]], sort_name: str) -> None:
        dicom_patients.write_terms(self.db, pid, terms, sort_name, self.vocabulary)

    def _add_plans(self, pid: int, identity: Identity) -> None:
        known = {r[0] for r in self.db.execute("SELECT name FROM plans WHERE patient = ?", (pid,))}
        plans = [p for p in dict.fromkeys(identity.plans) if p not in known]
        self.db.many("INSERT INTO plans (patient, name) VALUES (?, ?)", [(pid, p) for p in plans])
        self._add_terms(pid, sorted({("plan", t) for p in plans for t in plan_terms(p)}),
                        str(identity.values["sort_name"]))
        seen = set(self.db.execute("SELECT name, modality FROM image_sets WHERE patient = ?", (pid,)))
        images = [i for i in dict.fromkeys(identity.image_sets) if i not in seen]
        self.db.many("INSERT INTO image_sets (patient, name, modality) VALUES (?, ?, ?)", [(pid, *i) for i in images])

    def _add_physician(self, values: dict[str, object]) -> None:
        folded = str(values["physician_fold"])
        if folded and folded not in self.physicians:
            self.physicians.add(folded)
            self.db.execute("INSERT INTO physicians (fold, name) VALUES (?, ?) ON CONFLICT DO NOTHING",
                            (folded, values["physician"]))

    def version(self, pid: int, tree: str, identity: Identity) -> int:
        row = self.db.one("SELECT id FROM versions WHERE patient = ? AND tree = ?", (pid, tree))
        if row:
            return int(row[0])
        self.touched.add(pid)
        version = self.db.insert(
            "INSERT INTO versions (patient, tree, last_modified, files, bytes, complete) VALUES (?, ?, ?, ?, ?, ?)",
            (pid, tree, identity.values["last_modified"], identity.files, identity.bytes, int(identity.complete)))
        self.db.many("INSERT INTO version_machines (version, patient, machine) VALUES (?, ?, ?)",
                     [(version, pid, machine) for machine in identity.machines])
        return version

    def location(self, pid: int, version: int, store: str, kind: str, ref: str, when: str, *, file: str = "",
                 damaged: bool = False, site: str = "", source: str = "") -> None:
        self.locations([(pid, version)], store, kind, ref, when, file=file, damaged=damaged, site=site,
                       source=source)

    def locations(self, located: list[tuple[int, int]], store: str, kind: str, ref: str, when: str, *,
                  file: str = "", damaged: bool = False, site: str = "", source: str = "") -> None:
        """The (patient, version) pairs found in one snapshot or archive, inserted in one statement, with the
        site and source they came from."""
        self.touched.update(pid for pid, _ in located)
        self.db.many("INSERT INTO locations (version, patient, store, kind, ref, time, file, damaged, site, source) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     [(version, pid, store, kind, ref, when, file, int(damaged), site, source)
                      for pid, version in located])


def _indexed(catalog: Catalog, store: str, kind: str) -> set[str]:
    return {r[0] for r in catalog.execute("SELECT ref FROM indexed WHERE store = ? AND kind = ?", (store, kind))}


def _snapshot_ids(store: Store) -> set[str]:
    return {k.removeprefix("snapshots/").removesuffix(".json") for k in store.backend.list("snapshots/")
            if k.endswith(".json")}


class _Manifests:
    """The store's manifests, read once for all the snapshots a sync indexes (a read parses every manifest:
    once per new snapshot, a rebuild's cost grew with the square of their number); a failure to read them is
    raised again for each snapshot, as each read would have failed."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.read: tuple[list[Manifest], dict[str, str]] | StoreError | None = None

    def load(self, snapshot_id: str) -> Manifest:
        if self.read is None:
            try:
                self.read = self.store.manifests_and_damage()
            except StoreError as error:
                self.read = error
        if isinstance(self.read, StoreError):
            raise self.read
        return self.store.pick_snapshot(snapshot_id, *self.read)


def _known_versions(db: Catalog, keys: list[str]) -> dict[tuple[str, str], tuple[int, int]]:
    """(key, tree) → (version, patient) of the patients with these keys: one query per few hundred patients
    instead of one per patient (a snapshot that changed nothing names only known trees)."""
    found: dict[tuple[str, str], tuple[int, int]] = {}
    unique = sorted(set(keys))
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start:start + _CHUNK]
        for key, tree, version, pid in db.execute(
                "SELECT p.key, v.tree, v.id, p.id FROM versions v JOIN patients p ON p.id = v.patient "
                f"WHERE p.key IN ({', '.join('?' * len(chunk))})", chunk):
            found.setdefault((key, tree), (int(version), int(pid)))
    return found


def _index_snapshot(writer: Writer, name: str, manifests: _Manifests, snapshot_id: str,
                    destroyed: frozenset[tuple[str, str]] | set[tuple[str, str]] = frozenset(), site: str = "") -> int:
    """The snapshot's patient versions and their locations, of its source and of its source's site (else of
    `site`, the store's); a version whose archive was legally destroyed (`destroyed`: (path, tree)) is not
    listed, though the snapshot still holds it until retention forgets it."""
    manifest = manifests.load(snapshot_id)
    store = manifests.store
    added = 0
    entries = [entry for entry in manifest.patients if (entry.path, entry.tree) not in destroyed]
    keys = [patient_key(entry.path, entry.patient_id, entry.mrn) for entry in entries]
    known = _known_versions(writer.db, keys)
    located: list[tuple[int, int]] = []
    try:
        for key, entry in zip(keys, entries, strict=True):
            if (key, entry.tree) in known:
                version, pid = known[(key, entry.tree)]
            else:
                tree = store.get_tree(entry.tree)
                record = tree.patient or PatientRecord(entry.path, entry.patient_id, entry.last_name,
                                                       entry.first_name, mrn=entry.mrn, birth_date=entry.birth_date)
                if tree.unreadable and not (record.patient_id is not None or record.mrn or record.last_name):
                    continue  # unreadable at its first backup: no identity to file it under (named by the backup)
                identity = Identity.of({**record.to_json(), "path": entry.path}, files=entry.files,
                                       size=entry.bytes, complete=not tree.unreadable)  # unreadable at backup time
                pid = writer.patient(identity)
                version = writer.version(pid, entry.tree, identity)
                known.setdefault((identity.key, entry.tree), (version, pid))
                added += 1
            located.append((pid, version))
    finally:  # a tree that cannot be read leaves the locations found before it, as one insert per patient did
        writer.locations(located, name, "snapshot", manifest.id, manifest.time, site=manifest.site or site,
                         source=manifest.source_name)
    writer.db.execute("INSERT INTO indexed (store, kind, ref, time, source) VALUES (?, 'snapshot', ?, ?, ?)",
                      (name, manifest.id, manifest.time, manifest.source_name))
    return added


def archived_at(record: ArchiveRecord) -> str:
    """When an archive was made: now for rtvault's own, else the newest file it holds (an old DVD's date)."""
    created = record.created.replace("+00:00", "Z")  # one time format with the snapshots': they sort together
    if record.origin in OWN_ORIGINS:
        return created
    newest = max((p.last_modified or "" for p in record.patients), default="")
    return newest or created


def _index_archive(writer: Writer, name: str, store: Store, archive_id: str, site: str = "") -> int:
    """The archive's patient versions and their locations: of the site and source of the snapshot it was made
    from, else (an archive ingested) of the site of the store holding it (`site`)."""
    record = records.load_summary(store, archive_id)
    when, added = archived_at(record), 0
    for patient in record.patients:
        identity = Identity.of(patient.to_json(), files=patient.files, size=patient.bytes, complete=patient.complete)
        pid = writer.patient(identity)
        tree = patient.tree or f"archive:{archive_id}:{identity.values['path']}"
        before = len(writer.touched)
        version = writer.version(pid, tree, identity)
        added += len(writer.touched) > before
        writer.location(pid, version, name, "archive", archive_id, when, file=record.file,
                        damaged=not patient.complete, site=record.site or site, source=record.source_name)
        keep = records.patient_keep(store, record, patient).date
        writer.db.execute("UPDATE patients SET archived_at = CASE WHEN archived_at IS NULL OR archived_at < ? "
                          "THEN ? ELSE archived_at END, keep_until = ? WHERE id = ?",
                          (when, when, keep.isoformat() if keep else None, pid))
    writer.db.execute("INSERT INTO indexed (store, kind, ref, time) VALUES (?, 'archive', ?, ?)",
                      (name, archive_id, when))
    return added


def _forget(writer: Writer, name: str, kind: str, refs: set[str]) -> None:
    for ref in sorted(refs):
        writer.touched.update(r[0] for r in writer.db.execute(
            "SELECT patient FROM locations WHERE store = ? AND kind = ? AND ref = ?", (name, kind, ref)))
        writer.db.execute("DELETE FROM locations WHERE store = ? AND kind = ? AND ref = ?", (name, kind, ref))
        writer.db.execute("DELETE FROM indexed WHERE store = ? AND kind = ? AND ref = ?", (name, kind, ref))


def store_id(store: Store) -> str:
    """The id the catalog knows a store by: its rtvault-store.json's (catalog/stores.py)."""
    return str(store.info["id"])


def sync_store(catalog: Catalog, name: str, store: Store, *, again: frozenset[str] = frozenset(),
               site: str = "") -> SyncSummary:
    """Bring the catalog in line with one store (configured as `name` at `site`): new snapshots and archives in,
    vanished ones out; the archives whose id starts with one of `again` are read again (their retention
    overrides changed). The rows name the store by its id, never by `name`."""
    started, summary = time.monotonic(), SyncSummary(name)
    writer = Writer(catalog)
    snapshots, archives = _snapshot_ids(store), set(records.all_ids(store))
    stores.adopt(catalog, {name: store_id(store)}, site)
    name = store_id(store)
    with catalog.transaction():
        stores.register(catalog, name, summary.store, site)
        old_snapshots, old_archives = _indexed(catalog, name, "snapshot"), _indexed(catalog, name, "archive")
        reread = {a for a in old_archives if any(a.startswith(prefix) for prefix in again)}
        _forget(writer, name, "archive", reread)
        old_archives -= reread
        _forget(writer, name, "snapshot", old_snapshots - snapshots)
        _forget(writer, name, "archive", old_archives - archives)
        summary.snapshots_removed = len(old_snapshots - snapshots)
        summary.archives_removed = len(old_archives - archives)
        manifests = _Manifests(store)
        destroyed = _destroyed(catalog, store) if snapshots - old_snapshots else set()
        for snapshot_id in sorted(snapshots - old_snapshots):
            try:
                summary.versions_added += _index_snapshot(writer, name, manifests, snapshot_id, destroyed, site)
                summary.snapshots_added += 1
            except StoreError as error:
                summary.problems.append(str(error))
        for archive_id in sorted(archives - old_archives):
            try:
                summary.versions_added += _index_archive(writer, name, store, archive_id, site)
                summary.archives_added += 1
            except StoreError as error:
                summary.problems.append(str(error))
        _settle(catalog, writer.touched, snapshots_changed=bool(snapshots ^ old_snapshots))
        summary.runs_added, problems = runs.sync_store(catalog, store)
        summary.problems += problems
        summary.dicom_instances_added, problems = dicom.sync_store(catalog, name, store, site)
        summary.problems += problems
        summary.dicom_unlinked = dicom_patients.kept_apart(catalog, name)
    summary.duration_s = round(time.monotonic() - started, 3)
    return summary


def _destroyed(catalog: Catalog, store: Store) -> set[tuple[str, str]]:
    """(path, tree) of the patient versions whose archive was legally destroyed: the store's records and the
    catalog's (a store that did not answer at the destruction has no record of it yet)."""
    try:
        found = records.destroyed_versions(store)
    except (StoreError, ValueError, KeyError, TypeError):
        found = set()
    return found | destructions.destroyed_versions(catalog)


def forget_versions(catalog: Catalog, versions: set[tuple[str, str]]) -> None:
    """A legal destruction: the snapshot locations of these patient versions ((path, tree)) dropped, so that the
    catalog never shows the destroyed version as available; a patient left with no version goes too."""
    touched: set[int] = set()
    with catalog.transaction():
        for path, tree in sorted(versions):
            rows = catalog.execute("SELECT v.id, v.patient FROM versions v JOIN patients p ON p.id = v.patient "
                                   "WHERE p.path = ? AND v.tree = ?", (path, tree))
            for version, pid in rows:
                catalog.execute("DELETE FROM locations WHERE version = ? AND kind = 'snapshot'", (version,))
                touched.add(int(pid))
        _settle(catalog, touched)


def _settle(catalog: Catalog, touched: set[int], *, snapshots_changed: bool = True) -> None:
    """Drop versions and patients left without any location; recompute the status of every touched patient; link
    the DICOM instances of their MRNs again (`dicom_patients.link`)."""
    folds = _mrn_folds(catalog, touched)
    for pid in sorted(touched):
        catalog.execute("DELETE FROM version_machines WHERE patient = ? AND version NOT IN "
                        "(SELECT version FROM locations WHERE patient = ?)", (pid, pid))
        catalog.execute("DELETE FROM versions WHERE patient = ? AND id NOT IN "
                        "(SELECT version FROM locations WHERE patient = ?)", (pid, pid))
        if catalog.one("SELECT 1 FROM versions WHERE patient = ?", (pid,)) is None:
            for table in ("terms", "plans", "image_sets"):
                catalog.execute(f"DELETE FROM {table} WHERE patient = ?", (pid,))
            dicom_patients.unlink(catalog, pid)
            catalog.execute("DELETE FROM patients WHERE id = ?", (pid,))
    place(catalog, touched)
    refresh_status(catalog, touched, snapshots_changed=snapshots_changed)
    dicom_patients.link(catalog, folds)


def _mrn_folds(catalog: Catalog, touched: set[int]) -> set[str]:
    """The folded MRNs of these patients and the PatientIDs of the DICOM instances linked to them (an MRN that
    changed), a few hundred patients a statement."""
    ids, found = sorted(touched), set()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        found |= {r[0] for r in catalog.execute(f"SELECT mrn_fold FROM patients WHERE id IN ({marks}) UNION "
                                                f"SELECT patient_fold FROM dicom_instances WHERE patient IN ({marks})",
                                                chunk + chunk)}
    return found - {""}


def place(catalog: Catalog, touched: set[int]) -> None:
    """The site and source of every touched patient, from its locations (a few hundred patients a statement)."""
    ids = sorted(touched)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        catalog.execute(f"{PLACE} WHERE id IN ({', '.join('?' * len(chunk))})", chunk)


def refresh_status(catalog: Catalog, touched: set[int], *, snapshots_changed: bool = True) -> None:
    """active: in the newest snapshot of its source in a store; archived: else in an archive; deleted: only in
    old snapshots."""
    newest = catalog.execute("SELECT store, source, MAX(time) FROM indexed WHERE kind = 'snapshot' "
                             "GROUP BY store, source")
    refs = [r[0] for store, source, when in newest
            for r in catalog.execute("SELECT ref FROM indexed WHERE store = ? AND source = ? AND kind = 'snapshot' "
                                     "AND time = ?", (store, source, when))]
    # An untouched active patient can only stop being active when the newest snapshot changed.
    active = catalog.execute("SELECT id FROM patients WHERE status = 'active'") if snapshots_changed else []
    candidates = set(touched) | {r[0] for r in active}
    marks = ", ".join("?" * len(refs)) or "''"
    for pid in sorted(candidates):
        row = catalog.one(
            f"SELECT EXISTS (SELECT 1 FROM locations WHERE patient = ? AND kind = 'snapshot' AND ref IN ({marks})), "
            "EXISTS (SELECT 1 FROM locations WHERE patient = ? AND kind = 'archive')", (pid, *refs, pid))
        if row is None:
            continue
        status = "active" if row[0] else "archived" if row[1] else "deleted"
        catalog.execute("UPDATE patients SET status = ? WHERE id = ? AND status <> ?", (status, pid, status))


def sync(catalog: Catalog, opened: dict[str, Store], *, again: frozenset[str] = frozenset(),
         site: str = "") -> list[SyncSummary]:
    """Every store in turn; one that cannot be listed keeps its entries and is named, the others are indexed."""
    summaries = []
    for name, store in opened.items():
        try:
            summaries.append(sync_store(catalog, name, store, again=again, site=site))
        except StoreError as error:
            summaries.append(SyncSummary(name, problems=[f"store {name} not indexed, its entries kept: {error}"]))
    place_volume_copies(catalog)
    return summaries


def place_volume_copies(catalog: Catalog) -> None:
    """The removable disks' copies follow the stores' archive locations (catalog/volumes.py): after every sync
    and rebuild, and after a volume command changed what a disk holds."""
    with catalog.transaction():
        removed = volumes.derive_locations(catalog)
        if removed:
            _settle(catalog, removed, snapshots_changed=False)


def rebuild(catalog: Catalog, opened: dict[str, Store], *, site: str = "") -> list[SyncSummary]:
    """Empty the patient index and fill it again from the stores alone (users and audit are kept). All or
    nothing: when a snapshot or archive of a store cannot be read, the catalog is left as it was (StoreError)."""
    with catalog.transaction():
        for table in INDEX_TABLES:
            catalog.execute(f"DELETE FROM {table}")
        summaries = sync(catalog, opened, site=site)
        problems = [f"store {s.store}: {problem}" for s in summaries for problem in s.problems]
        if problems:
            raise StoreError(f"rebuild abandoned, the catalog is unchanged: {problems[0]}"
                             + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
                             + "; fix or repair the store (`rtvault verify`, `rtvault repair`), then rebuild again")
    return summaries
