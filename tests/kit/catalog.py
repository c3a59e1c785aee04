"""The catalog tests' kit: the two dialects every catalog test runs on, a new catalog database of a test's own,
and a builder of small hand-made catalogs (patients placed the way the indexer places them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rtvault.catalog import Catalog
from rtvault.catalog.indexer import Identity, Writer, refresh_status

# PostgreSQL runs in the full suite; the fast tier (-m "not slow") keeps SQLite, the same SQL
DIALECTS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)]


def new_url(request: pytest.FixtureRequest, dialect: str, directory: Path, *, migrated: bool = True) -> str:
    """The URL of a new catalog database of its own: a file in `directory` (empty: SQLite migrates in no
    time), or a database on the session server, with the current schema unless `migrated` is False."""
    if dialect == "sqlite":
        return f"sqlite:///{directory / 'catalog.sqlite'}"
    return request.getfixturevalue("postgres_server").new_database(migrated=migrated)


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
