"""The store's documents as types: a tree (its file, directory and unreadable entries, and the patient's record)
and a snapshot manifest (its patient entries), read with `from_json` where they leave the store and written with
`to_json` where they enter it (docs/design.md, "Tree" and "Snapshot manifest"). Every other layer handles these
types, never the JSON. `to_json` writes exactly the shape earlier versions wrote (keys absent rather than empty,
as the format says), so that a tree's hash, its name, stays the same for the same content.

A stored document that does not fit its type raises ValueError here; the store turns it into "damaged".
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rtvault.config.settings import LEGACY_SOURCE, PATIENTS_KIND
from rtvault.errors import Problem
from rtvault.pinnacle.model import PatientRecord


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise ValueError(f"{key!r} is not a string: {value!r}")
    return value


def _int(data: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key!r} is not an integer: {value!r}")
    return value


def _names(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key!r} is not a list of names")
    return tuple(value)


def _objects(data: Mapping[str, Any], key: str, required: bool = True) -> list[Mapping[str, Any]]:
    value = data[key] if required else data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise ValueError(f"{key!r} is not a list of objects")
    return value


def _warning(data: Any) -> Problem:
    if isinstance(data, Mapping):
        return Problem.from_json(data)
    return Problem("", str(data))


@dataclass(frozen=True)
class FileStat:
    """A file as the backup's listing saw it."""

    name: str  # relative to the tree's base, `/`-separated
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    mode: int  # permission bits

    @classmethod
    def of(cls, name: str, st: os.stat_result) -> FileStat:
        return cls(name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, stat.S_IMODE(st.st_mode))


@dataclass(frozen=True)
class FileEntry(FileStat):
    """A file of a tree: its stat at backup time and the content object holding its bytes."""

    hash: str
    inconsistent: bool = False  # it kept changing while read: a later backup reads it again

    @classmethod
    def stored(cls, seen: FileStat, digest: str, inconsistent: bool = False) -> FileEntry:
        return cls(seen.name, seen.size, seen.mtime_ns, seen.ctime_ns, seen.ino, seen.mode, digest, inconsistent)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "size": self.size, "mtime_ns": self.mtime_ns,
                                "ctime_ns": self.ctime_ns, "ino": self.ino, "mode": self.mode, "hash": self.hash}
        if self.inconsistent:
            data["inconsistent"] = True
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FileEntry:
        return cls(_str(data, "name"), _int(data, "size"), _int(data, "mtime_ns"), _int(data, "ctime_ns", 0),
                   _int(data, "ino", 0), _int(data, "mode", 0o644), _str(data, "hash"),
                   bool(data.get("inconsistent", False)))


@dataclass(frozen=True)
class DirEntry:
    name: str
    mode: int
    mtime_ns: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "mode": self.mode, "mtime_ns": self.mtime_ns}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DirEntry:
        return cls(_str(data, "name"), _int(data, "mode", 0o755), _int(data, "mtime_ns", 0))


@dataclass(frozen=True)
class UnreadableEntry:
    """A file or folder the backup could not read; `carried_forward`: the previous snapshot's copy is in the
    tree's files instead."""

    name: str  # "." is the tree's own directory
    kind: str  # "file" or "dir"
    error: str
    carried_forward: bool
    size: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "kind": self.kind, "error": self.error,
                                "carried_forward": self.carried_forward}
        if self.size is not None:
            data["size"] = self.size
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UnreadableEntry:
        size = data.get("size")
        return cls(_str(data, "name"), str(data.get("kind", "file")), str(data.get("error", "")),
                   bool(data.get("carried_forward", False)), None if size is None else _int(data, "size"))


@dataclass(frozen=True)
class Tree:
    """One patient directory (or the root's other files) as one backup saw it."""

    files: tuple[FileEntry, ...]
    dirs: tuple[DirEntry, ...] = ()
    unreadable: tuple[UnreadableEntry, ...] = ()
    patient: PatientRecord | None = None  # the reader's record; None for the root's other files

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)

    def hashes(self) -> set[str]:
        return {f.hash for f in self.files}

    def by_name(self) -> dict[str, FileEntry]:
        return {f.name: f for f in self.files}

    def identity(self) -> dict[str, Any]:
        """The patient's record as the reader wrote it (what an Institution file's PatientLite is made of)."""
        return self.patient.to_json() if self.patient is not None else {}

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"files": [f.to_json() for f in self.files], "dirs": [d.to_json() for d in self.dirs]}
        if self.unreadable:
            data["unreadable"] = [u.to_json() for u in self.unreadable]
        if self.patient is not None:
            data["patient"] = self.patient.to_json()
        return data

    @classmethod
    def from_json(cls, data: Any) -> Tree:
        if not isinstance(data, Mapping):
            raise ValueError("a tree is a JSON object")
        patient = data.get("patient")
        return cls(tuple(FileEntry.from_json(f) for f in _objects(data, "files")),
                   tuple(DirEntry.from_json(d) for d in _objects(data, "dirs", required=False)),
                   tuple(UnreadableEntry.from_json(u) for u in _objects(data, "unreadable", required=False)),
                   None if patient is None else PatientRecord.from_json(patient))


@dataclass(frozen=True)
class PatientEntry:
    """A patient of a snapshot: where, which tree, and enough identity for a search without the tree."""

    path: str  # Institution_I/Mount_M/Patient_P
    tree: str
    patient_id: int | None = None
    last_name: str = ""
    first_name: str = ""
    mrn: str = ""
    birth_date: str | None = None
    files: int = 0
    bytes: int = 0
    incomplete: bool = False  # some of its files or folders could not be read by this backup
    unreadable: tuple[str, ...] = ()  # their names; "." = its directory could not be listed (tree is older)

    @classmethod
    def of(cls, path: str, digest: str, tree: Tree, unreadable: Iterable[str]) -> PatientEntry:
        who = tree.patient or PatientRecord(path=path)
        missing = tuple(unreadable)
        return cls(path, digest, who.patient_id, who.last_name, who.first_name, who.mrn, who.birth_date,
                   len(tree.files), tree.bytes, bool(missing), missing)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path, "tree": self.tree, "patient_id": self.patient_id,
                                "last_name": self.last_name, "first_name": self.first_name, "mrn": self.mrn,
                                "birth_date": self.birth_date, "files": self.files, "bytes": self.bytes}
        if self.incomplete:
            data.update(incomplete=True, unreadable=list(self.unreadable))
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PatientEntry:
        patient_id = data.get("patient_id")
        return cls(_str(data, "path"), _str(data, "tree"), patient_id if isinstance(patient_id, int) else None,
                   str(data.get("last_name") or ""), str(data.get("first_name") or ""), str(data.get("mrn") or ""),
                   data.get("birth_date") or None, _int(data, "files", 0), _int(data, "bytes", 0),
                   bool(data.get("incomplete", False)), _names(data, "unreadable"))


@dataclass(frozen=True)
class OtherEntry:
    """The root's files outside the patient directories (the Institution files)."""

    tree: str
    files: int = 0
    incomplete: bool = False
    unreadable: tuple[str, ...] = ()

    @classmethod
    def of(cls, digest: str, tree: Tree, unreadable: Iterable[str]) -> OtherEntry:
        missing = tuple(unreadable)
        return cls(digest, len(tree.files), bool(missing), missing)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"tree": self.tree, "files": self.files}
        if self.incomplete:
            data.update(incomplete=True, unreadable=list(self.unreadable))
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OtherEntry:
        return cls(_str(data, "tree"), _int(data, "files", 0), bool(data.get("incomplete", False)),
                   _names(data, "unreadable"))


@dataclass(frozen=True)
class Manifest:
    """One snapshot. `host`, `format`, `rtvault_version` and `integrity` are set by `Store.save_snapshot`."""

    id: str  # YYYYMMDDTHHMMSSZ-<6 hex>
    time: str  # UTC, microseconds, ending in Z
    source: str = ""
    patients: tuple[PatientEntry, ...] = ()
    other: OtherEntry | None = None
    summary: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[Problem, ...] = ()
    host: str = ""
    format: int | None = None
    rtvault_version: str = ""
    integrity: str | None = None
    source_name: str = LEGACY_SOURCE  # the configured source ([sources.<name>]); older manifests: `pinnacle`
    kind: str = PATIENTS_KIND  # what the tree holds: the patient database or a physics tree (PinnacleSiteData)
    site: str = ""  # the site label of the source, "" when none was configured

    def patient(self, path: str) -> PatientEntry | None:
        return next((p for p in self.patients if p.path == path), None)

    def entry(self, path: str) -> PatientEntry | OtherEntry | None:
        """A patient's entry, or the root's other files for the path ""."""
        return self.other if path == "" else self.patient(path)

    def trees(self) -> dict[str, str]:
        """Every tree it names: patient path (or "" for the other files) → tree hash."""
        named = {p.path: p.tree for p in self.patients}
        if self.other is not None:
            named[""] = self.other.tree
        return named

    @property
    def files(self) -> int:
        return int(self.summary.get("files", 0))

    @property
    def bytes(self) -> int:
        return int(self.summary.get("bytes", 0))

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "time": self.time, "source": self.source,
                                "patients": [p.to_json() for p in self.patients]}
        if self.other is not None:
            data["other"] = self.other.to_json()
        data["summary"] = dict(self.summary)
        data["warnings"] = [w.to_json() for w in self.warnings]
        named = {"source_name": (self.source_name, LEGACY_SOURCE), "kind": (self.kind, PATIENTS_KIND),
                 "site": (self.site, "")}
        data.update({key: value for key, (value, default) in named.items() if value != default})
        for key in ("host", "format", "rtvault_version", "integrity"):
            if getattr(self, key) not in ("", None):
                data[key] = getattr(self, key)
        return data

    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        if not isinstance(data, Mapping) or not isinstance(data.get("id"), str) \
                or not isinstance(data.get("patients"), list):
            raise ValueError("no id or no patient list")
        other = data.get("other")
        summary = data.get("summary") or {}
        fmt = data.get("format")
        return cls(data["id"], str(data.get("time", "")), str(data.get("source", "")),
                   tuple(PatientEntry.from_json(p) for p in _objects(data, "patients")),
                   OtherEntry.from_json(other) if isinstance(other, Mapping) else None,
                   summary if isinstance(summary, Mapping) else {},
                   tuple(_warning(w) for w in data.get("warnings") or []),
                   str(data.get("host", "")), fmt if isinstance(fmt, int) else None,
                   str(data.get("rtvault_version", "")), data.get("integrity"),
                   str(data.get("source_name") or LEGACY_SOURCE), str(data.get("kind") or PATIENTS_KIND),
                   str(data.get("site") or ""))
