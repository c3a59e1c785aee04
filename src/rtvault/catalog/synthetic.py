"""Synthetic patients written straight into the catalog, for demonstrations and the search benchmark.

Every value the search reads is derived by the indexer's own functions (`Identity.of`, `Identity.terms`,
`plan_terms`, the folding module), so a filled catalog is searched exactly like one indexed from stores. The
rows are written in bulk (executemany in one transaction, ids assigned here), which makes a million patients
a matter of minutes. Filled patients live in a store named SYNTHETIC_STORE that no configuration has, and a
catalog that holds real patients is refused unless forced: fake patients are never mixed with real ones
silently. `rtvault catalog rebuild` removes them, as it removes everything the stores do not hold.

Names follow a Zipf-like law over a fixed, invented-by-combination universe of about 70,000 French surnames
(accents, compound names, particles, apostrophes): the most common is ~0.4 % of patients, as MARTIN is in France.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
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
from rtvault.demo.sites import SITES
from rtvault.errors import InputError
from rtvault.events import NoProgress, Progress

SYNTHETIC_STORE = "synthetic"
CHUNK = 20_000  # patients per transaction: big enough for executemany, small enough to show progress
SNAPSHOTS = 14  # daily snapshots of the synthetic store, the newest on NEWEST_SNAPSHOT
NEWEST_SNAPSHOT = date(2026, 11, 1)
PATIENTS_PER_ARCHIVE = 3_000
SHARES = {"active": 0.15, "deleted": 0.05, "archived": 0.80}

COMMON_SURNAMES = (
    "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau", "Laurent",
    "Simon", "Michel", "Lefèvre", "Leroy", "Roux", "David", "Bertrand", "Morel", "Fournier", "Girard",
    "Bonnet", "Dupont", "Lambert", "Fontaine", "Rousseau", "Vincent", "Muller", "Faure", "André", "Mercier",
    "Blanc", "Guérin", "Boyer", "Garnier", "Chevalier", "François", "Legrand", "Gauthier", "Garcia", "Perrin",
    "Robin", "Clément", "Morin", "Nicolas", "Henry", "Roussel", "Mathieu", "Gautier", "Masson", "Marchand",
    "Duval", "Denis", "Dumont", "Marie", "Lemaire", "Noël", "Meyer", "Dufour", "Meunier", "Brun", "Blanchard",
    "Giraud", "Joly", "Rivière", "Lucas", "Brunet", "Gaillard", "Barbier", "Arnaud", "Martinez", "Gérard",
    "Roche", "Renard", "Schmitt", "Roy", "Leroux", "Colin", "Vidal", "Caron", "Picard", "Roger", "Fabre",
    "Aubert", "Lemoine", "Renaud", "Dumas", "Lacroix", "Olivier", "Philippe", "Bourgeois", "Pierre", "Benoît",
    "Rey", "Leclerc", "Payet", "Rolland", "Lecomte", "Lopez", "Jean", "Dupuy", "Guillot", "Hubert", "Berger",
    "Carpentier", "Sanchez", "Dupuis", "Moulin", "Louis", "Deschamps", "Huet", "Vasseur", "Perez", "Boucher",
    "Fleury", "Royer", "Klein", "Jacquet", "Adam", "Paris", "Poirier", "Marty", "Aubry", "Guyot", "Carré",
    "Charles", "Renault", "Charpentier", "Ménard", "Maillard", "Baron", "Bertin", "Bailly", "Hervé", "Le Gall",
    "Léger", "Bouvier", "Julien", "Prévost", "Millet", "Perrot", "Le Roux", "Cousin", "Germain", "Breton",
    "Besson", "Langlois", "Rémy", "Le Goff", "Pelletier", "Lévêque", "Perrier", "Leblanc", "Barré", "Lebrun",
    "N'Diaye", "Nguyen", "Diallo", "Traoré", "Da Silva", "Dos Santos", "Ferreira", "D'Almeida", "Benali",
    "Maréchal", "Étienne", "Lemaître", "Bénard", "Chrétien", "Thébault", "Côté", "Hoarau", "Grondin", "Barthélemy",
)  # fmt: skip
_STEMS = (
    "Beau", "Bou", "Cha", "Chau", "Dela", "Fer", "Gal", "Gué", "Jou", "Lam", "Lan", "Mar", "Mor", "Pel", "Pey",
    "Ros", "Tou", "Ver", "Vill", "Bel", "Ber", "Bla", "Bro", "Cas", "Cor", "Dor", "Fon", "Gar", "Gir", "Lab",
    "Lar", "Mal", "Mon", "Pon", "Ram", "Rib", "Sal", "Tal", "Val", "Bé", "Lé", "Mé", "Pré", "Thé", "Hé", "Ché",
    "Ker", "Gou", "Quén", "Rou", "Sau", "Tré", "Vau", "Bau", "Cou", "Dau", "Fau", "Hau", "Lau", "Mau", "Bar",
    "Bon", "Bour", "Car", "Char", "Clé", "Cro", "Duf", "Es", "Fran", "Gau", "Gil", "Gra", "Jac", "Lef", "Leg",
    "Mas", "Mich", "Ner", "Pas", "Pic", "Pou", "Rav", "Ren", "Sou", "Tess", "Vid", "Aub", "Ar", "Or",
)  # fmt: skip
_JOINTS = {True: ("", "r", "ch", "l", "n", "ss", "rr", "v", "t", "ll", "rd", "gn", "m", "d", "b"),  # after a vowel
           False: ("", "a", "e", "i", "o", "ou", "ell", "ill", "ar", "er", "on", "an", "eg", "ag")}
_ENDINGS = (
    "and", "ard", "art", "aud", "ault", "eau", "eaux", "el", "elle", "er", "ès", "et", "ette", "eux", "ier", "in",
    "ine", "is", "on", "ot", "oux", "uc", "y", "é", "ère", "ais", "as", "at", "ert", "oud", "ac", "ec", "ou", "ic",
    "ent", "ieu", "ias", "chard", "let", "lier", "mont", "net", "ron", "teau", "ville", "court", "bert", "geot",
    "quet", "lin", "rand", "det", "mier", "baud", "lot", "nier", "vaux", "champ", "vier", "card", "çon", "zé",
    "gny", "thier", "rieu",
)  # fmt: skip
_VOWELS = frozenset("aeiouyéèêëàâîïôûüAEIOUÉ")
_PARTICLES = ("de ", "de la ", "du ", "des ", "Le ", "La ", "de Saint-", "Van ", "El ")
_N_APOSTROPHE = (("D", "G", "Gu", "Z", "K", "Dj", "Do", "Go"),
                 ("iaye", "essan", "oran", "ouba", "ala", "iallo", "ama", "ombo", "ué", "iré", "our", "ao"))
_L_APOSTROPHE = ("L'Hôte", "L'Huillier", "L'Hermitte", "L'Hostis", "L'Helgouac'h", "L'Hénoret")
FEMALE_FIRST = (
    "Marie", "Nathalie", "Isabelle", "Sylvie", "Catherine", "Françoise", "Christine", "Monique", "Valérie",
    "Sandrine", "Nicole", "Véronique", "Jacqueline", "Martine", "Hélène", "Chantal", "Anne", "Christiane",
    "Céline", "Brigitte", "Stéphanie", "Camille", "Léa", "Chloé", "Émilie", "Inès", "Zoé", "Anaïs", "Maëlle",
    "Noémie", "Agnès", "Bénédicte", "Geneviève", "Thérèse", "Cécile", "Élodie", "Éloïse", "Joséphine",
    "Aïcha", "Fatoumata", "Solène", "Gaëlle", "Josiane", "Danièle", "Ginette", "Paulette", "Yvette", "Odile",
    "Mireille", "Colette", "Françoise-Marie", "Marie-Thérèse", "Anne-Sophie", "Marie-Christine", "Marie-Hélène",
    "Anne-Marie", "Marie-Noëlle", "Marie-José", "Laure-Anne", "Rose-Marie",
)  # fmt: skip
MALE_FIRST = (
    "Jean", "Philippe", "Michel", "Alain", "Patrick", "Nicolas", "Christophe", "Pierre", "Christian", "Éric",
    "Frédéric", "Laurent", "Stéphane", "David", "Pascal", "Daniel", "Thierry", "Julien", "Olivier", "Bernard",
    "Jérôme", "Loïc", "Gaël", "Noël", "Hervé", "André", "René", "Raphaël", "Benoît", "Joël", "Théo",
    "Clément", "Grégoire", "Cédric", "Gérard", "Jacques", "Yannick", "Mamadou", "Karim", "Émile", "Léon",
    "Maël", "Anthony", "Sébastien", "Rémi", "Hugues", "Aurélien", "Jean-Baptiste", "Jean-François",
    "Jean-Pierre", "Jean-Claude", "Jean-Loïc", "Jean-Marc", "Pierre-Yves", "Jean-Michel", "Jean-Luc",
    "Marc-André", "Jean-Noël", "Paul-Émile", "Jean-Hervé",
)  # fmt: skip
MIDDLE_NAMES = ("Marie", "Joseph", "Louise", "Pierre", "Hélène", "Jean", "Thérèse", "Noël", "Andrée", "Hervé")
COMMENTS = ("", "", "", "Patient sous anticoagulants", "Contention: masque 5 points", "Vessie pleine, rectum vide",
            "Pacemaker: voir cardiologue avant traitement", "Transport en ambulance", "Réirradiation")
MODALITIES = (("CT", 1.0), ("MR", 0.35), ("PT", 0.2))


def _zipf_cumulative(count: int, offset: float, exponent: float = 1.0) -> list[float]:
    """Cumulative Zipf–Mandelbrot weights (rank + offset)^-exponent: a flat head, then a long tail."""
    return list(itertools.accumulate((rank + offset) ** -exponent for rank in range(1, count + 1)))


def _joins(left: str, right: str) -> bool:
    """Whether two pieces make a pronounceable French-looking name (no vowel or consonant pile-up)."""
    if left[-1] in _VOWELS:
        return right[0] not in _VOWELS
    return right[0] in _VOWELS or (left[-1] in "rln" and left[-2] in _VOWELS)


def _simple_surnames() -> list[str]:
    made = {stem + joint + ending for stem in _STEMS for joint in _JOINTS[stem[-1] in _VOWELS]
            for ending in _ENDINGS if _joins(stem + joint, ending) if joint or _joins(stem, ending)}
    return sorted(made - set(COMMON_SURNAMES))


@lru_cache(maxsize=1)
def surname_universe() -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Every surname, most common first, with cumulative weights; the same for every seed."""
    rng = random.Random("rtvault synthetic surnames")
    simple = _simple_surnames()
    rng.shuffle(simple)
    with_vowel = [n for n in simple if n[0] in _VOWELS]
    particles = [rng.choice(_PARTICLES) + rng.choice(simple) for _ in range(8_000)]
    apostrophes = [f"N'{a}{b}" for a in _N_APOSTROPHE[0] for b in _N_APOSTROPHE[1]]
    apostrophes += [f"D'{rng.choice(with_vowel)}" for _ in range(1_500)] + list(_L_APOSTROPHE)
    head = list(COMMON_SURNAMES) + simple[:2_000]
    compounds = [f"{rng.choice(head)}-{rng.choice(head)}" for _ in range(6_000)]
    tail = simple + particles + apostrophes + compounds
    rng.shuffle(tail)
    names = tuple(dict.fromkeys([*COMMON_SURNAMES, *tail]))
    return names, tuple(_zipf_cumulative(len(names), 5.0, 0.75))


@dataclass
class _Names:
    """Draws people: surnames by the law above, first names by a steeper one per gender."""

    rng: random.Random
    surnames: tuple[tuple[str, ...], tuple[float, ...]] = field(default_factory=surname_universe)
    female: list[float] = field(default_factory=lambda: _zipf_cumulative(len(FEMALE_FIRST), 4.0))
    male: list[float] = field(default_factory=lambda: _zipf_cumulative(len(MALE_FIRST), 4.0))
    doctors: list[float] = field(default_factory=lambda: _zipf_cumulative(len(physicians()), 3.0))

    def draw(self, names: tuple[str, ...], cumulative: list[float] | tuple[float, ...]) -> str:
        return names[bisect.bisect(cumulative, self.rng.random() * cumulative[-1])]

    def person(self) -> dict[str, str]:
        female = self.rng.random() < 0.5
        first = self.draw(*((FEMALE_FIRST, self.female) if female else (MALE_FIRST, self.male)))
        middle = self.rng.choice(MIDDLE_NAMES) if self.rng.random() < 0.25 else ""
        upper_first = self.rng.random() < 0.4
        last = self.draw(*self.surnames)
        return {"last_name": last.upper() if self.rng.random() < 0.85 else last,
                "first_name": first.upper() if upper_first else first,
                "middle_name": middle.upper() if upper_first else middle, "gender": "Female" if female else "Male",
                "radiation_oncologist": self.draw(physicians(), self.doctors)}

    def birth_date(self) -> str | None:
        """Radiotherapy patients are mostly born around 1955, but every year from 1920 to 2020 appears."""
        if self.rng.random() < 0.04:
            return None
        year = round(self.rng.gauss(1955, 14)) if self.rng.random() < 0.85 else self.rng.randint(1920, 2020)
        day = date(min(max(year, 1920), 2020), 1, 1) + timedelta(days=self.rng.randrange(365))
        return day.isoformat()


@lru_cache(maxsize=1)
def physicians() -> tuple[str, ...]:
    """Thirty radiation oncologists, the first ones busier."""
    rng = random.Random("rtvault synthetic physicians")
    picked = [*rng.sample(COMMON_SURNAMES[:120], 26), "N'Diaye", "Le Goff", "Martin-Dupont", "Béranger"]
    return tuple(f"{'Pr' if i % 7 == 0 else 'Dr'} {name.upper()}" for i, name in enumerate(picked))


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
    names: _Names = field(init=False)
    plan_terms: dict[str, set[str]] = field(default_factory=dict)
    last_names: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.names = _Names(self.rng)

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
