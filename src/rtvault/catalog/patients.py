"""One patient as the catalog knows it (identity, plans, image sets, every version and where it is), and the
list of archives: what the web pages show beyond a search result.

A version is named by `version_id(tree)`, a short hash of its tree reference, and a location by
`store:kind:ref` (`primary:archive:<archive id>`, the store as shown): both stable across `catalog rebuild`
(the stores are the truth), unlike row ids, and safe to put in a URL.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence

from rtvault.catalog import dicom_patients, dicom_studies, stores
from rtvault.catalog import fold as folding
from rtvault.catalog.db import Catalog
from rtvault.catalog.search import PATIENT_COLUMNS

KEY_PATTERN = re.compile(r"[0-9a-f]{16}")
_SHOWN = (*(c for c in PATIENT_COLUMNS if c != "id"), "comment")
_LOCATION_COLUMNS = ("store", "kind", "ref", "time", "file", "volume", "damaged", "site", "source")
_IDENTITY = ("key", "path", "mrn", "last_name", "first_name", "middle_name", "birth_date", "status", "site")


def is_key(text: str) -> bool:
    return KEY_PATTERN.fullmatch(text) is not None


def version_id(tree: str) -> str:
    return hashlib.sha256(tree.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def location_ref(location: dict) -> str:
    """How a request names one location of a version: `store:kind:ref`."""
    return f"{location['store']}:{location['kind']}:{location['ref']}"


def patient_detail(catalog: Catalog, key: str, shown: Mapping[str, str] | None = None,
                   sites: Sequence[str] = ()) -> dict | None:
    """Everything about the patient `key` names, newest version first (each store as `shown` names it, id →
    label: catalog/stores.py `labels`); None when the catalog has no such key. With `sites` (a user limited to
    sites), only the locations of those sites, and the versions they hold: two servers' patients may share a key
    (same path and PatientID, no MRN), and one site's versions are never shown to a user of another."""
    if not is_key(key):
        return None
    row = catalog.one(f"SELECT id, {', '.join(_SHOWN)} FROM patients WHERE key = ?", (key,))
    if row is None:
        return None
    pid, patient = row[0], dict(zip(_SHOWN, row[1:], strict=True))
    patient["plans"] = [r[0] for r in catalog.execute("SELECT name FROM plans WHERE patient = ? ORDER BY name",
                                                      (pid,))]
    patient["image_sets"] = [{"name": name, "modality": modality} for name, modality in catalog.execute(
        "SELECT name, modality FROM image_sets WHERE patient = ? ORDER BY name", (pid,))]
    patient["versions"] = _versions(catalog, pid, shown or {})
    if sites:
        for version in patient["versions"]:
            version["locations"] = [loc for loc in version["locations"] if loc["site"] in sites]
        patient["versions"] = [v for v in patient["versions"] if v["locations"]]
    newest = patient["versions"][0] if patient["versions"] else None
    patient["copies"] = len({loc["store"] for loc in newest["locations"]}) if newest else 0
    patient["dicom"] = {"studies": dicom_studies.studies(catalog, pid, shown, sites),
                        "kept_apart": dicom_studies.kept_apart(catalog, pid)}
    return patient


def patient_site(catalog: Catalog, key: str) -> str | None:
    """The site of the patient `key` names ("" when none is known); None when the catalog has no such key."""
    row = catalog.one("SELECT site FROM patients WHERE key = ?", (key,)) if is_key(key) else None
    return None if row is None else str(row[0])


def _versions(catalog: Catalog, pid: int, shown: Mapping[str, str]) -> list[dict]:
    versions: dict[int, dict] = {}
    for vid, tree, modified, files, size, complete in catalog.execute(
            "SELECT id, tree, last_modified, files, bytes, complete FROM versions WHERE patient = ?", (pid,)):
        versions[vid] = {"version": version_id(tree), "last_modified": modified, "files": files, "bytes": size,
                         "complete": bool(complete), "machines": [], "locations": []}
    for vid, machine in catalog.execute("SELECT version, machine FROM version_machines WHERE patient = ? "
                                        "ORDER BY machine", (pid,)):
        versions[vid]["machines"].append(machine)
    rows = catalog.execute(f"SELECT version, {', '.join(_LOCATION_COLUMNS)} FROM locations WHERE patient = ? "
                           "ORDER BY time DESC, id", (pid,))
    for vid, *values in rows:
        location = dict(zip(_LOCATION_COLUMNS, values, strict=True))
        location["damaged"] = bool(location["damaged"])
        location["store_id"], location["store"] = location["store"], stores.label(shown, location["store"])
        location["location"] = location_ref(location)
        versions[vid]["locations"].append(location)
    for version in versions.values():
        times = [loc["time"] for loc in version["locations"]]
        version["first_seen"], version["last_seen"] = (min(times), max(times)) if times else ("", "")
    return sorted(versions.values(), key=lambda v: (v["last_modified"] or "", v["last_seen"]), reverse=True)


def find_version(patient: dict, wanted: str) -> dict | None:
    """The version of `patient_detail`'s result that `wanted` names; the newest when `wanted` is empty."""
    if not wanted:
        return patient["versions"][0] if patient["versions"] else None
    return next((v for v in patient["versions"] if v["version"] == wanted), None)


def archive_list(catalog: Catalog, *, damaged_only: bool = False,
                 shown: Mapping[str, str] | None = None) -> list[dict]:
    """Every archive indexed, newest first: store (as `shown` names it) and its id, archive id, file, volume,
    date, how many patients, whether damaged."""
    shown = shown or {}
    having = " HAVING MAX(damaged) = 1" if damaged_only else ""
    rows = catalog.execute(
        "SELECT store, ref, file, volume, MIN(time), COUNT(DISTINCT patient), MAX(damaged) FROM locations "
        f"WHERE kind = 'archive' GROUP BY store, ref, file, volume{having} ORDER BY MIN(time) DESC, ref")
    return [{"store": stores.label(shown, store), "store_id": store, "archive": ref, "file": file, "volume": volume,
             "time": when, "patients": int(count),
             "damaged": bool(damaged)} for store, ref, file, volume, when, count, damaged in rows]


def patient_names(catalog: Catalog, keys: list[str]) -> dict[str, str]:
    """`LAST First` of each key still in the catalog (a key no longer catalogued is left out)."""
    wanted = sorted({key for key in keys if is_key(key)})
    if not wanted:
        return {}
    marks = ", ".join("?" * len(wanted))
    rows = catalog.execute(f"SELECT key, last_name, first_name FROM patients WHERE key IN ({marks})", wanted)
    return {key: f"{last or ''} {first or ''}".strip() for key, last, first in rows}


def patients_with_mrn(catalog: Catalog, mrn: str) -> list[dict]:
    """Every Pinnacle patient whose medical record number is `mrn` (case, spaces and punctuation ignored): one,
    or none, or several when the same number names patients at several paths (a DICOM patient has no version to
    restore)."""
    rows = catalog.execute(f"SELECT {', '.join(_IDENTITY)} FROM patients WHERE mrn_fold = ? AND status <> ? "
                           "ORDER BY sort_name, key", (folding.compact(mrn), dicom_patients.STATUS))
    return [dict(zip(_IDENTITY, row, strict=True)) for row in rows]


def patients_named(catalog: Catalog, last_name: str, birth_date: str, first_name: str = "") -> list[dict]:
    """Every patient born on `birth_date` (ISO) whose last name is `last_name`, and, when given, whose first (or
    middle) name is `first_name`, whole or one of its words; accents, case and punctuation ignored. Exact, unlike
    a search: no prefix, no typo (a list names the patients to restore, not a guess). When no last name is the
    whole of `last_name`, those of which it is one word (MARTIN: DUPONT-MARTIN) are returned marked `partial`:
    candidates to show, never a match to restore."""
    rows = catalog.execute(f"SELECT {', '.join(_IDENTITY)} FROM patients WHERE birth_date = ? AND status <> ? "
                           "ORDER BY sort_name, key", (birth_date, dicom_patients.STATUS))
    last, first = folding.compact(last_name), folding.compact(first_name)
    found = [dict(zip(_IDENTITY, row, strict=True)) for row in rows]
    named = [p for p in found if last in folding.name_terms(p["last_name"]) and (
        not first or first in folding.name_terms(p["first_name"]) | folding.name_terms(p["middle_name"])
        | folding.name_terms(f"{p['first_name']} {p['middle_name']}"))]
    whole = [p for p in named if folding.compact(p["last_name"]) == last]
    return whole or [{**p, "partial": True} for p in named]
