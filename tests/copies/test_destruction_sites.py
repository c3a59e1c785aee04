"""Legal destruction on a catalog two sites share, each calling a store `primary`: a copy pending on site A's
`primary` is known by that store's id, so site B's `archive delete --pending` (whose own `primary` never held the
archive) leaves it pending instead of completing the certificate while A's store still holds it; A finishes it
once its store is back. A store whose id no one can know is recorded by name and completed by its own site only;
rows of a catalog from before ids are adopted by the configuration naming their store."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from kit import postgres
from kit.catalog import DIALECTS, new_url
from kit.config import write_config
from rtvault.archive import records
from rtvault.catalog import destructions
from rtvault.config import Config, load
from rtvault.configured import open_catalog_for
from rtvault.copies.replicate import replicate
from rtvault.copies.status import store_status
from rtvault.errors import ExitCode
from rtvault.jobs import destruction
from rtvault.jobs.catalog import refresh
from rtvault.jobs.dashboard import overview
from rtvault.jobs.health import evaluate
from rtvault.store import Store

LATER = date(2200, 1, 1)  # every keep-until date is long past by then
REASON = "retention ended, committee of 2046-03-02"


@dataclass
class Sites:
    a: Path  # site A's configuration: `primary` (holds the archive) and `secondary`, its copy
    b: Path  # site B's: its own `primary`, another store (another id) that never held the archive
    a_primary: Path
    a_secondary: Path
    b_primary: Path
    archive: str

    @property
    def config_a(self) -> Config:
        return load(self.a)

    @property
    def config_b(self) -> Config:
        return load(self.b)


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[postgres.PostgresServer]:
    """One PostgreSQL server for the module's PostgreSQL runs (slow tier), as a central archive's catalog."""
    server = postgres.start_or_skip()
    yield server
    server.stop()


@pytest.fixture(params=DIALECTS)
def sites(request: pytest.FixtureRequest, copies_template: Path, tmp_path: Path) -> Sites:
    url = new_url(request, request.param, tmp_path)
    shutil.copytree(copies_template / "db", tmp_path / "db", symlinks=True)
    a_primary, a_secondary, b_primary = tmp_path / "a-primary", tmp_path / "a-secondary", tmp_path / "b-primary"
    shutil.copytree(copies_template / "primary", a_primary, symlinks=True)
    Store.init(a_secondary)
    Store.init(b_primary)
    replicate(Store.open(a_primary), Store.open(a_secondary))
    a = write_config(tmp_path / "a" / "rtvault.toml", root=tmp_path / "db",
                     stores={"primary": a_primary, "secondary": {"path": a_secondary, "copy_of": "primary"}},
                     catalog={"url": url}, site={"name": "Site A"})
    b = write_config(tmp_path / "b" / "rtvault.toml", root=tmp_path / "db", stores={"primary": b_primary},
                     catalog={"url": url}, site={"name": "Site B"})
    (archive_id,) = records.all_ids(Store.open(a_primary))
    return Sites(a, b, a_primary, a_secondary, b_primary, archive_id)


def _pending(done: destruction.Destroyed) -> list[tuple[str, str, str | None]]:
    return [(p["kind"], p["place"], p.get("store_id")) for p in done.to_json()["pending"]]  # type: ignore[union-attr]


def test_a_copy_pending_on_one_site_is_not_completed_by_another_site_naming_a_store_alike(
        sites: Sites, tmp_path: Path) -> None:
    a_id = Store.open(sites.a_primary).info["id"]
    refresh(sites.config_a)  # both sites index their stores in the shared catalog
    refresh(sites.config_b)
    away = tmp_path / "a-primary-away"
    sites.a_primary.rename(away)  # site A's primary does not answer at deletion time

    decided = destruction.destroy(sites.config_a, sites.archive, REASON, LATER)
    assert decided.verdict().code == ExitCode.PARTIAL
    assert _pending(decided) == [("store", "primary", a_id)]  # known by its id, read from the catalog
    (certificate,) = decided.certificates
    assert {"kind": "store", "place": "primary", "store_id": a_id} in certificate["copies_at_decision"]

    # site B carries on the pending destructions: its own `primary` is another store, never touched for A's copy
    elsewhere = destruction.resume(sites.config_b)
    assert elsewhere.verdict().code == ExitCode.PARTIAL
    (seen_by_b,) = elsewhere.certificates
    assert seen_by_b["complete"] is False
    assert _pending(elsewhere) == [("store", "primary (Site A)", a_id)]
    assert "did not hold" not in str(seen_by_b["copies"])
    assert "does not answer" in next(c["note"] for c in seen_by_b["copies"] if c.get("store_id") == a_id)
    status_b = store_status(sites.config_b).pending_destruction
    assert [(p["place"], p["store_id"]) for p in status_b] == [("primary (Site A)", a_id)]
    assert "primary (Site A)" in {c.name: c for c in evaluate(sites.config_b).checks}["destruction"].message
    with open_catalog_for(sites.config_a) as catalog:
        shown = overview(sites.config_a, catalog).to_json()["pending_destruction"]
        assert [(p["place"], p["store_id"]) for p in shown] == [("primary", a_id)]  # site A's own name

    # back at site A: its `primary` answers again and site A finishes the destruction
    away.rename(sites.a_primary)
    assert records.holds(Store.open(sites.a_primary), sites.archive)
    done = destruction.resume(sites.config_a)
    assert done.verdict().code == ExitCode.OK and done.certificates[0]["complete"] is True
    assert not records.holds(Store.open(sites.a_primary), sites.archive)
    assert {(c["place"], c["store_id"]) for c in done.certificates[0]["copies"]} >= {("primary", a_id)}


def test_a_store_whose_id_no_one_knows_is_listed_by_name_and_finished_by_its_own_site_only(
        sites: Sites, tmp_path: Path) -> None:
    refresh(sites.config_b)  # site A never indexed its stores in this catalog: no id for its `primary` anywhere
    away = tmp_path / "a-primary-away"
    sites.a_primary.rename(away)

    decided = destruction.destroy(sites.config_a, sites.archive, REASON, LATER)
    assert _pending(decided) == [("store", "primary", None)]
    note = decided.to_json()["pending"][0]["note"]  # type: ignore[index]
    assert "store id is not known" in note and "only this site" in note
    assert {"kind": "store", "place": "primary", "store_id": None} in decided.certificates[0]["copies_at_decision"]

    elsewhere = destruction.resume(sites.config_b)  # site B's `primary` answers, and is another store
    assert elsewhere.verdict().code == ExitCode.PARTIAL
    assert _pending(elsewhere) == [("store", "primary (Site A)", None)]

    away.rename(sites.a_primary)
    done = destruction.resume(sites.config_a)
    assert done.verdict().code == ExitCode.OK and done.certificates[0]["complete"] is True
    assert not records.holds(Store.open(sites.a_primary), sites.archive)
    a_id = Store.open(sites.a_primary).info["id"]
    assert ("primary", a_id) in {(c["place"], c["store_id"]) for c in done.certificates[0]["copies"]}


def test_copies_listed_by_name_before_store_ids_are_adopted_by_the_configuration_naming_their_store(
        sites: Sites, tmp_path: Path) -> None:
    ids = {name: Store.open(path).info["id"] for name, path in (("primary", sites.a_primary),
                                                                ("secondary", sites.a_secondary))}
    refresh(sites.config_a)
    away = tmp_path / "a-primary-away"
    sites.a_primary.rename(away)
    destruction.destroy(sites.config_a, sites.archive, REASON, LATER)
    with open_catalog_for(sites.config_a) as catalog, catalog.transaction():  # as a catalog from before ids holds it
        catalog.execute("UPDATE destruction_copies SET place = 'primary', site = NULL, host = NULL WHERE place = ?",
                        (ids["primary"],))
        catalog.execute("INSERT INTO destruction_copies (archive, kind, place, removed, note) "
                        "VALUES (?, 'store', 'secondary', NULL, '')", (sites.archive,))  # and its id listed too

    away.rename(sites.a_primary)
    done = destruction.resume(sites.config_a)  # opening the catalog renames them: the same copies, by id
    assert done.verdict().code == ExitCode.OK
    copies = done.certificates[0]["copies"]
    assert sorted((c["place"], c["store_id"], c["status"]) for c in copies) == [
        ("primary", ids["primary"], "removed"), ("secondary", ids["secondary"], "removed")]
    assert not records.holds(Store.open(sites.a_primary), sites.archive)
    with open_catalog_for(sites.config_a) as catalog:
        assert destructions.legacy_places(catalog) == set()
