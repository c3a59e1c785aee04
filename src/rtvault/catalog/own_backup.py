"""What lives only in the catalog, taken whole and put back (docs/design.md, "The catalog's own backup").

`catalog rebuild` refills the index from the stores; these tables come from nowhere else, so they are taken
(`take`) for `rtvault catalog backup` and put back (`put_back`) by a rebuild. A SQLite catalog is copied through
SQLite's online backup API into a temporary file beside it, and the tables are read from that copy; a PostgreSQL
catalog is dumped by `pg_dump --data-only` (one consistent snapshot of the tables) and its COPY blocks parsed.

Left out on purpose: sessions and sign-in attempts (short-lived), the audit trail (the journal's index: a
rebuild reads it again), the stores' names (given again by the configuration), legal destructions (their
records are in the stores: `archive delete --pending`), and the index tables.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from rtvault.catalog.db import SQLITE, Catalog, describe
from rtvault.catalog.volumes import derive_locations
from rtvault.errors import CatalogError
from rtvault.store.catalog_backups import Table

OWN_TABLES = ("users", "tokens", "volumes", "volume_archives", "store_samples")
PG_DUMP_TIMEOUT_S = 600


def take(catalog: Catalog) -> tuple[str, dict[str, Table]]:
    """(the tool that took them, the tables) of the catalog's own state, as one consistent moment."""
    return _from_sqlite(catalog) if catalog.dialect == "sqlite" else _from_postgresql(catalog)


def created(catalog: Catalog) -> str:
    """When this catalog database was created (its first migration applied)."""
    row = catalog.one("SELECT MIN(applied) FROM schema_migrations")
    return str(row[0]) if row and row[0] else ""


# --- SQLite -----------------------------------------------------------------------------------------------------


def _from_sqlite(catalog: Catalog) -> tuple[str, dict[str, Table]]:
    folder = Path(catalog.url.removeprefix(SQLITE)).parent
    try:
        with tempfile.TemporaryDirectory(dir=folder, prefix=".rtvault-catalog-backup-") as temporary:
            copy = Path(temporary) / "catalog.sqlite"
            catalog.copy_to(copy)
            connection = sqlite3.connect(copy)
            try:
                tables = {name: _sqlite_table(connection, name) for name in OWN_TABLES}
            finally:
                connection.close()
    except (sqlite3.Error, OSError) as error:
        raise CatalogError(f"cannot copy the catalog into a temporary file in {folder} ({error}): free space there "
                           "or give the service user write access, then run `rtvault catalog backup` again") from None
    return f"SQLite online backup API (SQLite {sqlite3.sqlite_version})", tables


def _sqlite_table(connection: sqlite3.Connection, name: str) -> Table:
    cursor = connection.execute(f"SELECT * FROM {name} ORDER BY 1")
    rows = cursor.fetchall()
    return Table(tuple(column[0] for column in cursor.description), tuple(rows))


# --- PostgreSQL ---------------------------------------------------------------------------------------------------


def _pg_dump() -> str:
    tool = shutil.which("pg_dump")
    if tool is None:
        raise CatalogError("pg_dump was not found on this host (PATH): install PostgreSQL's client programs "
                           "(Debian: postgresql-client, of the server's version or newer) to back up a PostgreSQL "
                           "catalog")
    return tool


def _connection(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its password, and the environment giving pg_dump the password (never on a command line,
    which every user of the host may read)."""
    parts = urlsplit(url)
    environment = {"PGPASSWORD": unquote(parts.password)} if parts.password else {}
    query = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "password":
            environment["PGPASSWORD"] = value
        else:
            query.append((key, value))
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if parts.username is not None:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), "")), environment


def _from_postgresql(catalog: Catalog) -> tuple[str, dict[str, Table]]:
    tool = _pg_dump()
    url, environment = _connection(catalog.url)
    schema = str(catalog.one("SELECT current_schema()")[0])  # type: ignore[index]
    command = [tool, "--data-only", "--no-password", "--encoding=UTF8",
               *(f'--table="{schema}"."{name}"' for name in OWN_TABLES), f"--dbname={url}"]
    try:
        done = subprocess.run(command, capture_output=True, env={**os.environ, **environment},
                              timeout=PG_DUMP_TIMEOUT_S, check=False)
        version = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CatalogError(f"pg_dump could not back up the catalog {describe(catalog.url)}: {error}") from None
    if done.returncode:
        why = " ".join(done.stderr.decode("utf-8", "replace").split())[-400:]
        raise CatalogError(f"pg_dump could not back up the catalog {describe(catalog.url)} (exit {done.returncode}: "
                           f"{why}); check that pg_dump is of the server's version or newer and may read the "
                           "catalog's tables")
    integers = _integer_columns(catalog, schema)
    dumped = parse_copy(done.stdout.decode("utf-8"))
    tables = {name: _typed(name, *dumped.get(name, (tuple(catalog.columns(name)), [])), integers)
              for name in OWN_TABLES}
    return version.stdout.strip() or "pg_dump", tables


def _integer_columns(catalog: Catalog, schema: str) -> set[tuple[str, str]]:
    rows = catalog.execute("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = ? "
                           "AND data_type IN ('smallint', 'integer', 'bigint')", (schema,))
    return {(str(table), str(column)) for table, column in rows}


def _typed(name: str, columns: tuple[str, ...], rows: list[list[str | None]],
           integers: set[tuple[str, str]]) -> Table:
    wanted = [(name, column) in integers for column in columns]
    return Table(columns, tuple(tuple(int(value) if number and value is not None else value
                                      for value, number in zip(row, wanted, strict=True)) for row in rows))


_COPY = re.compile(r"COPY (?P<table>\S+) \((?P<columns>[^)]*)\) FROM stdin;")
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)")


def parse_copy(text: str) -> dict[str, tuple[tuple[str, ...], list[list[str | None]]]]:
    """The COPY blocks of a plain pg_dump: each table's columns and rows, values as text (None for NULL).
    ValueError when a block is cut short or a row has the wrong number of values."""
    found: dict[str, tuple[tuple[str, ...], list[list[str | None]]]] = {}
    lines = iter(text.split("\n"))
    for line in lines:
        match = _COPY.fullmatch(line)
        if match is None:
            continue
        table = match["table"].rsplit(".", 1)[-1].strip('"')
        columns = tuple(column.strip().strip('"') for column in match["columns"].split(","))
        rows: list[list[str | None]] = []
        for row in lines:
            if row == "\\.":
                break
            values = [None if value == "\\N" else _unescape(value) for value in row.split("\t")]
            if len(values) != len(columns):
                raise ValueError(f"pg_dump's row of table {table} has {len(values)} values for {len(columns)} columns")
            rows.append(values)
        else:
            raise ValueError(f"pg_dump's data of table {table} is cut short (no end marker)")
        found[table] = (columns, rows)
    return found


def _unescape(value: str) -> str:
    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] == "x" and len(code) > 1:
            return chr(int(code[1:], 16))
        if code[0] in "01234567":
            return chr(int(code, 8))
        return _ESCAPES.get(code, code)

    return _ESCAPE.sub(one, value)


# --- putting back -----------------------------------------------------------------------------------------------


@dataclass
class PutBack:
    """What a backup gave back to the catalog, and what was already there and kept as it is."""

    users: list[str] = field(default_factory=list)
    users_kept: list[str] = field(default_factory=list)  # a user of that name exists: not overwritten
    tokens: int = 0
    tokens_not_restored: int = 0  # tokens of users kept: they stay with what the catalog has now
    volumes: list[str] = field(default_factory=list)
    volumes_kept: list[str] = field(default_factory=list)  # that label or disk is known already
    volume_archives: int = 0
    store_samples: int = 0


def _rows(table: Table | None, wanted: list[str]) -> list[dict[str, object]]:
    """The backup's rows as {column: value}, for the columns the catalog has now (a column added since the
    backup keeps its default; one dropped since is left out)."""
    if table is None:
        return []
    return [{c: v for c, v in zip(table.columns, row, strict=True) if c in wanted} for row in table.rows]


def _insert(catalog: Catalog, table: str, row: dict[str, object]) -> None:
    columns = list(row)
    catalog.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                    [row[c] for c in columns])


def put_back(catalog: Catalog, tables: dict[str, Table]) -> PutBack:
    """Add what the backup holds and the catalog lacks, in one transaction: a user, a token, a disk or a sample
    that exists already is kept as it is (never overwritten). Then the disks' copies are shown again."""
    done = PutBack()
    with catalog.transaction():
        rows = {name: _rows(tables.get(name), catalog.columns(name)) for name in OWN_TABLES}
        _users(catalog, rows["users"], rows["tokens"], done)
        _volumes(catalog, rows["volumes"], rows["volume_archives"], done)
        have = {(str(s), str(t)) for s, t in catalog.execute("SELECT store, time FROM store_samples")}
        for row in rows["store_samples"]:
            if (str(row.get("store")), str(row.get("time"))) not in have:
                _insert(catalog, "store_samples", row)
                done.store_samples += 1
        derive_locations(catalog)
    return done


def _users(catalog: Catalog, users: list[dict], tokens: list[dict], done: PutBack) -> None:
    have = {str(row[0]) for row in catalog.execute("SELECT name FROM users")}
    for row in sorted(users, key=lambda r: str(r.get("name"))):
        name = str(row.get("name"))
        if name in have:
            done.users_kept.append(name)
            continue
        _insert(catalog, "users", row)
        done.users.append(name)
    known = {str(row[0]) for row in catalog.execute("SELECT hash FROM tokens")}
    for row in tokens:
        if str(row.get("username")) not in done.users:
            done.tokens_not_restored += 1
        elif str(row.get("hash")) not in known:
            _insert(catalog, "tokens", row)
            done.tokens += 1


def _volumes(catalog: Catalog, volumes: list[dict], held: list[dict], done: PutBack) -> None:
    labels = {str(label): str(uuid) for label, uuid in catalog.execute("SELECT label, uuid FROM volumes")}
    uuids = set(labels.values())
    same = set()  # the disks the catalog knows as the backup does (label and UUID): their copies are merged
    for row in sorted(volumes, key=lambda r: str(r.get("label"))):
        label, uuid = str(row.get("label")), str(row.get("uuid"))
        if labels.get(label) == uuid:
            same.add(label)
            done.volumes_kept.append(label)
        elif label in labels or uuid in uuids:
            done.volumes_kept.append(label)
        else:
            _insert(catalog, "volumes", row)
            labels[label] = uuid
            uuids.add(uuid)
            same.add(label)
            done.volumes.append(label)
    copies = {(str(v), str(a)) for v, a in catalog.execute("SELECT volume, archive FROM volume_archives")}
    for row in held:
        key = (str(row.get("volume")), str(row.get("archive")))
        if key[0] in same and key not in copies:
            _insert(catalog, "volume_archives", row)
            copies.add(key)
            done.volume_archives += 1
