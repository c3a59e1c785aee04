"""Multi-criteria patient search over the catalog, shared by `rtvault search` and the web UI.

Names are matched folded (accents, case and punctuation ignored), by prefix, and within one typo. Every
criterion narrows the result through an index; results are sorted by relevance (exact name, then prefix, then
typo), then by name, and paginated. Counting stops at COUNT_LIMIT so that a vague query costs no more on a
million patients than on ten thousand.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import asdict, dataclass, field, fields
from datetime import date

from rtvault.catalog import fold as folding
from rtvault.catalog.db import Catalog
from rtvault.errors import InputError

COUNT_LIMIT = 1_000
MAX_PER_PAGE = 200
STATUSES = ("active", "archived", "deleted")
_GENDER_WORDS = {"m": "male", "male": "male", "h": "male", "homme": "male", "f": "female", "female": "female",
                 "femme": "female", "o": "other", "other": "other", "autre": "other"}


def _criterion(en: str, fr: str, help_en: str = "", **extra: object) -> object:
    return field(default="", metadata={"label": {"en": en, "fr": fr}, "help": help_en, **extra})


@dataclass
class Criteria:
    """What a user searches by; every field is optional text, as typed in the form or on the command line."""

    last_name: str = _criterion("Last name", "Nom", "prefix; accents, case and punctuation ignored; one typo")
    first_name: str = _criterion("First name", "Prénom", "prefix; accents, case and punctuation ignored; one typo")
    mrn: str = _criterion("MRN", "IPP / n° de dossier", "medical record number, exact")
    patient_id: str = _criterion("Pinnacle PatientID", "PatientID Pinnacle", "exact")
    birth_date: str = _criterion("Birth date", "Date de naissance", "exact: 1957-03-14 or 14/03/1957")
    born: str = _criterion("Born in", "Né(e) en", "a year (1957) or a range (1950-1960)")
    gender: str = _criterion("Gender", "Sexe", "male, female or other (M/F, H/F)")
    physician: str = _criterion("Physician", "Médecin", "radiation oncologist, prefix of any word")
    plan: str = _criterion("Plan name", "Nom du plan", "prefix of any word")
    text: str = _criterion("Diagnosis or comment", "Diagnostic ou commentaire", "words, prefix")
    modality: str = _criterion("Modality", "Modalité", "CT, MR, PT ... of an image set")
    status: str = _criterion("Status", "Statut", "active, archived or deleted")
    modified_after: str = _criterion("Modified after", "Modifié après", "date, inclusive")
    modified_before: str = _criterion("Modified before", "Modifié avant", "date, inclusive")
    archived_after: str = _criterion("Archived after", "Archivé après", "date, inclusive")
    archived_before: str = _criterion("Archived before", "Archivé avant", "date, inclusive")
    archive: str = _criterion("Archive file or volume", "Fichier d'archive ou volume", "name, prefix")

    def to_json(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}

    def is_empty(self) -> bool:
        return not self.to_json()

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def labels(cls) -> dict[str, dict]:
        return {f.name: {"label": f.metadata["label"], "help": f.metadata["help"]} for f in fields(cls)}


@dataclass
class SearchResult:
    patients: list[dict]
    total: int
    page: int
    per_page: int
    more: bool  # True when `total` stopped counting at COUNT_LIMIT

    def to_json(self) -> dict[str, object]:
        return asdict(self)


_DAY_PATTERNS = ((r"(\d{4})-(\d{1,2})-(\d{1,2})", (0, 1, 2)), (r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", (2, 1, 0)))


def parse_day(text: str, what: str) -> date:
    text = text.strip()
    for pattern, order in _DAY_PATTERNS:
        if match := re.fullmatch(pattern, text):
            parts = [int(match.group(i + 1)) for i in order]
            try:
                return date(*parts)
            except ValueError:
                break
    raise InputError(f"{what}: {text!r} is not a date (write 1957-03-14 or 14/03/1957)")


def parse_years(text: str) -> tuple[int, int]:
    if match := re.fullmatch(r"\s*(\d{4})\s*(?:(?:-|\.\.|–|to|à)\s*(\d{4}))?\s*", text):
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if first <= last:
            return first, last
    raise InputError(f"born: {text!r} is not a year or a range of years (write 1957 or 1950-1960)")


class _Query:
    """WHERE clauses and their parameters, built criterion by criterion."""

    def __init__(self, catalog: Catalog) -> None:
        self.db = catalog
        self.where: list[str] = []
        self.params: list[object] = []
        self.rank: list[str] = []
        self.rank_params: list[object] = []
        self.names: list[tuple[str, str, str, list[str]]] = []  # (field, term, prefix end, typo matches)

    def add(self, clause: str, *params: object) -> None:
        self.where.append(clause)
        self.params.extend(params)

    def name(self, field_name: str, typed: str) -> None:
        """Name criteria are matched together inside the term index (see `names_clause`); each one's relevance
        (0 exact, 1 prefix, 2 one typo) is computed for the matching patients only."""
        term = folding.compact(typed)
        if not term:
            raise InputError(f"{field_name.replace('_', ' ')}: {typed!r} holds no letter or digit")
        kind = "last" if field_name == "last_name" else "first"
        fuzzy = self._fuzzy(kind, term)
        end = folding.prefix_end(term)
        self.names.append((kind, term, end, fuzzy))
        near = f" OR t.term IN ({', '.join('?' * len(fuzzy))})" if fuzzy else ""
        self.rank.append("(SELECT MIN(CASE WHEN t.term = ? THEN 0 WHEN t.term >= ? AND t.term < ? THEN 1 ELSE 2 END) "
                         f"FROM terms t WHERE t.patient = p.id AND t.field = ? AND (t.term >= ? AND t.term < ?{near}))")
        self.rank_params.extend([term, term, end, kind, term, end, *fuzzy])

    def names_clause(self) -> None:
        """The first name criterion selects candidates from its index range (and its typo matches); the second is
        checked on each candidate inside the term index too, so that the patients table is read only for patients
        matching both names, however many share one of them."""
        if not self.names:
            return
        (kind, term, end, fuzzy), others = self.names[0], self.names[1:]
        also, also_params = "", []
        for other_kind, other_term, other_end, other_fuzzy in others:
            near = f" OR u.term IN ({', '.join('?' * len(other_fuzzy))})" if other_fuzzy else ""
            also += (" AND EXISTS (SELECT 1 FROM terms u WHERE u.patient = t.patient AND u.field = ? "
                     f"AND (u.term >= ? AND u.term < ?{near}))")
            also_params += [other_kind, other_term, other_end, *other_fuzzy]
        arms = [(f"SELECT t.patient FROM terms t WHERE t.field = ? AND t.term >= ? AND t.term < ?{also}",
                 [kind, term, end, *also_params])]
        if fuzzy:
            marks = ", ".join("?" * len(fuzzy))
            arms.append((f"SELECT t.patient FROM terms t WHERE t.field = ? AND t.term IN ({marks}){also}",
                         [kind, *fuzzy, *also_params]))
        self.where.insert(0, f"p.id IN ({' UNION '.join(sql for sql, _ in arms)})")
        self.params[0:0] = [value for _, params in arms for value in params]

    def _fuzzy(self, kind: str, term: str) -> list[str]:
        if len(term) < folding.MIN_FUZZY:
            return []
        near = folding.neighbourhood(term)
        marks = ", ".join("?" * len(near))
        rows = self.db.execute(f"SELECT DISTINCT term FROM variants WHERE field = ? AND variant IN ({marks})",
                               (kind, *sorted(near)))
        return sorted(t for (t,) in rows if not t.startswith(term) and folding.within_one_edit(term, t))

    def words(self, kind: str, typed: str, what: str) -> None:
        terms = folding.words(typed)
        if not terms:
            raise InputError(f"{what}: {typed!r} holds no letter or digit")
        for term in terms:
            self.add("p.id IN (SELECT patient FROM terms WHERE field = ? AND term >= ? AND term < ?)",
                     kind, term, folding.prefix_end(term))

    def physician(self, typed: str) -> None:
        wanted = folding.words(typed)
        wanted = [w for w in wanted if w not in ("dr", "pr")] or wanted
        if not wanted:
            raise InputError(f"physician: {typed!r} holds no letter or digit")
        folds = [f for (f, name) in self.db.execute("SELECT fold, name FROM physicians")
                 if all(any(word.startswith(w) for word in folding.words(name)) or f.startswith(w) for w in wanted)
                 or f.startswith("".join(wanted))]
        if not folds:
            self.add("1 = 0")
            return
        self.add(f"p.physician_fold IN ({', '.join('?' * len(folds))})", *sorted(folds))

    def dates(self, column: str, after: str, before: str, what: str) -> None:
        if after:
            self.add(f"p.{column} >= ?", parse_day(after, f"{what} after").isoformat())
        if before:
            self.add(f"p.{column} < ?", parse_day(before, f"{what} before").isoformat() + "\x7f")


def _build(catalog: Catalog, c: Criteria) -> _Query:
    q = _Query(catalog)
    for name in ("last_name", "first_name"):
        if getattr(c, name).strip():
            q.name(name, getattr(c, name))
    if c.mrn.strip():
        q.add("p.mrn_fold = ?", folding.compact(c.mrn))
    if c.patient_id.strip():
        q.add("p.patient_id = ?", c.patient_id.strip())
    if c.birth_date.strip():
        q.add("p.birth_date = ?", parse_day(c.birth_date, "birth date").isoformat())
    if c.born.strip():
        first, last = parse_years(c.born)
        if last - first < 50:  # equalities: (birth_year, physician_fold) serves both criteria, not just the year
            q.add(f"p.birth_year IN ({', '.join('?' * (last - first + 1))})", *range(first, last + 1))
        else:
            q.add("p.birth_year BETWEEN ? AND ?", first, last)
    if c.gender.strip():
        gender = _GENDER_WORDS.get(folding.fold(c.gender))
        if gender is None:
            raise InputError(f"gender: {c.gender!r} is not male, female or other (M/F, H/F)")
        q.add("p.gender = ?", gender)
    if c.physician.strip():
        q.physician(c.physician)
    if c.plan.strip():
        q.words("plan", c.plan, "plan")
    if c.text.strip():
        q.words("text", c.text, "text")
    if c.modality.strip():
        q.add("p.id IN (SELECT patient FROM image_sets WHERE modality = ?)", c.modality.strip().upper())
    if c.status.strip():
        wanted = [s.strip().lower() for s in c.status.split(",") if s.strip()]
        unknown = [s for s in wanted if s not in STATUSES]
        if unknown:
            raise InputError(f"status: {', '.join(unknown)} unknown (expected {', '.join(STATUSES)})")
        q.add(f"p.status IN ({', '.join('?' * len(wanted))})", *wanted)
    q.dates("last_modified", c.modified_after, c.modified_before, "modified")
    q.dates("archived_at", c.archived_after, c.archived_before, "archived")
    if c.archive.strip():
        typed = c.archive.strip()
        q.add("p.id IN (SELECT patient FROM locations WHERE (file >= ? AND file < ?) OR (volume >= ? AND volume < ?))",
              typed, typed + "\U0010ffff", typed, typed + "\U0010ffff")
    q.names_clause()
    return q


PATIENT_COLUMNS = ("id", "key", "path", "patient_id", "mrn", "last_name", "first_name", "middle_name", "birth_date",
                   "gender", "physician", "diagnosis", "last_modified", "archived_at", "keep_until", "status")


def search(catalog: Catalog, criteria: Criteria, *, page: int = 1, per_page: int = 20) -> SearchResult:
    """One page of the patients matching every criterion given, best first, with where each one is."""
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise InputError(f"page must be 1 or more and per page between 1 and {MAX_PER_PAGE}")
    alone = _name_alone(criteria)
    if alone is not None:
        return _search_by_name(catalog, *alone, page=page, per_page=per_page)
    q = _build(catalog, criteria)
    where = " AND ".join(q.where) or "1 = 1"
    counted = catalog.one(f"SELECT COUNT(*) FROM (SELECT 1 FROM patients p WHERE {where} LIMIT {COUNT_LIMIT + 1}) n",
                          q.params)
    total = int(counted[0]) if counted else 0
    rank = " + ".join(q.rank) or "0"
    columns = ", ".join(f"p.{c}" for c in PATIENT_COLUMNS)
    rows = catalog.execute(
        f"SELECT {columns}, {rank} AS relevance FROM {_source(catalog, q, total, page * per_page)} WHERE {where} "
        f"ORDER BY {'relevance, ' if q.rank else ''}p.sort_name, p.id LIMIT ? OFFSET ?",
        [*q.rank_params, *q.params, per_page, (page - 1) * per_page])
    patients = [dict(zip((*PATIENT_COLUMNS, "relevance"), row, strict=True)) for row in rows]
    _attach_locations(catalog, patients)
    for patient in patients:
        del patient["id"]
    return SearchResult(patients, min(total, COUNT_LIMIT), page, per_page, total > COUNT_LIMIT)


def _name_alone(criteria: Criteria) -> tuple[str, str] | None:
    """(term field, compact name) when one name is the only criterion: the commonest search."""
    given = criteria.to_json()
    if len(given) != 1 or not given.keys() & {"last_name", "first_name"}:
        return None
    name, typed = next(iter(given.items()))
    term = folding.compact(typed)
    if not term:
        return None  # the general path gives the error
    return ("last" if name == "last_name" else "first"), term


def _search_by_name(catalog: Catalog, kind: str, term: str, *, page: int, per_page: int) -> SearchResult:
    """One name alone, read in display order: exact matches straight from the (field, term, sort_name) index,
    then prefix matches, then one-typo matches, each tier excluding the patients of the tiers before; the cost
    is the page plus counting (capped), not sorting every patient who shares a common name."""
    fuzzy = _Query(catalog)._fuzzy(kind, term)
    end = folding.prefix_end(term)
    marks = ", ".join("?" * len(fuzzy))
    tiers = [
        ("field = ? AND term = ?", [kind, term], False),
        ("field = ? AND term > ? AND term < ? AND patient NOT IN "
         "(SELECT patient FROM terms WHERE field = ? AND term = ?)", [kind, term, end, kind, term], True),
    ]
    if fuzzy:
        tiers.append((f"field = ? AND term IN ({marks}) AND patient NOT IN "
                      "(SELECT patient FROM terms WHERE field = ? AND term >= ? AND term < ?)",
                      [kind, *fuzzy, kind, term, end], True))
    skip, wanted, total, chosen = (page - 1) * per_page, per_page, 0, []
    for relevance, (condition, params, grouped) in enumerate(tiers):
        distinct = "DISTINCT patient" if grouped else "patient"
        counted = catalog.one(f"SELECT COUNT(*) FROM (SELECT {distinct} FROM terms WHERE {condition} "
                              f"LIMIT {COUNT_LIMIT + 1}) n", params)
        count = int(counted[0]) if counted else 0
        total += count
        if wanted and skip < count:
            merged = _merged_prefix_page(catalog, kind, term, skip, wanted) if relevance == 1 else None
            rows = merged if merged is not None else _tier_page(catalog, condition, params, grouped, skip, wanted)
            chosen.extend((pid, relevance) for pid in rows)
            wanted -= len(rows)
        skip = max(0, skip - count)
    patients = _patients_in_order(catalog, chosen)
    return SearchResult(patients, min(total, COUNT_LIMIT), page, per_page, total > COUNT_LIMIT)


MERGE_TERMS = 64


def _merged_prefix_page(catalog: Catalog, kind: str, term: str, skip: int, wanted: int) -> list[int] | None:
    """The prefix tier's page when the prefix covers few distinct names: each name's patients come in display
    order from the index, so merging their first rows gives the page without sorting every match; None when
    the prefix covers too many names (then one sort is cheaper)."""
    end = folding.prefix_end(term)
    names = [t for (t,) in catalog.execute("SELECT term FROM vocabulary WHERE field = ? AND term > ? AND term < ? "
                                           f"LIMIT {MERGE_TERMS + 1}", (kind, term, end))]
    if len(names) > MERGE_TERMS:
        return None
    limit = skip + wanted
    while True:
        streams = [catalog.execute("SELECT sort_name, patient FROM terms WHERE field = ? AND term = ? "
                                   "ORDER BY sort_name, patient LIMIT ?", (kind, name, limit)) for name in names]
        candidates = list(dict.fromkeys(pid for _, pid in heapq.merge(*streams)))
        exact = _holding(catalog, kind, term, candidates)
        found = [pid for pid in candidates if pid not in exact]
        if len(found) >= skip + wanted or all(len(rows) < limit for rows in streams):
            return found[skip:skip + wanted]
        limit *= 4  # duplicates and exact matches took places: read further


def _holding(catalog: Catalog, kind: str, term: str, patients: list[int]) -> set[int]:
    if not patients:
        return set()
    marks = ", ".join("?" * len(patients))
    return {int(r[0]) for r in catalog.execute(
        f"SELECT patient FROM terms WHERE field = ? AND term = ? AND patient IN ({marks})", (kind, term, *patients))}


def _tier_page(catalog: Catalog, condition: str, params: list, grouped: bool, skip: int, wanted: int) -> list[int]:
    if grouped:  # a patient may match through several terms (DURAND-LEFÈVRE: durand, durandlefevre)
        sql = (f"SELECT patient, MIN(sort_name) AS s FROM terms WHERE {condition} GROUP BY patient "
               "ORDER BY s, patient LIMIT ? OFFSET ?")
    else:
        sql = f"SELECT patient, sort_name FROM terms WHERE {condition} ORDER BY sort_name, patient LIMIT ? OFFSET ?"
    return [int(row[0]) for row in catalog.execute(sql, [*params, wanted, skip])]


def _patients_in_order(catalog: Catalog, chosen: list[tuple[int, int]]) -> list[dict]:
    if not chosen:
        return []
    columns = ", ".join(f"p.{c}" for c in PATIENT_COLUMNS)
    rows = catalog.execute(f"SELECT {columns} FROM patients p WHERE p.id IN ({', '.join('?' * len(chosen))})",
                           [pid for pid, _ in chosen])
    found = {row[0]: dict(zip(PATIENT_COLUMNS, row, strict=True)) for row in rows}
    patients = [{**found[pid], "relevance": relevance} for pid, relevance in chosen if pid in found]
    _attach_locations(catalog, patients)
    for patient in patients:
        del patient["id"]
    return patients


def _source(catalog: Catalog, q: _Query, total: int, wanted: int) -> str:
    """Without a name, every match is as relevant: when matches are so many that walking the patients in name
    order reaches `wanted` of them sooner than sorting them all, tell SQLite to walk (it has no statistics to
    see it; PostgreSQL has and decides itself)."""
    if q.rank or catalog.dialect != "sqlite" or total <= COUNT_LIMIT // 10:
        return "patients p"
    if total > COUNT_LIMIT:  # counting stopped: matches are at least that many, likely far more
        return "patients p INDEXED BY patients_sort"
    size = catalog.one("SELECT MAX(id) FROM patients")
    return "patients p INDEXED BY patients_sort" if total * total > wanted * int(size[0] or 0) else "patients p"


def _attach_locations(catalog: Catalog, patients: list[dict]) -> None:
    """Where each patient is: its archives one by one, its snapshots per store (count, first, last)."""
    if not patients:
        return
    ids = [p["id"] for p in patients]
    rows = catalog.execute(
        f"SELECT patient, store, kind, ref, time, file, volume, damaged FROM locations "
        f"WHERE patient IN ({', '.join('?' * len(ids))}) ORDER BY time", ids)
    by_patient: dict[int, list[dict]] = {i: [] for i in ids}
    snapshots: dict[tuple[int, str], dict] = {}
    for pid, store, kind, ref, when, file, volume, damaged in rows:
        if kind == "snapshot":
            group = snapshots.get((pid, store))
            if group is None:
                group = snapshots[(pid, store)] = {"kind": "snapshots", "store": store, "count": 0, "first": when}
                by_patient[pid].append(group)
            group["count"] += 1
            group["last"], group["latest_snapshot"] = when, ref
        else:
            by_patient[pid].append({"kind": kind, "store": store, "archive": ref, "file": file, "volume": volume,
                                    "time": when, "damaged": bool(damaged)})
    for patient in patients:
        patient["locations"] = by_patient[patient["id"]]
