"""Multi-criteria patient search over the catalog, shared by `rtvault search` and the web UI.

Names are matched folded (accents, case and punctuation ignored), by prefix, and within one typo. Every
criterion narrows the result through an index (`search_query` builds the SQL); results are sorted by relevance
(exact name, then prefix, then typo), then by name, and paginated: the page's patient ids are chosen first,
then only their rows and locations are read. Counting stops at COUNT_LIMIT so that a vague query costs no more
on a million patients than on ten thousand. A name typed alone is answered by `search_names`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field, fields

from rtvault.catalog import dicom_studies, stores
from rtvault.catalog.db import Catalog
from rtvault.catalog.search_names import name_alone, page_by_name, page_by_two_names
from rtvault.catalog.search_query import COUNT_LIMIT, Query, build
from rtvault.errors import InputError

MAX_PER_PAGE = 200


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
    status: str = _criterion("Status", "Statut", "active, archived, deleted or received (DICOM only)")
    modified_after: str = _criterion("Modified after", "Modifié après", "date, inclusive")
    modified_before: str = _criterion("Modified before", "Modifié avant", "date, inclusive")
    archived_after: str = _criterion("Archived after", "Archivé après", "date, inclusive")
    archived_before: str = _criterion("Archived before", "Archivé avant", "date, inclusive")
    archive: str = _criterion("Archive file or volume", "Fichier d'archive ou volume", "name, prefix")
    site: str = _criterion("Site", "Site", "the site the patient's source is of, exact")
    source: str = _criterion("Source", "Source", "the configured source ([sources.NAME]), exact")

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


PATIENT_COLUMNS = ("id", "key", "path", "patient_id", "mrn", "last_name", "first_name", "middle_name", "birth_date",
                   "gender", "physician", "diagnosis", "last_modified", "archived_at", "keep_until", "status", "site",
                   "source")


def search(catalog: Catalog, criteria: Criteria, *, page: int = 1, per_page: int = 20,
           shown: Mapping[str, str] | None = None, sites: Collection[str] = ()) -> SearchResult:
    """One page of the patients matching every criterion given, best first, with where each one is (each store
    as `shown` names it, id → label: catalog/stores.py `labels`; without it, by its id); `sites`: only the
    patients of these sites (a user limited to sites), none: every site."""
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise InputError(f"page must be 1 or more and per page between 1 and {MAX_PER_PAGE}")
    skip = (page - 1) * per_page
    alone = None if sites else name_alone(criteria.to_json())
    if alone is not None:
        chosen, total = page_by_name(catalog, *alone, skip, per_page)
    else:
        query = build(catalog, criteria)
        if sites:
            query.add(f"p.site IN ({', '.join('?' * len(sites))})", *sorted(sites))
        chosen, total = _page(catalog, query, skip, per_page)
    shown = shown or {}
    return SearchResult(_patients_in_order(catalog, chosen, shown, sites), min(total, COUNT_LIMIT), page, per_page,
                        total > COUNT_LIMIT)


def _page(catalog: Catalog, q: Query, skip: int, wanted: int) -> tuple[list[tuple[int, int]], int]:
    """The page's patient ids with their relevance, and the count (capped): ids alone are sorted, so that an
    index holding the criteria and the name order answers without reading the patients table."""
    if q.intersected and len(q.where) == 1:  # two names, nothing else
        return page_by_two_names(catalog, q.names, skip, wanted)
    where = " AND ".join(q.where) or "1 = 1"
    if q.rank:  # ranking by name reads every match anyway: the count comes from the same pass
        rows = catalog.execute(f"SELECT p.id, {' + '.join(q.rank)} AS relevance FROM patients p WHERE {where} "
                               "ORDER BY relevance, p.sort_name, p.id LIMIT ?",
                               [*q.rank_params, *q.params, max(skip + wanted, COUNT_LIMIT + 1)])
        return [(row[0], row[1]) for row in rows[skip:skip + wanted]], len(rows)
    total = _count(catalog, where, q.params, COUNT_LIMIT + 1)
    source = _source(catalog, where, q.params, total, skip + wanted)
    rows = catalog.execute(f"SELECT p.id, 0 AS relevance FROM {source} WHERE {where} ORDER BY p.sort_name, p.id "
                           "LIMIT ? OFFSET ?", [*q.params, wanted, skip])
    return [(row[0], row[1]) for row in rows], total


def _count(catalog: Catalog, where: str, params: list[object], limit: int) -> int:
    counted = catalog.one(f"SELECT COUNT(*) FROM (SELECT 1 FROM patients p WHERE {where} LIMIT {limit}) n", params)
    return int(counted[0]) if counted else 0


def _source(catalog: Catalog, where: str, params: list[object], total: int, wanted: int) -> str:
    """Without a name every match is as relevant. Sorting the matches costs their number M; walking the
    patients in name order until `wanted` of them match costs about wanted × N / M: when M² > wanted × N, tell
    SQLite to walk (it has no statistics to see it; PostgreSQL has and decides itself). When counting stopped
    at the limit, it goes on up to that break-even point: a thousand matches sorted from an index are cheap,
    a walk past a million patients to find twenty of them is not."""
    if catalog.dialect != "sqlite" or total <= COUNT_LIMIT // 10:
        return "patients p"
    size = catalog.one("SELECT MAX(id) FROM patients")
    patients = int(size[0] or 0) if size else 0
    if total > COUNT_LIMIT:
        total = _count(catalog, where, params, math.isqrt(wanted * patients) + 1)
    return "patients p INDEXED BY patients_sort" if total * total > wanted * patients else "patients p"


def _patients_in_order(catalog: Catalog, chosen: list[tuple[int, int]], shown: Mapping[str, str],
                       sites: Collection[str] = ()) -> list[dict]:
    if not chosen:
        return []
    columns = ", ".join(f"p.{c}" for c in PATIENT_COLUMNS)
    rows = catalog.execute(f"SELECT {columns} FROM patients p WHERE p.id IN ({', '.join('?' * len(chosen))})",
                           [pid for pid, _ in chosen])
    found = {row[0]: dict(zip(PATIENT_COLUMNS, row, strict=True)) for row in rows}
    patients = [{**found[pid], "relevance": relevance} for pid, relevance in chosen if pid in found]
    _attach_locations(catalog, patients, shown, sites)
    for patient in patients:
        del patient["id"]
    return patients


def _attach_locations(catalog: Catalog, patients: list[dict], shown: Mapping[str, str],
                      sites: Collection[str] = ()) -> None:
    """Where each patient is: its archives one by one, its snapshots per store (count, first, last); `store` is
    the store as shown, `store_id` its id; `dicom`: its received studies, series and instances (of `sites` only
    when given), None when it has none."""
    if not patients:
        return
    ids = [p["id"] for p in patients]
    rows = catalog.execute(
        f"SELECT patient, store, kind, ref, time, file, volume, damaged, site, source FROM locations "
        f"WHERE patient IN ({', '.join('?' * len(ids))}) ORDER BY time", ids)
    by_patient: dict[int, list[dict]] = {i: [] for i in ids}
    snapshots: dict[tuple[int, str], dict] = {}
    for pid, store, kind, ref, when, file, volume, damaged, site, source in rows:
        if kind == "snapshot":
            group = snapshots.get((pid, store))
            if group is None:
                group = snapshots[(pid, store)] = {"kind": "snapshots", "store": stores.label(shown, store),
                                                   "store_id": store, "count": 0, "first": when}
                by_patient[pid].append(group)
            group["count"] += 1
            group["last"], group["latest_snapshot"], group["site"], group["source"] = when, ref, site, source
        else:
            by_patient[pid].append({"kind": kind, "store": stores.label(shown, store), "store_id": store,
                                    "archive": ref, "file": file, "volume": volume, "time": when,
                                    "damaged": bool(damaged), "site": site, "source": source})
    received = dicom_studies.counts(catalog, ids, sites)
    for patient in patients:
        patient["locations"] = by_patient[patient["id"]]
        patient["dicom"] = received.get(patient["id"])
