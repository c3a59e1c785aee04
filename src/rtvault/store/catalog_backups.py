"""The catalog's own backups in a store (docs/design.md, "The catalog's own backup").

What lives only in the catalog (web users with their password hashes and roles, API tokens, removable disks and
what they hold, the stores' disk space samples) is written by `rtvault catalog backup` as one document,
`catalog/<id>.json`, where `id` is `YYYYMMDDTHHMMSSZ-<6 hex>` (when it was taken, and a random tag): ASCII JSON,
keys sorted, sealed with an integrity hash as manifests are (store/integrity.py). One run writes the same bytes,
under the same id, to every store that may hold password hashes; the newest `KEEP` of a store are kept.

The folder is private (store/backend.py): on a directory store its files are 0600 in a 0700 folder. It is never
replicated (copies/replicate.py's REPLICATED): a copy gets it only when the job itself finds the copy eligible.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from rtvault.store import integrity
from rtvault.store.backend import Backend

FOLDER = "catalog/"
FORMAT = "rtvault-catalog-backup"
VERSION = 1
KEEP = 5  # a store keeps its newest five: an older one is there when the newest is found damaged
DIALECTS = ("sqlite", "postgresql")
ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")
KEY = re.compile(rf"catalog/(?P<id>{ID.pattern})\.json")


def new_id(now: datetime) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def key_of(backup_id: str) -> str:
    return f"{FOLDER}{backup_id}.json"


def id_of(key: str) -> str | None:
    """The backup id a store key holds, None for a key that is no catalog backup's."""
    match = KEY.fullmatch(key)
    return None if match is None else match["id"]


@dataclass(frozen=True)
class Table:
    """One table of the catalog as it was: its columns' names and its rows (texts, integers or null)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]

    def to_json(self) -> dict[str, object]:
        return {"columns": list(self.columns), "rows": [list(row) for row in self.rows]}

    @classmethod
    def from_json(cls, name: str, data: object) -> Table:
        if not isinstance(data, dict) or not isinstance(data.get("columns"), list) \
                or not isinstance(data.get("rows"), list):
            raise ValueError(f"table {name!r} is not a list of columns and a list of rows")
        columns = data["columns"]
        if not columns or not all(isinstance(c, str) and re.fullmatch(r"[a-z_][a-z0-9_]*", c) for c in columns):
            raise ValueError(f"table {name!r} has a column name rtvault never writes: {columns!r:.80}")
        rows = data["rows"]
        for row in rows:
            if not isinstance(row, list) or len(row) != len(columns) or not all(
                    v is None or (isinstance(v, str | int) and not isinstance(v, bool)) for v in row):
                raise ValueError(f"table {name!r} has a row that is not {len(columns)} texts, integers or nulls: "
                                 f"{row!r:.80}")
        return cls(tuple(columns), tuple(tuple(row) for row in rows))


@dataclass(frozen=True)
class CatalogBackup:
    """One backup of the catalog's own state: when, by which host, from which database, with which tool."""

    id: str
    time: str
    host: str
    catalog: str  # "sqlite" or "postgresql"
    taken_with: str  # "SQLite online backup API" or pg_dump's version line
    tables: dict[str, Table]

    def to_json(self) -> dict[str, object]:
        return {"format": FORMAT, "version": VERSION, "id": self.id, "time": self.time, "host": self.host,
                "catalog": self.catalog, "taken_with": self.taken_with,
                "tables": {name: table.to_json() for name, table in sorted(self.tables.items())}}

    @classmethod
    def from_json(cls, document: dict) -> CatalogBackup:
        for name in ("id", "time", "host", "catalog", "taken_with"):
            if not isinstance(document.get(name), str):
                raise ValueError(f"catalog backup field {name!r} is not a text: {document.get(name)!r:.80}")
        if document["catalog"] not in DIALECTS:
            raise ValueError(f"catalog backup field 'catalog' is none of {', '.join(DIALECTS)}")
        tables = document.get("tables")
        if not isinstance(tables, dict):
            raise ValueError("catalog backup field 'tables' is not an object")
        return cls(document["id"], document["time"], document["host"], document["catalog"],
                   document["taken_with"], {name: Table.from_json(name, data) for name, data in tables.items()})


def encode(backup: CatalogBackup) -> bytes:
    document = integrity.seal(backup.to_json())
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii") + b"\n"


def decode(data: bytes, key: str) -> CatalogBackup:
    """A stored backup, checked: ValueError saying why it cannot be trusted (cut, changed, another's name)."""
    try:
        document = integrity.parse(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"not a JSON document: {error}") from None
    if document.get("format") != FORMAT or not integrity.sealed(document):
        raise ValueError("not a catalog backup (no format or integrity hash)")
    if not isinstance(document.get("version"), int) or document["version"] > VERSION:
        raise ValueError(f"catalog backup version {document.get('version')!r:.20} is newer than this rtvault reads")
    if key_of(str(document.get("id"))) != key:
        raise ValueError(f"not the catalog backup of this name (it holds backup {document.get('id')!r:.40})")
    return CatalogBackup.from_json(document)


def backups(backend: Backend) -> list[str]:
    """The ids of the catalog backups a store holds, newest first."""
    found = (id_of(key.removeprefix("./")) for key in backend.list(FOLDER))
    return sorted((backup_id for backup_id in found if backup_id), reverse=True)


def prune(backend: Backend, keep: int = KEEP) -> list[str]:
    """Delete all but the newest `keep` backups of a store; returns the ids deleted."""
    old = backups(backend)[keep:]
    for backup_id in old:
        backend.delete(key_of(backup_id))
    return old
