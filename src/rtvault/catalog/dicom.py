"""What the DICOM node received, in the catalog (`dicom_instances`, migration 0023): indexed from the stores'
receipts by every sync, and by the receiver itself as each instance becomes durable (`receipt` = `spool:<id>`
until it is sealed), so that a C-FIND finds an instance as soon as its sender was told it is stored."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rtvault.catalog import dicom_patients
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
            "site", "patient_fold")
_FROM_TAGS = {"sop_class": "SOPClassUID", "sop_instance": "SOPInstanceUID", "transfer_syntax": "TransferSyntaxUID",
              "patient_id": "PatientID", "patient_name": "PatientName", "issuer": "IssuerOfPatientID",
              "birth_date": "PatientBirthDate", "sex": "PatientSex", "study_uid": "StudyInstanceUID",
              "study_date": "StudyDate", "study_time": "StudyTime", "study_description": "StudyDescription",
              "study_id": "StudyID", "accession": "AccessionNumber", "series_uid": "SeriesInstanceUID",
              "series_description": "SeriesDescription", "modality": "Modality", "dose_type": "DoseType"}


def _integer(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _row(store: str, receipt: str, site: str, instance: ReceivedInstance) -> tuple:
    tags = instance.tags
    values: dict[str, object] = {name: str(tags.get(tag, "") or "") for name, tag in _FROM_TAGS.items()}
    plan = tags.get("RTPlanLabel") or tags.get("StructureSetLabel") or ""
    rois = tags.get("ROINames") or []
    values.update(store=store, receipt=receipt, hash=instance.hash, size=instance.size,
                  series_number=_integer(tags.get("SeriesNumber")),
                  instance_number=_integer(tags.get("InstanceNumber")),
                  plan_label=str(plan), roi_names=json.dumps(list(rois), ensure_ascii=False) if rois else "",
                  received=instance.received, calling_ae=instance.calling_ae, origin=instance.origin, site=site,
                  patient_fold=folding.compact(str(values["patient_id"])))
    return tuple(values[c] for c in _COLUMNS)


def add(catalog: Catalog, store: str, receipt: str, site: str, instances: Sequence[ReceivedInstance]) -> None:
    """Index instances of one receipt (or spool) of a store, the store named by its id, each linked to its
    patient at once (so that a search finds it as soon as its sender was answered)."""
    with catalog.transaction():
        add_rows(catalog, store, receipt, site, instances)
        dicom_patients.link(catalog)


def sealed(catalog: Catalog, store: str, receipt: str, time: str) -> None:
    """The spool `receipt` is sealed: its instances are now those of the receipt of that id."""
    with catalog.transaction():
        catalog.execute("UPDATE dicom_instances SET receipt = ? WHERE store = ? AND receipt = ?",
                        (receipt, store, SPOOL_PREFIX + receipt))
        if catalog.one("SELECT 1 FROM indexed WHERE store = ? AND kind = 'receipt' AND ref = ?",
                       (store, receipt)) is None:
            catalog.execute("INSERT INTO indexed (store, kind, ref, time) VALUES (?, 'receipt', ?, ?)",
                            (store, receipt, time))


def known(catalog: Catalog, store: str, digest: str) -> bool:
    """Whether a store already holds the received object of this hash (named by a receipt or a spool)."""
    return catalog.one("SELECT 1 FROM dicom_instances WHERE hash = ? AND store = ? LIMIT 1", (digest, store)) \
        is not None


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
    """`add` inside a transaction the caller holds."""
    marks = ", ".join("?" * len(_COLUMNS))
    for instance in instances:
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
        "ORDER BY study_uid, series_uid, instance_number, received, id",
        (store, *wanted, *wanted, *wanted, *wanted))
    found: dict[str, Held] = {}
    for row in rows:
        found.setdefault(row[1], Held(*row))
    return list(found.values())
