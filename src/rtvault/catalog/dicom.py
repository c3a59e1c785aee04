"""What the DICOM node received, in the catalog (`dicom_instances`, migration 0023): indexed from the stores'
receipts by every sync, and by the receiver itself as each instance becomes durable (`receipt` = `spool:<id>`
until it is sealed), so that a C-FIND finds an instance as soon as its sender was told it is stored."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rtvault.catalog import destructions, dicom_patients
from rtvault.catalog import fold as folding
from rtvault.catalog.db import Catalog
from rtvault.errors import StoreError
from rtvault.store import Store
from rtvault.store import receipts as receipts_store
from rtvault.store.receipts import ReceivedInstance

SPOOL_PREFIX = "spool:"

_COLUMNS = ("store", "receipt", "hash", "size", "sop_class", "sop_instance", "transfer_syntax", "patient_id",
            "patient_name", "issuer", "birth_date", "sex", "study_uid", "study_date", "study_time",
            "study_description", "study_id", "accession", "series_uid", "series_number", "series_description",
            "modality", "instance_number", "plan_label", "roi_names", "dose_type", "received", "calling_ae", "origin",
            "site", "patient_fold", "name_fold")
_FROM_TAGS = {"sop_class": "SOPClassUID", "sop_instance": "SOPInstanceUID", "transfer_syntax": "TransferSyntaxUID",
              "patient_id": "PatientID", "patient_name": "PatientName", "issuer": "IssuerOfPatientID",
              "birth_date": "PatientBirthDate", "sex": "PatientSex", "study_uid": "StudyInstanceUID",
              "study_date": "StudyDate", "study_time": "StudyTime", "study_description": "StudyDescription",
              "study_id": "StudyID", "accession": "AccessionNumber", "series_uid": "SeriesInstanceUID",
              "series_description": "SeriesDescription", "modality": "Modality", "dose_type": "DoseType"}


_IS = range(-2 ** 31, 2 ** 31)  # an Integer String's values (PS3.5 6.2): what an INTEGER column holds on both


def _integer(value: object) -> int | None:
    """An IS value as a number; None when empty, not a number, or beyond the VR's range (a hostile value)."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number in _IS else None


def _text(value: object) -> str:
    """A tag's value as the catalog's text: no NUL (PostgreSQL's text holds none; a hostile peer may send one) and
    no lone surrogate (neither database stores one; a receipt's JSON may carry it); several values (a backslash in
    a PatientID, which pydicom splits) joined back with the backslash they were sent with, as a C-FIND
    identifier's are, never a Python list's text."""
    if isinstance(value, list | tuple):
        value = "\\".join(str(v) for v in value)
    return str(value or "").replace("\0", "").encode("utf-8", "replace").decode("utf-8")


_OLD_DATE = re.compile(r"(\d{4})\.(\d{2})\.(\d{2})")  # ACR-NEMA's YYYY.MM.DD, still on old media (PS3.5 6.2 DA)


def _date(value: str) -> str:
    """A DA value as the catalog keeps it, YYYYMMDD, so that ranges compare dates: an old-format
    `1960.02.02` becomes `19600202`; anything else is kept as sent (stripped of the padding space)."""
    value = value.strip()
    return "".join(old.groups()) if (old := _OLD_DATE.fullmatch(value)) else value


def _row(store: str, receipt: str, site: str, instance: ReceivedInstance) -> tuple:
    tags = instance.tags
    values: dict[str, object] = {name: _text(tags.get(tag)) for name, tag in _FROM_TAGS.items()}
    values.update({name: _date(str(values[name])) for name in ("birth_date", "study_date")})
    plan = _text(tags.get("RTPlanLabel") or tags.get("StructureSetLabel"))
    rois = tags.get("ROINames") or []
    values.update(store=store, receipt=receipt, hash=instance.hash, size=instance.size,
                  series_number=_integer(tags.get("SeriesNumber")),
                  instance_number=_integer(tags.get("InstanceNumber")),
                  plan_label=plan, roi_names=_text(json.dumps(list(rois), ensure_ascii=False)) if rois else "",
                  received=instance.received, calling_ae=_text(instance.calling_ae), origin=instance.origin, site=site,
                  patient_fold=folding.compact(str(values["patient_id"])),
                  name_fold=str(values["patient_name"]).lower())
    return tuple(values[c] for c in _COLUMNS)


def add(catalog: Catalog, store: str, receipt: str, site: str, instances: Sequence[ReceivedInstance]) -> None:
    """Index instances of one receipt (or spool) of a store, the store named by its id, each linked to its
    patient at once (so that a search finds it as soon as its sender was answered)."""
    with catalog.transaction():
        add_rows(catalog, store, receipt, site, instances)
        dicom_patients.link(catalog)


def sealed(catalog: Catalog, store: str, receipt: receipts_store.Receipt, site: str) -> None:
    """The spool of `receipt`'s id is sealed: its instances are now those of the receipt. When the spool's rows are
    not all there (the catalog refused some as they came, or a receiver was killed before indexing what it had
    made durable), the receipt's instances replace them: a receipt marked indexed is never indexed again by sync.
    A spool none of whose records could be read gives no receipt (`receipt` without instances): its rows go, so
    that no object is taken for held (and a sender's new copy for a duplicate) that the store does not hold."""
    spool = SPOOL_PREFIX + receipt.id
    with catalog.transaction():
        spooled = catalog.one("SELECT COUNT(*) FROM dicom_instances WHERE store = ? AND receipt = ?",
                              (store, spool))
        if spooled is not None and spooled[0] == len(receipt.instances):
            catalog.execute("UPDATE dicom_instances SET receipt = ? WHERE store = ? AND receipt = ?",
                            (receipt.id, store, spool))
        else:
            former = {int(r[0]) for r in catalog.execute("SELECT DISTINCT patient FROM dicom_instances WHERE store = ? "
                                                         "AND receipt IN (?, ?) AND patient IS NOT NULL",
                                                         (store, spool, receipt.id))}
            catalog.execute("DELETE FROM dicom_instances WHERE store = ? AND receipt IN (?, ?)",
                            (store, spool, receipt.id))
            add_rows(catalog, store, receipt.id, receipt.site or site, receipt.instances)
            dicom_patients.link(catalog, former=former)
        if receipt.instances and catalog.one("SELECT 1 FROM indexed WHERE store = ? AND kind = 'receipt' AND ref = ?",
                                             (store, receipt.id)) is None:
            catalog.execute("INSERT INTO indexed (store, kind, ref, time) VALUES (?, 'receipt', ?, ?)",
                            (store, receipt.id, receipt.time))


def known(catalog: Catalog, store: str, digest: str) -> bool:
    """Whether a store already holds the received object of this hash (named by a receipt or a spool)."""
    return catalog.one("SELECT 1 FROM dicom_instances WHERE hash = ? AND store = ? LIMIT 1", (digest, store)) \
        is not None


def newest(catalog: Catalog, store: str, sop_instance: str) -> str | None:
    """The hash of the newest received version of a SOP instance in a store (what C-FIND, C-MOVE and C-GET
    answer), None when the store holds none."""
    row = catalog.one("SELECT hash FROM dicom_instances WHERE sop_instance = ? AND store = ? "
                      "ORDER BY received DESC, id DESC LIMIT 1", (sop_instance, store))
    return None if row is None else str(row[0])


def sync_store(catalog: Catalog, store_id: str, store: Store, site: str) -> tuple[int, list[str]]:
    """Receipts new to the catalog indexed and linked to their patients, vanished ones (legal destruction) dropped:
    (instances added, problems). Call inside the sync's transaction."""
    found = set(receipts_store.ids(store.backend))
    old = {r[0] for r in catalog.execute("SELECT ref FROM indexed WHERE store = ? AND kind = 'receipt'", (store_id,))}
    former = set()
    for gone in sorted(old - found):
        former |= {int(r[0]) for r in catalog.execute("SELECT DISTINCT patient FROM dicom_instances WHERE store = ? "
                                                      "AND receipt = ? AND patient IS NOT NULL", (store_id, gone))}
        catalog.execute("DELETE FROM dicom_instances WHERE store = ? AND receipt = ?", (store_id, gone))
        catalog.execute("DELETE FROM indexed WHERE store = ? AND kind = 'receipt' AND ref = ?", (store_id, gone))
    added, problems = 0, []
    for ident in sorted(found - old):
        try:
            receipt = receipts_store.load(store.backend, ident)
        except StoreError as error:
            problems.append(str(error))
            continue
        # the receiver indexed them already as its spool: the receipt takes their place
        former |= {int(r[0]) for r in catalog.execute("SELECT DISTINCT patient FROM dicom_instances WHERE store = ? "
                                                      "AND receipt = ? AND patient IS NOT NULL",
                                                      (store_id, SPOOL_PREFIX + ident))}
        catalog.execute("DELETE FROM dicom_instances WHERE store = ? AND receipt = ?",
                        (store_id, SPOOL_PREFIX + ident))
        add_rows(catalog, store_id, ident, receipt.site or site, receipt.instances)
        catalog.execute("INSERT INTO indexed (store, kind, ref, time) VALUES (?, 'receipt', ?, ?)",
                        (store_id, ident, receipt.time))
        added += len(receipt.instances)
    dicom_patients.link(catalog, former=former)
    return added, problems


def add_rows(catalog: Catalog, store: str, receipt: str, site: str, instances: Iterable[ReceivedInstance]) -> None:
    """`add` inside a transaction the caller holds. An instance a legal destruction removed (its receipt and
    object) is never indexed again."""
    marks = ", ".join("?" * len(_COLUMNS))
    gone = destructions.received_destroyed(catalog, receipt.removeprefix(SPOOL_PREFIX))
    for instance in instances:
        if instance.hash in gone:
            continue
        catalog.execute(f"INSERT INTO dicom_instances ({', '.join(_COLUMNS)}) VALUES ({marks})",
                        _row(store, receipt, site, instance))


@dataclass(frozen=True)
class Held:
    """A received object a store holds: its content object, SOP instance and modality, and its receipt (`spool:<id>`
    while the node has not sealed it yet)."""

    hash: str
    sop_instance: str
    modality: str
    receipt: str


def of_patients(catalog: Catalog, store: str, patient_ids: Sequence[str]) -> list[Held]:
    """The received objects of the patients of these DICOM PatientIDs (or catalog keys, MRNs, Pinnacle PatientIDs,
    through the link to the catalog patient) that a store holds, one per SOP instance (the first received), in
    study, series and instance order."""
    wanted = [p for p in dict.fromkeys(patient_ids) if p]
    if not wanted:
        return []
    marks = ", ".join("?" * len(wanted))
    # by the PatientID it was sent with, and by the catalog patient it is linked to (its MRN may be written
    # otherwise: the link folds case, spaces and punctuation)
    rows = catalog.execute(
        "SELECT hash, sop_instance, modality, receipt FROM dicom_instances "
        f"WHERE store = ? AND (patient_id IN ({marks}) OR patient IN (SELECT id FROM patients WHERE key IN ({marks}) "
        f"OR mrn IN ({marks}) OR patient_id IN ({marks}))) "
        "ORDER BY study_uid, series_uid, instance_number NULLS LAST, received, id",
        (store, *wanted, *wanted, *wanted, *wanted))
    found: dict[str, Held] = {}
    for row in rows:
        found.setdefault(row[1], Held(*row))
    return list(found.values())


# --- Query/Retrieve (C-FIND, C-MOVE, C-GET) -------------------------------------------------------------------

LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
# the unique key of each level: what one answer stands for
_UNIQUE = {"PATIENT": "patient_id", "STUDY": "study_uid", "SERIES": "series_uid", "IMAGE": "sop_instance"}
# attributes answered, by the level they belong to: keyword → column
_ATTRIBUTES = {
    "PATIENT": {"PatientID": "patient_id", "PatientName": "patient_name", "IssuerOfPatientID": "issuer",
                "PatientBirthDate": "birth_date", "PatientSex": "sex"},
    "STUDY": {"StudyInstanceUID": "study_uid", "StudyDate": "study_date", "StudyTime": "study_time",
              "StudyDescription": "study_description", "StudyID": "study_id", "AccessionNumber": "accession"},
    "SERIES": {"SeriesInstanceUID": "series_uid", "Modality": "modality", "SeriesNumber": "series_number",
               "SeriesDescription": "series_description"},
    "IMAGE": {"SOPInstanceUID": "sop_instance", "SOPClassUID": "sop_class", "InstanceNumber": "instance_number",
              "RTPlanLabel": "plan_label"},
}
_MATCHABLE = {keyword: column for attributes in _ATTRIBUTES.values() for keyword, column in attributes.items()}
_LISTS = {"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"}  # UID list matching
MAX_LIST = 1000  # UIDs of one list-matching key (a hostile identifier is refused, not sent to SQL)
_RANGES = {"StudyDate", "StudyTime", "PatientBirthDate"}
_NUMBERS = {"SeriesNumber", "InstanceNumber"}
# newest received of the rows that share a SOP Instance UID (one answer per instance)
_LATEST = ("NOT EXISTS (SELECT 1 FROM dicom_instances n WHERE n.sop_instance = d.sop_instance AND n.store = d.store "
           "AND (n.received > d.received OR (n.received = d.received AND n.id > d.id)))")


@dataclass(frozen=True)
class Retrievable:
    """One received instance a C-MOVE or C-GET sends: where its bytes are and what the association offers."""

    hash: str
    sop_class: str
    sop_instance: str
    transfer_syntax: str


def _like(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _conditions(keys: Mapping[str, str]) -> tuple[list[str], list[object]]:
    """SQL conditions for the matching keys of a C-FIND identifier (PS3.4 C.2.2.2): an empty value matches all;
    UIDs by list; dates and times by range; * and ? as wildcards; other values exactly (names without case)."""
    clauses: list[str] = []
    params: list[object] = []
    for keyword, raw in keys.items():
        column = _MATCHABLE.get(keyword)
        value = (raw or "").strip()
        if column is None or value in ("", "*"):
            continue
        if keyword in _LISTS:
            uids = [uid.strip() for uid in value.split("\\") if uid.strip()]
            if len(uids) > MAX_LIST:
                raise ValueError(f"{keyword} lists {len(uids)} UIDs: at most {MAX_LIST} are matched at once")
            clauses.append(f"d.{column} IN ({', '.join('?' * len(uids))})")
            params.extend(uids)
        elif keyword in _RANGES and "-" in value:
            low, high = (part.strip() for part in value.split("-", 1))
            if low:
                clauses.append(f"d.{column} >= ?")
                params.append(low)
            if high:
                clauses.append(f"d.{column} <> '' AND d.{column} <= ?")
                params.append(high + ("\uffff" if keyword == "StudyTime" else ""))
        elif keyword in _NUMBERS:
            number = _integer(value)
            clauses.append(f"d.{column} = ?" if number is not None else "1 = 0")
            params.extend([number] if number is not None else [])
        else:  # names without case: against the name folded when indexed, every letter (SQL's LOWER is ASCII)
            target, value = ("d.name_fold", value.lower()) if keyword == "PatientName" else (f"d.{column}", value)
            wildcard = "*" in value or "?" in value
            clauses.append(f"{target} LIKE ? ESCAPE '\\'" if wildcard else f"{target} = ?")
            params.append(_like(value) if wildcard else value)
    return clauses, params


def find(catalog: Catalog, level: str, keys: Mapping[str, str], *, store: str | None = None,
         limit: int = 10_000) -> list[dict[str, object]]:
    """The answers of a C-FIND at `level` (PATIENT, STUDY, SERIES, IMAGE) whose identifier holds `keys`
    (keyword → value as sent): one per distinct patient, study, series or SOP instance (of one store when
    given), each with the attributes of its level and those above it, and the counts of what lies below."""
    if level not in LEVELS:
        raise ValueError(f"unknown query level {level!r}")
    depth = LEVELS.index(level)
    unique = _UNIQUE[level]
    clauses, params = _conditions(keys)
    clauses.insert(0, _LATEST)
    if store is not None:
        clauses.insert(0, "d.store = ?")
        params.insert(0, store)
    shown = {keyword: column for lvl in LEVELS[:depth + 1] for keyword, column in _ATTRIBUTES[lvl].items()}
    columns = [f"MAX(d.{column})" for column in shown.values()]
    counts = ["COUNT(DISTINCT d.study_uid)", "COUNT(DISTINCT d.series_uid)", "COUNT(*)"]
    rows = catalog.execute(
        f"SELECT d.{unique}, {', '.join(columns + counts)} FROM dicom_instances d WHERE {' AND '.join(clauses)} "
        f"GROUP BY d.{unique} ORDER BY d.{unique} LIMIT ?", [*params, limit])
    modalities: dict[str, set[str]] = {}
    if depth <= 1 and rows:  # ModalitiesInStudy (and of a patient): the distinct modalities below
        for key, modality in catalog.execute(
                f"SELECT DISTINCT d.{unique}, d.modality FROM dicom_instances d WHERE {' AND '.join(clauses)}",
                params):
            if modality:
                modalities.setdefault(key, set()).add(modality)
    answers = []
    for row in rows:
        answer: dict[str, object] = {"QueryRetrieveLevel": level}
        for keyword, value in zip(shown, row[1:1 + len(shown)], strict=True):
            answer[keyword] = "" if value is None else value
        studies, series, instances = row[1 + len(shown):]
        if depth == 0:
            answer.update(NumberOfPatientRelatedStudies=studies, NumberOfPatientRelatedSeries=series,
                          NumberOfPatientRelatedInstances=instances)
        if depth == 1:
            answer.update(NumberOfStudyRelatedSeries=series, NumberOfStudyRelatedInstances=instances)
        if depth <= 1:
            answer["ModalitiesInStudy"] = sorted(modalities.get(row[0], ()))
        if depth == 2:
            answer["NumberOfSeriesRelatedInstances"] = instances
        answers.append(answer)
    return answers


def held(catalog: Catalog, level: str, keys: Mapping[str, str], *,
         store: str | None = None) -> list[Retrievable]:
    """The instances a C-MOVE or C-GET at `level` with these keys retrieves (one per SOP instance, the newest
    received), in study, series and instance order."""
    if level not in LEVELS:
        raise ValueError(f"unknown query level {level!r}")
    clauses, params = _conditions(keys)
    clauses.insert(0, _LATEST)
    if store is not None:
        clauses.insert(0, "d.store = ?")
        params.insert(0, store)
    rows = catalog.execute(
        "SELECT d.hash, d.sop_class, d.sop_instance, d.transfer_syntax FROM dicom_instances d "
        f"WHERE {' AND '.join(clauses)} ORDER BY d.study_uid, d.series_uid, d.instance_number NULLS LAST, "
        "d.sop_instance",
        params)
    return [Retrievable(*row) for row in rows]
