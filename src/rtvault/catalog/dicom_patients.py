"""Which catalog patient each received DICOM instance belongs to (design.md, "DICOM patients").

An instance is linked to the Pinnacle patient of its site whose MRN, folded (catalog/fold.py), is its PatientID,
unless both birth dates are known and differ: then it is kept apart and the mismatch is named. IssuerOfPatientID
never prevents a link (Pinnacle records no issuer); it only keeps apart, in patients of their own, the same
PatientID of two issuers. An instance no Pinnacle patient takes belongs to a DICOM patient: a `patients` row
keyed by "dicom" + site + issuer + PatientID, status `received`, source `dicom`, with no version, its identity
from its newest instance. The link is a function of the catalog's Pinnacle patients and the instances alone, so
`catalog rebuild` gives the same links as the syncs did.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable

from rtvault.catalog import fold as folding
from rtvault.catalog.db import Catalog

STATUS = "received"  # a DICOM patient's: no Pinnacle version, only received instances
SOURCE = "dicom"
_CHUNK = 500
_GENDERS = {"M": "male", "F": "female", "O": "other"}


def dicom_key(site: str, issuer: str, patient_id: str) -> str:
    """The catalog key of the DICOM patient of a site, issuer and PatientID: 16 hex digits, as every key."""
    text = f"dicom\0{site}\0{issuer}\0{patient_id}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def iso_date(value: str) -> str | None:
    """A DICOM DA (19570314, or the old 1957.03.14) as ISO 8601; None when empty or not a date."""
    digits = re.sub(r"[.\-]", "", value.strip())
    if not re.fullmatch(r"\d{8}", digits):
        return None
    year, month, day = digits[:4], digits[4:6], digits[6:]
    return f"{year}-{month}-{day}" if "01" <= month <= "12" and "01" <= day <= "31" else None


def person_name(value: str) -> tuple[str, str, str]:
    """(last, first, middle) of a DICOM PN: its alphabetic group, `^` separated."""
    parts = [*value.split("=")[0].split("^"), "", "", ""]
    return parts[0].strip(), parts[1].strip(), parts[2].strip()


def _where(folds: list[str]) -> tuple[str, list[str]]:
    clauses, params = ["patient IS NULL"], []
    for start in range(0, len(folds), _CHUNK):
        chunk = folds[start:start + _CHUNK]
        clauses.append(f"patient_fold IN ({', '.join('?' * len(chunk))})")
        params += chunk
    return " OR ".join(clauses), params


def link(catalog: Catalog, folds: Collection[str] = (), former: Iterable[int] = ()) -> None:
    """Link every instance not linked yet, and every one whose PatientID folds to one of `folds` (the MRNs of
    the Pinnacle patients a sync touched), to its patient; `former`: patients that may have lost instances (a
    DICOM patient left with none goes). Call inside a transaction."""
    where, params = _where(sorted(set(folds) - {""}))
    groups = catalog.execute(f"SELECT DISTINCT site, issuer, patient_id, birth_date FROM dicom_instances "
                             f"WHERE {where}", params)
    old = {int(r[0]) for r in catalog.execute(
        f"SELECT DISTINCT patient FROM dicom_instances WHERE patient IS NOT NULL AND ({where})", params)}
    own = set()
    for site, issuer, patient_id, birth in groups:
        target = _pinnacle_patient(catalog, site, patient_id, iso_date(birth))
        if target is None:
            target = _own_patient(catalog, site, issuer, patient_id)
            own.add(target)
        catalog.execute("UPDATE dicom_instances SET patient = ?, patient_fold = ? WHERE site = ? AND issuer = ? "
                        "AND patient_id = ? AND birth_date = ? AND (patient IS NULL OR patient <> ?)",
                        (target, folding.compact(patient_id), site, issuer, patient_id, birth, target))
    for pid in sorted(own):
        _identity(catalog, pid)
    _drop_empty(catalog, old | set(former))


def _pinnacle_patient(catalog: Catalog, site: str, patient_id: str, birth: str | None) -> int | None:
    """The Pinnacle patient an instance of this site, PatientID and birth date (ISO) belongs to, if any."""
    fold = folding.compact(patient_id)
    if not fold:
        return None
    rows = catalog.execute("SELECT id, key, birth_date, last_modified FROM patients WHERE mrn_fold = ? AND site = ? "
                           "AND status <> ? ORDER BY key", (fold, site, STATUS))
    fitting = [r for r in rows if not birth or not r[2] or r[2] == birth]
    if not fitting:
        return None
    # the one born that day first, then the newest identity, then by key (rows came in key order)
    fitting.sort(key=lambda r: r[3] or "", reverse=True)
    fitting.sort(key=lambda r: r[2] != birth)
    return int(fitting[0][0])


def kept_apart(catalog: Catalog, store: str) -> list[str]:
    """One sentence per DICOM patient with instances in `store` (its id) kept apart from a Pinnacle patient of
    its site and MRN (their birth dates differ): a standing problem, named at every sync until corrected."""
    rows = catalog.execute(
        "SELECT d.mrn, d.site, d.birth_date, p.key, p.birth_date FROM patients d JOIN patients p "
        "ON p.mrn_fold = d.mrn_fold AND p.site = d.site AND p.status <> ? WHERE d.status = ? AND d.mrn_fold <> '' "
        "AND EXISTS (SELECT 1 FROM dicom_instances i WHERE i.patient = d.id AND i.store = ?) ORDER BY d.key, p.key",
        (STATUS, STATUS, store))
    return [f"DICOM PatientID {mrn}{f' of site {site}' if site else ''}, born {born or 'unknown'}, is not linked to "
            f"the Pinnacle patient {key} with that MRN, born {theirs}: correct the birth date at the sender or in "
            "Pinnacle, then run `rtvault catalog sync`" for mrn, site, born, key, theirs in rows]


def _own_patient(catalog: Catalog, site: str, issuer: str, patient_id: str) -> int:
    key = dicom_key(site, issuer, patient_id)
    row = catalog.one("SELECT id FROM patients WHERE key = ?", (key,))
    if row is not None:
        return int(row[0])
    return catalog.insert("INSERT INTO patients (key, path, mrn, mrn_fold, status, site, source) "
                          "VALUES (?, '', ?, ?, ?, ?, ?)",
                          (key, patient_id, folding.compact(patient_id), STATUS, site, SOURCE))


def _identity(catalog: Catalog, pid: int) -> None:
    """A DICOM patient's name, birth date and sex from its newest instance, and its name terms."""
    row = catalog.one("SELECT patient_name, birth_date, sex FROM dicom_instances WHERE patient = ? "
                      "ORDER BY received DESC, id DESC LIMIT 1", (pid,))
    if row is None:
        return
    last, first, middle = person_name(str(row[0]))
    birth = iso_date(str(row[1]))
    sort_name = f"{folding.compact(last)} {folding.compact(first)}"
    catalog.execute("UPDATE patients SET last_name = ?, first_name = ?, middle_name = ?, birth_date = ?, "
                    "birth_year = ?, gender = ?, sort_name = ? WHERE id = ?",
                    (last, first, middle, birth, int(birth[:4]) if birth else None,
                     _GENDERS.get(str(row[2]).strip().upper()[:1], ""), sort_name, pid))
    catalog.execute("DELETE FROM terms WHERE patient = ?", (pid,))
    terms = {("last", t) for t in folding.name_terms(last)}
    terms |= {("first", t) for t in folding.name_terms(f"{first} {middle}".strip()) | folding.name_terms(first)}
    write_terms(catalog, pid, sorted(terms), sort_name)


def write_terms(catalog: Catalog, pid: int, terms: list[tuple[str, str]], sort_name: str,
                vocabulary: set[tuple[str, str]] | None = None) -> None:
    """A patient's searchable words, with the distinct ones and their typo neighbourhood (`vocabulary`: those
    known to be there already, a sync's cache, updated)."""
    catalog.many("INSERT INTO terms (field, term, patient, sort_name) VALUES (?, ?, ?, ?)",
                 [(f, t, pid, sort_name) for f, t in terms])
    new = [(f, t) for f, t in terms if vocabulary is None or (f, t) not in vocabulary]
    if vocabulary is not None:
        vocabulary.update(new)
    catalog.many("INSERT INTO vocabulary (field, term) VALUES (?, ?) ON CONFLICT DO NOTHING", new)
    catalog.many("INSERT INTO variants (field, variant, term) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                 [(f, v, t) for f, t in new if f in ("last", "first") for v in folding.neighbourhood(t)])


def _drop_empty(catalog: Catalog, patients: Iterable[int]) -> None:
    """The DICOM patients of `patients` left without any instance go (a Pinnacle patient has versions)."""
    for pid in sorted(patients):
        if catalog.one("SELECT 1 FROM patients WHERE id = ? AND status = ? AND NOT EXISTS "
                       "(SELECT 1 FROM dicom_instances WHERE patient = ?)", (pid, STATUS, pid)) is not None:
            catalog.execute("DELETE FROM terms WHERE patient = ?", (pid,))
            catalog.execute("DELETE FROM patients WHERE id = ?", (pid,))


def unlink(catalog: Catalog, pid: int) -> None:
    """A Pinnacle patient leaves the catalog: its instances wait for `link` (a DICOM patient of their own)."""
    catalog.execute("UPDATE dicom_instances SET patient = NULL WHERE patient = ?", (pid,))
