"""One catalog connection, SQLite or PostgreSQL, with the same SQL for both.

SQL is written once with `?` placeholders and SQLite/PostgreSQL common syntax; `{pk}` in DDL becomes each
database's auto-increment key. SQLite runs in WAL mode with a busy timeout, so the web server reads while a
backup writes; PostgreSQL is reached with psycopg 3, in autocommit mode outside `transaction()`.

Text ranges (`term >= ? AND term < ?` for a prefix, ISO dates) assume byte order. SQLite compares text with
BINARY; on PostgreSQL the columns compared that way are declared `COLLATE "C"` (migration 0004), so any
database collation works (a French `fr-FR` one is what the tests use). LIKE is case-sensitive on both (SQLite's
`case_sensitive_like`, set on every connection), and LOWER folds ASCII letters only on a `COLLATE "C"` column
and on SQLite: text folded for matching without case is folded by Python when written.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from rtvault.errors import CatalogError, CatalogUnavailable, ConfigError

SQLITE = "sqlite:///"
POSTGRESQL = ("postgresql://", "postgres://")
BUSY_TIMEOUT_S = 30
_PK = {"sqlite": "INTEGER PRIMARY KEY", "postgresql": "BIGSERIAL PRIMARY KEY"}


class Catalog:
    """A connection to the catalog database; one per thread (the web server opens one per request)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = dialect_of(url)
        self._lock = threading.RLock()
        self._depth = 0
        self._conn: Any = self._connect()

    def _connect(self) -> Any:
        if self.dialect == "sqlite":
            path = Path(self.url.removeprefix(SQLITE))
            if not path.parent.is_dir():
                raise ConfigError("[catalog] url", [f"directory {path.parent} does not exist"])
            try:
                owner_only(path)
                conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
                _settle(conn)
            except (sqlite3.DatabaseError, OSError) as error:
                raise CatalogUnavailable(f"catalog {path} is unusable: {error}") from None
            return conn
        try:
            import psycopg
        except ImportError:  # pragma: no cover - psycopg is a dependency
            raise ConfigError("[catalog] url", ["PostgreSQL needs the psycopg package"]) from None
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as error:
            raise CatalogUnavailable(f"cannot reach the catalog database {describe(self.url)}: "
                               f"{_without_password(str(error), self.url)}") from None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def sql(self, text: str) -> str:
        text = text.replace("{pk}", _PK[self.dialect])
        return text if self.dialect == "sqlite" else text.replace("%", "%%").replace("?", "%s")

    @contextmanager
    def _refused(self) -> Iterator[None]:
        """The database's own errors (a constraint, a trigger, a lock timeout) as one CatalogError."""
        try:
            yield
        except self._errors as error:
            reason = _without_password(str(error), self.url) if self.dialect == "postgresql" else str(error)
            raise CatalogError(f"the catalog database refused a statement: {reason}") from error

    @property
    def _errors(self) -> type[Exception]:
        if self.dialect == "sqlite":
            return sqlite3.Error
        import psycopg

        return psycopg.Error

    def execute(self, text: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock, self._refused():
            cursor = self._conn.execute(self.sql(text), tuple(params))
            return cursor.fetchall() if cursor.description else []

    def one(self, text: str, params: Sequence[Any] = ()) -> tuple | None:
        rows = self.execute(text, params)
        return rows[0] if rows else None

    def insert(self, text: str, params: Sequence[Any] = ()) -> int:
        """An INSERT; returns the new row's id."""
        if self.dialect == "postgresql":
            return int(self.execute(text + " RETURNING id", params)[0][0])
        with self._lock, self._refused():
            return int(self._conn.execute(self.sql(text), tuple(params)).lastrowid)

    def many(self, text: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        with self._lock, self._refused():
            if self.dialect == "sqlite":
                self._conn.executemany(self.sql(text), rows)
            else:
                with self._conn.cursor() as cursor:
                    cursor.executemany(self.sql(text), rows)

    def columns(self, table: str) -> list[str]:
        """The names of a table's columns, in order."""
        with self._lock, self._refused():
            cursor = self._conn.execute(f"SELECT * FROM {table} WHERE 1 = 0")
            cursor.fetchall()
            return [column[0] for column in cursor.description]

    def copy_to(self, path: Path) -> None:
        """SQLite only: the whole database copied into a new file `path` through SQLite's online backup API,
        consistent however many others write meanwhile; sqlite3.Error when it cannot (a full disk)."""
        if self.dialect != "sqlite":
            raise RuntimeError("Catalog.copy_to copies a SQLite catalog")
        target = sqlite3.connect(path)
        try:
            with self._lock:
                self._conn.backup(target)
        finally:
            target.close()

    def lock(self, key: str) -> None:
        """Inside a transaction: wait until no other transaction holds `key`, then hold it until this one ends.
        A SQLite transaction already holds the database's write lock (`BEGIN IMMEDIATE`); on PostgreSQL this
        is an advisory lock on the key's hash."""
        if not self._depth:
            raise RuntimeError("Catalog.lock needs a transaction")
        if self.dialect == "postgresql":
            self.execute("SELECT pg_advisory_xact_lock(hashtext(CAST(? AS TEXT)))", (key,))

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
                with self._refused():
                    self._conn.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlock later
                self._depth = 1
                try:
                    yield self
                    with self._refused():
                        self._conn.execute("COMMIT")
                except BaseException:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise
                finally:
                    self._depth = 0
            else:
                self._depth = 1
                try:
                    with self._refused(), self._conn.transaction():
                        yield self
                finally:
                    self._depth = 0


def _settle(conn: sqlite3.Connection) -> None:
    """WAL mode (set once: a catalog already in it is not asked again), then the per-connection settings. While
    another process closes the last connection (its checkpoint) or recovers the WAL, SQLite may answer "database
    is locked" at once, without its busy handler: asked again until the busy timeout, as a statement waits."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA case_sensitive_like=ON")  # LIKE as PostgreSQL's (C-FIND's wildcards)
            return
        except sqlite3.OperationalError as error:
            if ("locked" not in str(error) and "busy" not in str(error)) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def owner_only(path: Path) -> None:
    """Create the SQLite catalog readable and writable by its owner only (0600), whatever the umask: it holds
    patient identities, the audit trail and password hashes. SQLite gives its -wal and -shm files the mode of
    the database file. An existing catalog of ours left readable by others (as older versions created it) is
    closed to them; group bits an administrator chose (a monitoring group) are kept."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            with contextlib.suppress(OSError):
                status = name.stat()
                if stat.S_ISREG(status.st_mode) and status.st_mode & 0o007 and status.st_uid == os.geteuid():
                    name.chmod(stat.S_IMODE(status.st_mode) & ~0o007)
        return
    try:
        os.fchmod(descriptor, 0o600)  # the umask may have taken the owner's bits away too
    finally:
        os.close(descriptor)


def dialect_of(url: str) -> str:
    if url.startswith(SQLITE):
        return "sqlite"
    if url.startswith(POSTGRESQL):
        return "postgresql"
    raise ConfigError("[catalog] url", [f"{describe(url)!r} is neither sqlite:///PATH nor postgresql://..."])


def describe(url: str) -> str:
    """The URL without its password, to name the database in messages and logs."""
    parts = urlsplit(url)
    where = parts.netloc.rsplit("@", 1)[-1]
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, f"{user}{where}", parts.path, "", ""))  # the query may hold a password


def _without_password(text: str, url: str) -> str:
    password = urlsplit(url).password
    text = "; ".join(" ".join(line.split()) for line in text.splitlines() if line.strip())  # one line
    return text.replace(password, "***") if password else text
