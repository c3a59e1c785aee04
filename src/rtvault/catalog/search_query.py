"""Search criteria turned into SQL: one WHERE clause per criterion, each narrowing through an index, and the
relevance of name criteria (0 exact, 1 prefix, 2 one typo). `rtvault.catalog.search` runs what this builds."""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING

from rtvault.catalog import fold as folding
from rtvault.catalog.db import Catalog
from rtvault.errors import InputError

if TYPE_CHECKING:
    from rtvault.catalog.search import Criteria

COUNT_LIMIT = 1_000
SIDE_CAP = 20_000  # two names: rows of each counted up to this before choosing how to match them together
PROBE_COST = 8  # a lookup of a patient in (patient, field, term), as rows read in order (measured warm at 1M)
STATUSES = ("active", "archived", "deleted", "received")  # received: a DICOM patient (dicom_patients.py)
_GENDER_WORDS = {"m": "male", "male": "male", "h": "male", "homme": "male", "f": "female", "female": "female",
                 "femme": "female", "o": "other", "other": "other", "autre": "other"}
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


def fuzzy(catalog: Catalog, kind: str, term: str) -> list[str]:
    """The names one edit away from `term` that do not begin with it, through their shared deletions."""
    if len(term) < folding.MIN_FUZZY:
        return []
    near = folding.neighbourhood(term)
    marks = ", ".join("?" * len(near))
    rows = catalog.execute(f"SELECT DISTINCT term FROM variants WHERE field = ? AND variant IN ({marks})",
                           (kind, *sorted(near)))
    return sorted(t for (t,) in rows if not t.startswith(term) and folding.within_one_edit(term, t))


class Query:
    """WHERE clauses and their parameters, built criterion by criterion."""

    def __init__(self, catalog: Catalog) -> None:
        self.db = catalog
        self.where: list[str] = []
        self.params: list[object] = []
        self.rank: list[str] = []
        self.rank_params: list[object] = []
        self.names: list[tuple[str, str, str, list[str]]] = []  # (field, term, prefix end, typo matches)
        self.intersected = False  # two names matched by intersecting their term ranges

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
        near_terms = fuzzy(self.db, kind, term)
        end = folding.prefix_end(term)
        self.names.append((kind, term, end, near_terms))
        near = f" OR t.term IN ({', '.join('?' * len(near_terms))})" if near_terms else ""
        self.rank.append("(SELECT MIN(CASE WHEN t.term = ? THEN 0 WHEN t.term >= ? AND t.term < ? THEN 1 ELSE 2 END) "
                         f"FROM terms t WHERE t.patient = p.id AND t.field = ? AND (t.term >= ? AND t.term < ?{near}))")
        self.rank_params.extend([term, term, end, kind, term, end, *near_terms])

    def names_clause(self) -> None:
        """Name criteria are matched together inside the term index, so that the patients table is read only for
        patients matching every name, however many share one of them. Two names: when their rows are of
        comparable numbers both ranges are read in order and intersected; when one is far rarer, its patients
        are each looked up in the other name's terms (a lookup costs about PROBE_COST rows read in order)."""
        if not self.names:
            return
        if len(self.names) == 2:
            sizes = [self._rows(name) for name in self.names]
            small, large = sorted(sizes)
            if large < SIDE_CAP and small + large <= PROBE_COST * small:
                (first, first_params), (second, second_params) = (candidates(name) for name in self.names)
                self.where.insert(0, f"p.id IN (SELECT a.patient FROM ({first}) a INTERSECT "
                                     f"SELECT b.patient FROM ({second}) b)")
                self.params[0:0] = [*first_params, *second_params]
                self.intersected = True
                return
            if sizes[1] < sizes[0]:
                self.names.reverse()  # the rarer name drives; the order of the criteria changes no result
        (kind, term, end, near_terms), others = self.names[0], self.names[1:]
        also, also_params = "", []
        for other_kind, other_term, other_end, other_near in others:
            near = f" OR u.term IN ({', '.join('?' * len(other_near))})" if other_near else ""
            # OFFSET 0: PostgreSQL keeps the lookup per candidate instead of turning it into a join that may scan
            # the other name's whole range for each candidate (its estimate of a name's range knows no names)
            also += (" AND EXISTS (SELECT 1 FROM terms u WHERE u.patient = t.patient AND u.field = ? "
                     f"AND (u.term >= ? AND u.term < ?{near}) LIMIT 1 OFFSET 0)")
            also_params += [other_kind, other_term, other_end, *other_near]
        arms = [(f"SELECT t.patient FROM terms t WHERE t.field = ? AND t.term >= ? AND t.term < ?{also}",
                 [kind, term, end, *also_params])]
        if near_terms:
            marks = ", ".join("?" * len(near_terms))
            arms.append((f"SELECT t.patient FROM terms t WHERE t.field = ? AND t.term IN ({marks}){also}",
                         [kind, *near_terms, *also_params]))
        self.where.insert(0, f"p.id IN ({' UNION '.join(sql for sql, _ in arms)})")
        self.params[0:0] = [value for _, params in arms for value in params]

    def _rows(self, name: tuple[str, str, str, list[str]]) -> int:
        """How many term rows a name criterion matches, counted up to SIDE_CAP (an index range, read in order)."""
        sql, params = candidates(name)
        counted = self.db.one(f"SELECT COUNT(*) FROM ({sql} LIMIT {SIDE_CAP}) n", params)
        return int(counted[0]) if counted else 0

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


def candidates(name: tuple[str, str, str, list[str]], columns: str = "t.patient") -> tuple[str, list]:
    """The term rows of patients matching one name criterion: its prefix range, then its typo matches (one
    index search each: `field = ? AND (range OR list)` would read every term of the field)."""
    kind, term, end, near_terms = name
    sql, params = f"SELECT {columns} FROM terms t WHERE t.field = ? AND t.term >= ? AND t.term < ?", [kind, term, end]
    if near_terms:
        marks = ", ".join("?" * len(near_terms))
        sql += f" UNION ALL SELECT {columns} FROM terms t WHERE t.field = ? AND t.term IN ({marks})"
        params += [kind, *near_terms]
    return sql, params


def build(catalog: Catalog, c: Criteria) -> Query:
    q = Query(catalog)
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
    for column in ("site", "source"):
        if getattr(c, column).strip():
            q.add(f"p.{column} = ?", getattr(c, column).strip())
    q.names_clause()
    return q
