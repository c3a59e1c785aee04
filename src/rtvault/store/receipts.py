"""Receipts: what the DICOM node received and sealed into a store (docs/design.md, "The DICOM node").

`dicom/receipts/<id>.json` names the content objects (`data/...`, each a received DICOM file byte for byte) and
says what each is: who sent it, when, and the attributes the catalog indexes. A receipt is written once, after
every object it names is durable, and carries the integrity hash manifests carry. Receipts are never removed by
retention: only legal destruction removes received instances, and it is the one exception to a receipt being
immutable: `strip` rewrites a receipt without the destroyed instances (removed when none is left), and
`dicom/destroyed/<id>.json` records what the destruction removed (hashes and receipt ids, no names). A seal (the
receiver writing a spool's objects and its receipt) holds `locks/seal.json`, which prune and legal destruction
also take before they read what is referenced: neither deletes an object a seal is writing or has just found
already stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from rtvault.errors import StoreError
from rtvault.store import integrity
from rtvault.store.backend import Backend

RECEIPTS = "dicom/receipts/"
DESTROYED = "dicom/destroyed/"  # the records of legal destructions of received objects (jobs/dicom_destruction.py)
SEAL_LOCK = "locks/seal.json"
FORMAT = "rtvault-dicom-receipt"
VERSION = 1


def receipt_key(ident: str) -> str:
    return f"{RECEIPTS}{ident}.json"


@dataclass(frozen=True)
class ReceivedInstance:
    """One received DICOM file: its content object (`hash`, SHA-256 of its bytes, `size`), when and from whom,
    and `tags`, the attributes indexed (DICOM keywords: SOPClassUID, SOPInstanceUID, TransferSyntaxUID,
    PatientID, PatientName, IssuerOfPatientID, PatientBirthDate, StudyInstanceUID, SeriesInstanceUID, Modality,
    RTPlanLabel, ROINames...)."""

    hash: str
    size: int
    received: str
    calling_ae: str = ""
    called_ae: str = ""
    origin: str = "network"  # "network" (a C-STORE) or "import" (`rtvault dicom import`)
    source: str = ""  # an import's file (the path on its medium)
    tags: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"hash": self.hash, "size": self.size, "received": self.received,
                               "origin": self.origin, "tags": dict(self.tags)}
        for name in ("calling_ae", "called_ae", "source"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReceivedInstance:
        digest, size = data["hash"], data["size"]
        if not isinstance(digest, str) or len(digest) != 64 or not isinstance(size, int):
            raise ValueError(f"not a received instance: {dict(data)!r}")
        tags = data.get("tags") or {}
        if not isinstance(tags, Mapping):
            raise ValueError("'tags' is not an object")
        return cls(digest, size, str(data["received"]), str(data.get("calling_ae", "")),
                   str(data.get("called_ae", "")), str(data.get("origin", "network")), str(data.get("source", "")),
                   dict(tags))


@dataclass(frozen=True)
class Receipt:
    id: str
    time: str
    host: str
    site: str
    instances: tuple[ReceivedInstance, ...]

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "id": self.id, "time": self.time, "host": self.host,
                "site": self.site, "instances": [i.to_json() for i in self.instances]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Receipt:
        if data.get("format") != FORMAT:
            raise ValueError(f"not a receipt (format {data.get('format')!r})")
        if data.get("version") != VERSION:
            raise ValueError(f"receipt version {data.get('version')!r}: written by a newer rtvault")
        instances = data.get("instances")
        if not isinstance(instances, list):
            raise ValueError("'instances' is not a list")
        return cls(str(data["id"]), str(data["time"]), str(data.get("host", "")), str(data.get("site", "")),
                   tuple(ReceivedInstance.from_json(i) for i in instances))


def save(backend: Backend, receipt: Receipt) -> None:
    """Write a receipt, durable; every object it names must already be (the caller's barrier)."""
    document = integrity.seal(receipt.to_json())
    backend.put(receipt_key(receipt.id), json.dumps(document, indent=1, ensure_ascii=True).encode("ascii") + b"\n",
                durable=True)


def load(backend: Backend, ident: str) -> Receipt:
    """A receipt, checked against its integrity hash; StoreError naming it when damaged."""
    key = receipt_key(ident)
    raw = backend.get(key)
    try:
        return Receipt.from_json(integrity.parse(raw))
    except (ValueError, KeyError, TypeError) as error:
        raise StoreError(f"{key} in {backend.location} is damaged: {error}") from None


def ids(backend: Backend) -> list[str]:
    """Every receipt's id, oldest first."""
    return sorted(_stem(key, RECEIPTS) for key in backend.list(RECEIPTS) if key.endswith(".json"))


def _stem(key: str, folder: str) -> str:
    return key.removeprefix("./").removeprefix(folder).removesuffix(".json")


def referenced(backend: Backend) -> tuple[set[str], list[str]]:
    """The content hashes every receipt names, and the receipts that could not be read (a prune stops before
    deleting anything then)."""
    hashes: set[str] = set()
    damaged: list[str] = []
    for ident in ids(backend):
        try:
            hashes.update(i.hash for i in load(backend, ident).instances)
        except StoreError as error:
            damaged.append(str(error))
    return hashes, damaged


def instances(backend: Backend) -> Iterator[tuple[str, ReceivedInstance]]:
    """(receipt id, instance) of every readable receipt; StoreError for a damaged one."""
    for ident in ids(backend):
        for instance in load(backend, ident).instances:
            yield ident, instance


def strip(backend: Backend, ident: str, hashes: set[str]) -> int:
    """Legal destruction: the receipt `ident` rewritten without the instances whose object is one of `hashes`
    (atomically, with a new integrity hash), or removed when none is left; the instances removed (0: the receipt
    is gone or names none of them). StoreError for a damaged receipt (never rewritten blindly)."""
    key = receipt_key(ident)
    if not backend.exists(key):
        return 0
    receipt = load(backend, ident)
    kept = tuple(i for i in receipt.instances if i.hash not in hashes)
    if len(kept) == len(receipt.instances):
        return 0
    if not kept:
        backend.delete(key)
    else:
        document = integrity.seal(Receipt(receipt.id, receipt.time, receipt.host, receipt.site, kept).to_json())
        backend.replace(key, json.dumps(document, indent=1, ensure_ascii=True).encode("ascii") + b"\n")
    return len(receipt.instances) - len(kept)


def destroyed_key(ident: str) -> str:
    return f"{DESTROYED}{ident}.json"


def write_destroyed(backend: Backend, document: Mapping[str, Any]) -> None:
    """The record of a legal destruction of received objects, written once (never rewritten)."""
    key = destroyed_key(str(document["id"]))
    if not backend.exists(key):
        backend.put(key, json.dumps(dict(document), indent=1, ensure_ascii=True).encode("ascii") + b"\n",
                    durable=True)


def destroyed(backend: Backend) -> list[dict[str, Any]]:
    """Every record of a destruction of received objects this store holds (an unreadable one skipped: a store
    still holding its objects is found by the catalog's copy of the decision)."""
    found = []
    for key in sorted(backend.list(DESTROYED)):
        if not key.endswith(".json"):
            continue
        try:
            data = json.loads(backend.get(key))
        except (ValueError, StoreError):
            continue
        if isinstance(data, dict) and isinstance(data.get("objects"), list) and isinstance(data.get("receipts"), list):
            found.append(data)
    return found
