"""A patient's received DICOM data as the search results and the patient page show it: per patient, how many
studies, series and instances; per study, its series (date, modality, description, plan label, instances,
senders, when received, stores); and the patients of the same MRN kept apart because their birth dates differ.
A user limited to sites sees only the instances of their sites."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from rtvault.catalog import dicom_patients, stores
from rtvault.catalog.db import Catalog
from rtvault.catalog.dicom import Held

_CHUNK = 500


def _sites(sites: Collection[str], column: str = "site") -> tuple[str, list[str]]:
    if not sites:
        return "", []
    return f" AND {column} IN ({', '.join('?' * len(sites))})", sorted(sites)


def counts(catalog: Catalog, patients: Sequence[int], sites: Collection[str] = ()) -> dict[int, dict]:
    """Patient id → {studies, series, instances, last_received} of the patients that have received instances."""
    found: dict[int, dict] = {}
    within, params = _sites(sites)
    ids = sorted(set(patients))
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        rows = catalog.execute(
            "SELECT patient, COUNT(DISTINCT study_uid), COUNT(DISTINCT series_uid), COUNT(DISTINCT sop_instance), "
            f"MAX(received) FROM dicom_instances WHERE patient IN ({', '.join('?' * len(chunk))}){within} "
            "GROUP BY patient", [*chunk, *params])
        for pid, studies, series, instances, last in rows:
            found[int(pid)] = {"studies": int(studies), "series": int(series), "instances": int(instances),
                               "last_received": last}
    return found


def studies(catalog: Catalog, pid: int, shown: Mapping[str, str] | None = None,
            sites: Collection[str] = ()) -> list[dict]:
    """The patient's studies, newest first, each with its series; an instance held by several stores is counted
    once, its stores listed (as `shown` names them)."""
    within, params = _sites(sites)
    rows = catalog.execute(
        "SELECT study_uid, study_date, study_description, series_uid, series_number, series_description, modality, "
        "plan_label, COUNT(DISTINCT sop_instance), MIN(received), MAX(received) FROM dicom_instances "
        f"WHERE patient = ?{within} GROUP BY study_uid, study_date, study_description, series_uid, series_number, "
        "series_description, modality, plan_label", [pid, *params])
    found: dict[str, dict] = {}
    for (study, day, about, series, number, described, modality, plan, instances, first, last) in rows:
        entry = found.setdefault(study, {"study_uid": study, "date": _iso(day), "description": about,
                                         "series": [], "modalities": []})
        entry["series"].append({"series_uid": series, "number": number, "description": described,
                                "modality": modality, "plan_label": plan, "instances": int(instances),
                                "first_received": first, "last_received": last, "senders": [], "stores": []})
    _senders_and_stores(catalog, pid, found, shown or {}, within, params)
    for entry in found.values():
        entry["series"].sort(key=lambda s: (s["number"] is None, s["number"] or 0, s["series_uid"]))
        entry["modalities"] = sorted({s["modality"] for s in entry["series"] if s["modality"]})
    return sorted(found.values(), key=lambda s: (s["date"] or "", s["study_uid"]), reverse=True)


def _senders_and_stores(catalog: Catalog, pid: int, found: dict[str, dict], shown: Mapping[str, str], within: str,
                        params: list[str]) -> None:
    rows = catalog.execute("SELECT DISTINCT study_uid, series_uid, calling_ae, origin, store FROM dicom_instances "
                           f"WHERE patient = ?{within} ORDER BY calling_ae, store", [pid, *params])
    series: dict[tuple[str, str], list[dict]] = {}
    for study, entry in found.items():
        for one in entry["series"]:  # a series described two ways (a resend) is listed twice
            series.setdefault((study, one["series_uid"]), []).append(one)
    for study, uid, sender, origin, store in rows:
        for entry in series.get((study, uid), []):
            for name, value in (("senders", sender or origin), ("stores", stores.label(shown, store))):
                if value not in entry[name]:
                    entry[name].append(value)


def _iso(value: str) -> str:
    return dicom_patients.iso_date(value or "") or ""


def kept_apart(catalog: Catalog, pid: int) -> list[dict]:
    """The patients of the same site and MRN that are not linked to this one because the birth dates differ:
    for a DICOM patient, the Pinnacle patients; for a Pinnacle patient, the DICOM patients."""
    row = catalog.one("SELECT site, mrn_fold, birth_date, status FROM patients WHERE id = ?", (pid,))
    if row is None or not row[1]:
        return []
    site, fold, birth, status = row
    other = "= ?" if status != dicom_patients.STATUS else "<> ?"
    rows = catalog.execute(f"SELECT key, mrn, birth_date, status, last_name, first_name FROM patients WHERE "
                           f"mrn_fold = ? AND site = ? AND id <> ? AND status {other} ORDER BY key",
                           (fold, site, pid, dicom_patients.STATUS))
    return [{"key": key, "mrn": mrn, "birth_date": born, "status": state, "name": f"{last} {first}".strip(),
             "dicom": state == dicom_patients.STATUS} for key, mrn, born, state, last, first in rows
            if born and birth and born != birth]


@dataclass(frozen=True)
class Copies:
    """One received object of a patient (a SOP instance) and where it is: each store's copy, `held` in the order to
    read them (the first received content first, its copies on every store before another content of the same
    instance), with the store id of each."""

    sop_instance: str
    modality: str
    study_uid: str
    series_uid: str
    held: tuple[tuple[str, Held], ...]  # (store id, what that store holds)


def copies(catalog: Catalog, key: str, *, study: str = "", series: str = "", sites: Collection[str] = ()) -> (
        list[Copies] | None):
    """The received objects of the patient `key` names (of this study and series when given; of `sites` only, when
    given), in study, series and instance order, each with every store's copy; None when the catalog has no such
    patient."""
    row = catalog.one("SELECT id FROM patients WHERE key = ?", (key,))
    if row is None:
        return None
    within, params = _sites(sites)
    narrow = "".join(f" AND {column} = ?" for column, value in (("study_uid", study), ("series_uid", series)) if value)
    rows = catalog.execute(
        "SELECT sop_instance, modality, study_uid, series_uid, store, hash, receipt FROM dicom_instances "
        f"WHERE patient = ?{within}{narrow} ORDER BY study_uid, series_uid, instance_number NULLS LAST, sop_instance, "
        "received, id", [row[0], *params, *[value for value in (study, series) if value]])
    found: dict[str, tuple[Copies, list[tuple[str, Held]]]] = {}
    for sop, modality, study_uid, series_uid, store, digest, receipt in rows:
        entry = found.setdefault(sop, (Copies(sop, modality, study_uid, series_uid, ()), []))
        entry[1].append((store, Held(digest, sop, modality, receipt)))
    answer = []
    for entry, held in found.values():
        first = {h.hash: n for n, (_, h) in reversed(list(enumerate(held)))}  # each content's first reception
        ordered = sorted(held, key=lambda item: first[item[1].hash])  # stable: received order within a content
        answer.append(Copies(entry.sop_instance, entry.modality, entry.study_uid, entry.series_uid, tuple(ordered)))
    return answer
