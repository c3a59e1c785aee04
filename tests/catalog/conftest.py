"""Fixtures of the catalog tests: every test runs on SQLite and on a real PostgreSQL server started once per
session (a fresh database per test), and a builder of small hand-made catalogs.

Test modules import the builder as `catalog_kit` (every conftest.py is a module named "conftest").
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rtvault.catalog import Catalog, open_catalog
from rtvault.catalog.indexer import Identity, Writer, refresh_status

sys.modules["catalog_kit"] = sys.modules[__name__]
postgres = sys.modules["catalog_postgres"]  # loaded by tests/conftest.py

DIALECTS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """One PostgreSQL 15 server for the whole session; skipped, with the reason, when it is not installed."""
    reason = postgres.missing()
    if reason:
        pytest.skip(reason)
    server = postgres.start()
    yield server
    server.stop()


def new_url(request: pytest.FixtureRequest, dialect: str, directory: Path, *, migrated: bool = True) -> str:
    """The URL of a new catalog database of its own: a file in `directory` (empty: SQLite migrates in no
    time), or a database on the session server, with the current schema unless `migrated` is False."""
    if dialect == "sqlite":
        return f"sqlite:///{directory / 'catalog.sqlite'}"
    return request.getfixturevalue("postgres_server").new_database(migrated=migrated)


@pytest.fixture(params=DIALECTS)
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A catalog of its own for this test; `open_catalog(catalog_url)` finds its schema up to date."""
    return new_url(request, request.param, tmp_path)


@pytest.fixture(params=DIALECTS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database without any table, for the migration tests."""
    return new_url(request, request.param, tmp_path, migrated=False)


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    with open_catalog(catalog_url) as opened:
        yield opened


@dataclass
class Builder:
    """Writes hand-picked patients the way the indexer does: each snapshot or archive with its patients."""

    catalog: Catalog
    writer: Writer = field(init=False)

    def __post_init__(self) -> None:
        self.writer = Writer(self.catalog)

    def _place(self, data: dict, store: str, kind: str, ref: str, when: str, *, file: str = "",
               damaged: bool = False) -> int:
        identity = Identity.of(data, files=3, size=1000, complete=not damaged)
        pid = self.writer.patient(identity)
        version = self.writer.version(pid, f"tree-{identity.key}-{data.get('last_modified')}", identity)
        self.writer.location(pid, version, store, kind, ref, when, file=file, damaged=damaged)
        return pid

    def snapshot(self, ref: str, when: str, patients: list[dict], *, store: str = "primary") -> None:
        with self.catalog.transaction():
            for data in patients:
                self._place(data, store, "snapshot", ref, when)
            self.catalog.execute("INSERT INTO indexed (store, kind, ref, time) VALUES (?, 'snapshot', ?, ?)",
                                 (store, ref, when))

    def archive(self, ref: str, when: str, file: str, patients: list[dict], *, damaged: bool = False,
                store: str = "primary") -> None:
        with self.catalog.transaction():
            for data in patients:
                pid = self._place(data, store, "archive", ref, when, file=file, damaged=damaged)
                self.catalog.execute("UPDATE patients SET archived_at = ? WHERE id = ?", (when, pid))
            self.catalog.execute("INSERT INTO indexed (store, kind, ref, time) VALUES (?, 'archive', ?, ?)",
                                 (store, ref, when))

    def finish(self) -> None:
        with self.catalog.transaction():
            refresh_status(self.catalog, self.writer.touched)
