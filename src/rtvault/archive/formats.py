"""An archive's index as types: its members, its patients and the record itself (docs/design.md, "Archives"),
read with `from_json` where they leave the store (`records.load`, `records.summaries`) and written with
`to_json` where they enter it (`records.save`). The summary (`archives/summaries/<id>.json`) is the record
without its members, and without the fields only the full index carries (`summary_json`).

Indexes written by earlier versions lack some fields: a member without `status` reads as "read without error"
(or "lost" when incomplete), an archive without `status` as "read without error" unless damaged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

VERIFIED = "verified"  # covered by a checksum that matched: the gzip CRC-32, or rtvault's own content hashes
READ = "read without error"  # read whole, but nothing checks its data: a plain tar, a gzip cut before its checksum
UNVERIFIED = "unverified (archive checksum failed)"  # read whole from a gzip stream whose checksum did not match
LOST = "lost"  # cut short or unreadable: never restored
DELETED = "deleted"  # origin of the archive of a patient gone from Pinnacle (backup, `archive sweep`)
REQUESTED = "requested"  # origin of an archive made while the patient is still in Pinnacle (`archive now`)
OWN_ORIGINS = (DELETED, REQUESTED)  # archives rtvault wrote from a snapshot: dated by when they were made
IDENTITY_KEYS = ("patient_id", "last_name", "first_name", "middle_name", "mrn", "birth_date", "gender",
                 "radiation_oncologist", "diagnosis", "comment")


def _strings(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    return tuple(str(v) for v in data.get(key) or [])


@dataclass(frozen=True)
class ArchiveMember:
    """One member of the tar: where its data lies in the stored file and what the archive proves about it."""

    name: str  # as the tar header gives it
    kind: str  # file, dir, symlink, hardlink, device, fifo, ...
    size: int = 0
    mode: int = 0o644
    mtime: int = 0
    link: str = ""
    header_offset: int | None = None
    data_offset: int | None = None
    complete: bool = True
    safe_name: str | None = None  # normalised, or None when the name is hostile
    problems: tuple[str, ...] = ()
    status: str | None = None  # VERIFIED, READ, UNVERIFIED or LOST; None in an index older than statuses
    hash: str | None = None

    @property
    def state(self) -> str:
        """Its status; an index written before statuses existed has only `complete`."""
        return self.status or (READ if self.complete else LOST)

    @property
    def place(self) -> str:
        return self.safe_name or self.name

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "kind": self.kind, "size": self.size, "mode": self.mode,
                                "mtime": self.mtime, "link": self.link, "header_offset": self.header_offset,
                                "data_offset": self.data_offset, "complete": self.complete,
                                "safe_name": self.safe_name, "problems": list(self.problems)}
        if self.status is not None:
            data["status"] = self.status
        if self.hash is not None:
            data["hash"] = self.hash
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ArchiveMember:
        return cls(str(data["name"]), str(data["kind"]), int(data.get("size") or 0), int(data.get("mode") or 0),
                   int(data.get("mtime") or 0), str(data.get("link") or ""), data.get("header_offset"),
                   data.get("data_offset"), bool(data.get("complete", True)), data.get("safe_name"),
                   _strings(data, "problems"), data.get("status"), data.get("hash") or None)


@dataclass(frozen=True)
class ArchivedPatient:
    """A patient an archive holds: who (from its Patient file, else the Institution header), what, and what of
    it is lost, unverified or announced but absent."""

    path: str  # Institution_I/Mount_M/Patient_P (or Patient_P)
    prefix: str  # the members' folder of the patient, as the tar names it
    patient_id: int | None = None
    last_name: str = ""
    first_name: str = ""
    middle_name: str = ""
    mrn: str = ""
    birth_date: str | None = None
    gender: str = ""
    radiation_oncologist: str = ""
    diagnosis: str = ""
    comment: str = ""
    plans: tuple[str, ...] = ()
    image_sets: tuple[tuple[str, str], ...] = ()  # (name, modality)
    files: int = 0
    bytes: int = 0
    last_modified: str | None = None
    complete: bool = False
    lost: tuple[str, ...] = ()
    unverified: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    listed_in_header: bool = False
    warnings: tuple[str, ...] = ()
    tree: str | None = None  # an automatic archive: the tree of the snapshot version it holds

    def identity(self) -> dict[str, Any]:
        """Its identity fields (what an Institution file's PatientLite and the catalog are made of)."""
        return {"path": self.path, **{key: getattr(self, key) for key in IDENTITY_KEYS}}

    def not_whole(self) -> list[str]:
        """Each of its files lost, unverified or announced and absent, one line each."""
        return [*(f"{name}: lost" for name in self.lost), *(f"{name}: {UNVERIFIED}" for name in self.unverified),
                *(f"{name}: announced but absent" for name in self.missing)]

    def to_json(self, *, summary: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "path": self.path, "prefix": self.prefix, **{key: getattr(self, key) for key in IDENTITY_KEYS},
            "plans": list(self.plans), "image_sets": [{"name": n, "modality": m} for n, m in self.image_sets],
            "files": self.files, "bytes": self.bytes, "last_modified": self.last_modified,
            "complete": self.complete, "lost": list(self.lost), "unverified": list(self.unverified),
            "missing": list(self.missing), "warnings": list(self.warnings)}
        if not summary:
            data["listed_in_header"] = self.listed_in_header
        if self.tree is not None:
            data["tree"] = self.tree
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ArchivedPatient:
        patient_id = data.get("patient_id")
        images = tuple((str(i.get("name") or ""), str(i.get("modality") or "")) if isinstance(i, Mapping)
                       else (str(i), "") for i in data.get("image_sets") or [])
        plans = tuple(str(p.get("name", "")) if isinstance(p, Mapping) else str(p) for p in data.get("plans") or [])
        return cls(str(data["path"]), str(data.get("prefix") or data["path"]),
                   patient_id if isinstance(patient_id, int) and not isinstance(patient_id, bool) else None,
                   *(str(data.get(key) or "") for key in ("last_name", "first_name", "middle_name", "mrn")),
                   data.get("birth_date") or None,
                   *(str(data.get(key) or "") for key in ("gender", "radiation_oncologist", "diagnosis", "comment")),
                   plans, images, int(data.get("files") or 0), int(data.get("bytes") or 0),
                   data.get("last_modified") or None, bool(data.get("complete", True)), _strings(data, "lost"),
                   _strings(data, "unverified"), _strings(data, "missing"), bool(data.get("listed_in_header", False)),
                   _strings(data, "warnings"), data.get("tree") or None)


@dataclass(frozen=True)
class PhysicsInForce:
    """The physics snapshot in force when a patient version was archived: of one physics source (its site's), the
    newest snapshot at or before the patient's."""

    source: str
    snapshot: str
    time: str

    def to_json(self) -> dict[str, str]:
        return {"source": self.source, "snapshot": self.snapshot, "time": self.time}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PhysicsInForce:
        return cls(str(data.get("source") or ""), str(data.get("snapshot") or ""), str(data.get("time") or ""))


def _physics(value: Any) -> tuple[PhysicsInForce, ...]:
    return tuple(PhysicsInForce.from_json(p) for p in value if isinstance(p, Mapping)) if isinstance(value, list) \
        else ()


@dataclass(frozen=True)
class ArchiveRecord:
    """An archive's index (`archives/<id>.json`), or its summary (`members` empty) when read from
    `archives/summaries/`."""

    id: str  # SHA-256 of the archive file
    file: str  # its name when given or written
    kind: str  # patients, physics or empty
    created: str
    size: int = 0
    compression: str = "none"  # none or gzip
    origin: str = ""  # deleted, requested, inbox, ingest, ...
    source: str = ""
    header: str | None = None  # the member holding the Institution header
    machines: tuple[str, ...] = ()
    patients: tuple[ArchivedPatient, ...] = ()
    missing: tuple[str, ...] = ()  # patients the header lists and the archive lacks
    damaged: bool = False
    status: str | None = None  # VERIFIED, READ or "damaged"; None in an index older than statuses
    problems: tuple[str, ...] = ()
    members: tuple[ArchiveMember, ...] = ()
    format: int | None = None
    integrity: str | None = None
    physics: tuple[PhysicsInForce, ...] = ()  # written only when some: older indexes keep their integrity hash
    source_name: str = ""  # the configured source ([sources.<name>]) of the snapshot an archive was made from
    site: str = ""  # that source's site label; both written only when set (older indexes keep their hash)

    @property
    def state(self) -> str:
        """verified, read without error or damaged (an index older than statuses says no more than "read
        without error" when it was not damaged)."""
        return self.status or ("damaged" if self.damaged else READ)

    def patient(self, path: str) -> ArchivedPatient | None:
        return next((p for p in self.patients if p.path == path), None)

    def not_whole(self) -> list[str]:
        """Every file of its patients lost, unverified or announced and absent, and every patient its header
        lists that it lacks (when damaged), one line each."""
        lines = [f"{path}: listed in the Institution header, absent from the archive"
                 for path in self.missing if self.damaged]
        return lines + [line for patient in self.patients for line in patient.not_whole()]

    def hurt(self) -> bool:
        """Stored damaged or not whole."""
        return self.damaged or bool(self.not_whole())

    def summary_json(self) -> dict[str, Any]:
        """What `archive ingest/list --json` shows of it, and what its summary file holds."""
        return {"id": self.id, "file": self.file, "kind": self.kind, "origin": self.origin, "created": self.created,
                "size": self.size, "compression": self.compression,
                "patients": [p.to_json(summary=True) for p in self.patients], "machines": list(self.machines),
                "damaged": self.damaged, "status": self.state, "missing": list(self.missing),
                "problems": list(self.problems), **self._physics_json(), **self._origin_json()}

    def _origin_json(self) -> dict[str, str]:
        return {key: getattr(self, key) for key in ("source_name", "site") if getattr(self, key)}

    def to_json(self) -> dict[str, Any]:
        data = {"id": self.id, "file": self.file, "compression": self.compression, "origin": self.origin,
                "source": self.source, "size": self.size, "created": self.created, "kind": self.kind,
                "header": self.header, "machines": list(self.machines),
                "patients": [p.to_json() for p in self.patients], "missing": list(self.missing),
                "damaged": self.damaged, "status": self.state, "problems": list(self.problems),
                "members": [m.to_json() for m in self.members], **self._origin_json()}
        for key in ("format", "integrity"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return {**data, **self._physics_json()}

    def _physics_json(self) -> dict[str, Any]:
        return {"physics": [p.to_json() for p in self.physics]} if self.physics else {}

    def without_members(self) -> ArchiveRecord:
        """Its summary, derived from the full index (whose integrity hash is not the summary's)."""
        return replace(self, members=(), integrity=None)

    @classmethod
    def from_json(cls, data: Any) -> ArchiveRecord:
        if not isinstance(data, Mapping) or not isinstance(data.get("id"), str):
            raise ValueError("not an archive index: no id")
        fmt = data.get("format")
        return cls(data["id"], str(data.get("file") or ""), str(data.get("kind") or "patients"),
                   str(data.get("created") or ""), int(data.get("size") or 0), str(data.get("compression") or "none"),
                   str(data.get("origin") or ""), str(data.get("source") or ""), data.get("header"),
                   _strings(data, "machines"),
                   tuple(ArchivedPatient.from_json(p) for p in data.get("patients") or []),
                   _strings(data, "missing"), bool(data.get("damaged", False)), data.get("status") or None,
                   _strings(data, "problems"), tuple(ArchiveMember.from_json(m) for m in data.get("members") or []),
                   fmt if isinstance(fmt, int) else None, data.get("integrity"),
                   _physics(data.get("physics")), str(data.get("source_name") or ""), str(data.get("site") or ""))


@dataclass(frozen=True)
class Stored:
    """An archive stored (ingested, or written from a snapshot); `already`: the store held it before."""

    record: ArchiveRecord
    already: bool = False

    def to_json(self) -> dict[str, Any]:
        return {**self.record.summary_json(), "already": self.already}
