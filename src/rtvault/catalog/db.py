"""One catalog connection, SQLite or PostgreSQL, with the same SQL for both.

SQL is written once with `?` placeholders and SQLite/PostgreSQL common syntax; `{pk}` in DDL becomes each
database's auto-increment key. SQLite runs in WAL mode with a busy timeout, so the web server reads while a
backup writes; PostgreSQL is reached with psycopg 3.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rtvault.errors import ConfigError, StoreError

SQLITE = "sqlite:///"
BUSY_TIMEOUT_S = 30
_PK = {"sqlite": "INTEGER PRIMARY KEY", "postgresql": "BIGSERIAL PRIMARY KEY"}


class CatalogError(StoreError):
    """The catalog database cannot be reached or used."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Catalog:
    """A connection to the catalog database; one per thread (the web server opens one per request)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = "sqlite" if url.startswith(SQLITE) else "postgresql"
        self._lock = threading.RLock()
        self._depth = 0
        self._conn: Any = self._connect()

    def _connect(self) -> Any:
        if self.dialect == "sqlite":
            path = Path(self.url.removeprefix(SQLITE))
            if not path.parent.is_dir():
                raise ConfigError(f"[catalog] url: directory {path.parent} does not exist")
            try:
                conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
            except sqlite3.DatabaseError as error:
                raise CatalogError(f"catalog {path} is unusable: {error}") from None
            return conn
        try:
            import psycopg
        except ImportError:  # pragma: no cover - psycopg is a dependency
            raise ConfigError("[catalog] url: PostgreSQL needs the psycopg package") from None
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as error:
            raise CatalogError(f"cannot reach the catalog database: {str(error).strip()}") from None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def sql(self, text: str) -> str:
        text = text.replace("{pk}", _PK[self.dialect])
        return text if self.dialect == "sqlite" else text.replace("?", "%s")

    def execute(self, text: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            args = tuple(params) if params or self.dialect == "sqlite" else None
            cursor = self._conn.execute(self.sql(text), args)
            return cursor.fetchall() if cursor.description else []

    def one(self, text: str, params: Sequence[Any] = ()) -> tuple | None:
        rows = self.execute(text, params)
        return rows[0] if rows else None

    def insert(self, text: str, params: Sequence[Any] = ()) -> int:
        """An INSERT; returns the new row's id."""
        if self.dialect == "postgresql":
            return int(self.execute(text + " RETURNING id", params)[0][0])
        with self._lock:
            return int(self._conn.execute(self.sql(text), tuple(params)).lastrowid)

    def many(self, text: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        with self._lock:
            if self.dialect == "sqlite":
                self._conn.executemany(self.sql(text), rows)
            else:
                with self._conn.cursor() as cursor:
                    cursor.executemany(self.sql(text), rows)

    @contextmanager
    def transaction(self) -> Iterator[Catalog]:
        """All or nothing; nested calls join the outer transaction."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            if self.dialect == "sqlite":
                self._conn.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlock later
                self._depth = 1
                try:
                    yield self
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                else:
                    self._conn.execute("COMMIT")
                finally:
                    self._depth = 0
            else:
                self._depth = 1
                try:
                    with self._conn.transaction():
                        yield self
                finally:
                    self._depth = 0


def open_catalog(url: str, *, migrate: bool = True) -> Catalog:
    """Connect to the catalog and bring its schema up to date."""
    from rtvault.catalog.schema import apply_migrations

    catalog = Catalog(url)
    if migrate:
        apply_migrations(catalog)
    return catalog
