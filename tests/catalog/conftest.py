"""Fixtures of the catalog tests: every test runs on SQLite and on a real PostgreSQL server started once per
session (a fresh database per test). The builder of hand-made catalogs is kit.catalog.Builder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kit import postgres
from kit.catalog import DIALECTS, new_url
from rtvault.catalog import Catalog, open_catalog


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.PostgresServer]:
    """One PostgreSQL 15 server for the whole session; skipped, with the reason, when it is not installed."""
    server = postgres.start_or_skip()
    yield server
    server.stop()


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
