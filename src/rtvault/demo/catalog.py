"""Synthetic patients written straight into the catalog, for demonstrations and the search benchmark.

Every value the search reads is derived by the indexer's own functions (`Identity.of`, `Identity.terms`,
`plan_terms`, the folding module), so a filled catalog is searched exactly like one indexed from stores. The
rows are written in bulk (executemany in one transaction, ids assigned here), which makes a million patients
a matter of minutes. Filled patients live in a store named SYNTHETIC_STORE that no configuration has, and a
catalog that holds real patients is refused unless forced: fake patients are never mixed with real ones
silently. `rtvault catalog rebuild` removes them, as it removes everything the stores do not hold.

Who the patients are (names, birth dates, physicians) is drawn by `demo.population`.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache

from rtvault.archive.keep import keep_until
from rtvault.catalog import fold as folding
from rtvault.catalog.db import Catalog
from rtvault.catalog.indexer import Identity, plan_terms
from rtvault.demo.population import Names
from rtvault.demo.sites import SITES
from rtvault.errors import InputError
from rtvault.events import NoProgress, Progress

SYNTHETIC_STORE = "synthetic"
CHUNK = 20_000  # patients per transaction: big enough for executemany, small enough to show progress
SNAPSHOTS = 14  # daily snapshots of the synthetic store, the newest on NEWEST_SNAPSHOT
NEWEST_SNAPSHOT = date(2026, 11, 1)
PATIENTS_PER_ARCHIVE = 3_000
SHARES = {"active": 0.15, "deleted": 0.05, "archived": 0.80}

COMMENTS = ("", "", "", "Patient sous anticoagulants", "Contention: masque 5 points", "Vessie pleine, rectum vide",
            "Pacemaker: voir cardiologue avant traitement", "Transport en ambulance", "Réirradiation")
MODALITIES = (("CT", 1.0), ("MR", 0.35), ("PT", 0.2))


def _stamp(day: date, hour: int = 2) -> str:
    return f"{day.isoformat()}T{hour:02d}:00:00Z"


@lru_cache(maxsize=1)
def snapshots() -> tuple[tuple[str, str], ...]:
    """The synthetic store's daily snapshots, oldest first: (id, time) shaped like real ones."""
    days = [NEWEST_SNAPSHOT - timedelta(days=SNAPSHOTS - 1 - i) for i in range(SNAPSHOTS)]
    return tuple((f"{d:%Y%m%d}T020000Z-{hashlib.sha256(str(d).encode()).hexdigest()[:6]}", _stamp(d)) for d in days)


@dataclass
class Rows:
    """One chunk of rows for every table, in insertion order."""

    patients: list[tuple] = field(default_factory=list)
    versions: list[tuple] = field(default_factory=list)
    locations: list[tuple] = field(default_factory=list)
    plans: list[tuple] = field(default_factory=list)
    image_sets: list[tuple] = field(default_factory=list)
    terms: list[tuple] = field(default_factory=list)
    indexed: set[tuple] = field(default_factory=set)


@dataclass
class _Generator:
    """Draws one patient after another, with versions placed in snapshots or archives like real ones."""

    rng: random.Random
    archives_per_year: int
    next_version: int
    names: Names = field(init=False)
    plan_terms: dict[str, set[str]] = field(default_factory=dict)
    last_names: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.names = Names(self.rng)

    def patient(self, pid: int, rows: Rows) -> Identity:
        site, rng = self.rng.choice(SITES), self.rng
        status = rng.choices(tuple(SHARES), weights=tuple(SHARES.values()))[0]
        placed = self._archived() if status == "archived" else self._in_snapshots(status == "active")
        plans = rng.sample(site.plan_names, rng.randint(1, min(3, len(site.plan_names))))
        images = [{"name": rng.choice(site.series) if modality == "CT" else f"{modality} {rng.choice(site.series)}",
                   "modality": modality} for modality, share in MODALITIES if rng.random() < share]
        data = {**self.names.person(), "path": f"Institution_{1 + pid % 3}/Mount_0/Patient_{pid}", "patient_id": pid,
                "mrn": f"{20 + pid % 7}{(pid * 7919) % 9_000_000 + 1_000_000}", "birth_date": self.names.birth_date(),
                "diagnosis": rng.choice(site.diagnoses), "comment": rng.choice(COMMENTS),
                "last_modified": placed[-1][0], "plans": plans, "image_sets": images}
        identity = Identity.of(data, files=0, size=0)
        self.last_names.add(str(identity.values["sort_name"]).split(" ", 1)[0])  # folded: LEFÈVRE = Lefèvre
        archived_at = max((when for _, places in placed for kind, _, when, _ in places if kind == "archive"),
                          default=None)
        rows.patients.append((pid, identity.key, *identity.values.values(), archived_at,
                              self._keep(identity) if archived_at else None, status))
        self._versions(pid, placed, rows)
        rows.plans.extend((pid, name) for name in plans)
        rows.image_sets.extend((pid, image["name"], image["modality"]) for image in images)
        terms = set(identity.terms()) | {("plan", t) for name in plans for t in self._plan_terms(name)}
        rows.terms.extend((f, t, pid, identity.values["sort_name"]) for f, t in sorted(terms))
        return identity

    def _plan_terms(self, name: str) -> set[str]:
        if name not in self.plan_terms:
            self.plan_terms[name] = plan_terms(name)
        return self.plan_terms[name]

    @staticmethod
    def _keep(identity: Identity) -> str | None:
        last, birth = identity.values["last_modified"], identity.values["birth_date"]
        keep = keep_until(date.fromisoformat(str(last)[:10]), date.fromisoformat(str(birth)) if birth else None).date
        return keep.isoformat() if keep else None

    def _versions(self, pid: int, placed: list[tuple[str, list[tuple]]], rows: Rows) -> None:
        for last_modified, places in placed:
            vid, self.next_version = self.next_version, self.next_version + 1
            damaged = any(p[0] == "archive" for p in places) and self.rng.random() < 0.005
            files = self.rng.randint(20, 400)
            rows.versions.append((vid, pid, f"{self.rng.getrandbits(256):064x}", last_modified, files,
                                  files * self.rng.randint(200_000, 2_000_000), int(not damaged)))
            for kind, ref, when, file in places:
                rows.locations.append((vid, pid, SYNTHETIC_STORE, kind, ref, when, file, int(damaged)))
                rows.indexed.add((SYNTHETIC_STORE, kind, ref, when))

    def _in_snapshots(self, active: bool) -> list[tuple[str, list[tuple]]]:
        """Versions in consecutive blocks of snapshots: up to the newest one (active), or ending before (deleted)."""
        end = SNAPSHOTS if active else self.rng.randrange(1, SNAPSHOTS)
        count = min(end, self.rng.choices((1, 2, 3), weights=(50, 35, 15))[0])
        starts = [0, *sorted(self.rng.sample(range(1, end), count - 1))]
        taken = snapshots()
        first = date.fromisoformat(taken[0][1][:10]) - timedelta(days=self.rng.randrange(1, 3 * 365))
        placed = []
        for i, start in enumerate(starts):
            stop = starts[i + 1] if i + 1 < len(starts) else end
            day = first if i == 0 else date.fromisoformat(taken[start][1][:10]) - timedelta(days=1)
            modified = _stamp(day, 11 if i == 0 else 16)
            placed.append((modified, [("snapshot", ref, when, "") for ref, when in taken[start:stop]]))
        return placed

    def _archived(self) -> list[tuple[str, list[tuple]]]:
        """Versions each in an archive of the year it was last modified (old DVDs, then rtvault's own)."""
        year = self.rng.randint(1995, 2024)
        years = sorted({year - self.rng.randint(1, 3) for _ in range(self.rng.choices((0, 1, 2), (50, 35, 15))[0])})
        placed = []
        for y in [*years, year]:
            modified = _stamp(date(y, 1, 1) + timedelta(days=self.rng.randrange(364)), 10)
            number = self.rng.randrange(self.archives_per_year) + 1
            file = f"PINNACLE_{y}_DVD{number:02d}.tar{'.gz' if y >= 2010 else ''}"
            ref = hashlib.sha256(f"synthetic archive {file}".encode()).hexdigest()
            placed.append((modified, [("archive", ref, _stamp(date(y, 12, 31), 0), file)]))
        return placed


def _next_id(catalog: Catalog, table: str) -> int:
    row = catalog.one(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
    return int(row[0]) + 1 if row else 1


def real_patients(catalog: Catalog) -> bool:
    """Whether the catalog holds any patient found in a real store."""
    return catalog.one("SELECT 1 FROM locations WHERE store <> ? LIMIT 1", (SYNTHETIC_STORE,)) is not None


class _BulkWriter:
    """Writes chunks of rows with executemany, and the vocabulary and typo variants of the terms not seen yet."""

    def __init__(self, catalog: Catalog, columns: tuple[str, ...]) -> None:
        self.db = catalog
        self.vocabulary = {(f, t) for f, t in catalog.execute("SELECT field, term FROM vocabulary")}
        names = ", ".join(("id", "key", *columns, "archived_at", "keep_until", "status"))
        self.patients_sql = f"INSERT INTO patients ({names}) VALUES ({', '.join('?' * (len(columns) + 5))})"
        self.counts = dict.fromkeys(("patients", "versions", "locations", "plans", "image_sets", "terms"), 0)

    def write(self, rows: Rows) -> None:
        db = self.db
        with db.transaction():
            db.many(self.patients_sql, rows.patients)
            db.many("INSERT INTO versions (id, patient, tree, last_modified, files, bytes, complete) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)", rows.versions)
            db.many("INSERT INTO locations (version, patient, store, kind, ref, time, file, damaged) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows.locations)
            db.many("INSERT INTO plans (patient, name) VALUES (?, ?)", rows.plans)
            db.many("INSERT INTO image_sets (patient, name, modality) VALUES (?, ?, ?)", rows.image_sets)
            db.many("INSERT INTO terms (field, term, patient, sort_name) VALUES (?, ?, ?, ?)", rows.terms)
            new = sorted({(f, t) for f, t, _, _ in rows.terms} - self.vocabulary)
            self.vocabulary.update(new)
            db.many("INSERT INTO vocabulary (field, term) VALUES (?, ?) ON CONFLICT DO NOTHING", new)
            db.many("INSERT INTO variants (field, variant, term) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    [(f, v, t) for f, t in new if f in ("last", "first") for v in sorted(folding.neighbourhood(t))])
            db.many("INSERT INTO indexed (store, kind, ref, time) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    sorted(rows.indexed))
        for name in self.counts:
            self.counts[name] += len(getattr(rows, name))

    def finish(self, doctors: set[str]) -> None:
        with self.db.transaction():
            self.db.many("INSERT INTO physicians (fold, name) VALUES (?, ?) ON CONFLICT DO NOTHING",
                         sorted((folding.physician_fold(name), name) for name in doctors))
            if self.db.dialect == "postgresql":  # ids were given here: move the sequences past them
                for table in ("patients", "versions"):
                    self.db.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                    f"(SELECT MAX(id) FROM {table}))")


_FILLED = ("patients", "versions", "locations", "plans", "image_sets", "terms")


def _secondary_indexes(catalog: Catalog) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the filled tables' indexes that no key or unique constraint needs."""
    tables = ", ".join(f"'{t}'" for t in _FILLED)
    if catalog.dialect == "sqlite":
        return [(n, sql) for n, sql in catalog.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({tables})")]
    return [(n, sql) for n, sql in catalog.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        f"JOIN pg_class t ON t.oid = i.indrelid WHERE t.relname IN ({tables}) AND NOT i.indisprimary "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)")]


@contextmanager
def _bulk_mode(catalog: Catalog, *, reindex: bool) -> Iterator[None]:
    """One transaction for the whole fill (all or nothing); with `reindex`, the secondary indexes dropped first and
    built again at the end, which sorts once instead of inserting at random into large B-trees. SQLite runs
    without fsync and with a large page cache meanwhile: a crash loses nothing, the transaction is not committed."""
    sqlite = catalog.dialect == "sqlite"
    if sqlite:
        catalog.execute("PRAGMA synchronous=OFF")
        catalog.execute("PRAGMA cache_size=-1048576")  # 1 GiB
    try:
        with catalog.transaction():
            indexes = _secondary_indexes(catalog) if reindex else []
            for name, _ in indexes:
                catalog.execute(f"DROP INDEX {name}")
            yield
            for _, statement in indexes:
                catalog.execute(statement)
    finally:
        if sqlite:
            catalog.execute("PRAGMA cache_size=-2000")
            catalog.execute("PRAGMA synchronous=NORMAL")
            catalog.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the fill went through the WAL: give the space back


def fill(catalog: Catalog, patients: int, seed: int, progress: Progress | None = None, *,
         force: bool = False) -> dict[str, object]:
    """Add `patients` synthetic patients to the catalog, the same ones for the same seed and catalog state.

    Refuses (InputError) a catalog that holds real patients unless `force`. `progress` advances by patients
    written. Returns what was written and how long it took.
    """
    if patients < 1:
        raise InputError(f"patients: {patients} is not a positive number")
    if not force and real_patients(catalog):
        raise InputError("the catalog holds real patients: synthetic ones would be mixed with them "
                         "(fill an empty catalog, or force it)")
    started = time.monotonic()
    first = _next_id(catalog, "patients")
    per_year = max(1, round(patients * SHARES["archived"] * 1.7 / 30 / PATIENTS_PER_ARCHIVE))
    generator = _Generator(random.Random(f"{seed}:{first}"), per_year, _next_id(catalog, "versions"))
    writer: _BulkWriter | None = None
    doctors: set[str] = set()
    progress = progress or NoProgress()
    progress.begin("synthetic patients", patients)
    existing = first - 1
    with _bulk_mode(catalog, reindex=patients >= existing):
        for start in range(first, first + patients, CHUNK):
            rows = Rows()
            for pid in range(start, min(start + CHUNK, first + patients)):
                identity = generator.patient(pid, rows)
                doctors.add(str(identity.values["physician"]))
            writer = writer or _BulkWriter(catalog, tuple(identity.values))
            writer.write(rows)
            progress.advance(len(rows.patients))
        assert writer is not None
        writer.finish(doctors)
    progress.end()
    return {"store": SYNTHETIC_STORE, "seed": seed, "first_patient": first, **writer.counts,
            "distinct_last_names": len(generator.last_names), "seconds": round(time.monotonic() - started, 2)}
