"""Two sites sharing one catalog (PostgreSQL, as a central archive would; SQLite too): each names its store
`primary`, and neither site's backup or sync hides the other's patients, because the catalog knows a store by
the id in its rtvault-store.json, not by the name a configuration gives it."""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from kit.catalog import DIALECTS, new_url
from kit.config import write_config
from kit.web import PASSWORD
from rtvault.catalog import open_catalog
from rtvault.catalog.search import Criteria, search
from rtvault.catalog.users import add_user, create_token
from rtvault.config import Config, load
from rtvault.configured import init_stores, open_catalog_for, open_store, store_labels
from rtvault.demo import generate_database
from rtvault.jobs.backup import backup
from rtvault.jobs.catalog import refresh
from rtvault.store import Store
from rtvault.web.app import create_app

with warnings.catch_warnings():  # starlette asks for httpx2, not installed; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

PATIENTS = 4
V1_STORE = Path(__file__).resolve().parents[1] / "fixtures" / "store-v1" / "store"
STORE_IDS = "0017_store_ids"


@dataclass
class Site:
    config_path: Path
    store_path: Path

    @property
    def config(self) -> Config:
        return load(self.config_path)


def _site(base: Path, url: str, seed: int, label: str) -> Site:
    generate_database(base / "db", patients=PATIENTS, seed=seed, image_mb=0.05)
    Store.init(base / "store")
    path = write_config(base / "rtvault.toml", root=base / "db", stores={"primary": base / "store"},
                        catalog={"url": url}, site={"name": label})
    return Site(path, base / "store")


@pytest.fixture(params=DIALECTS)
def sites(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Site, Site]:
    url = new_url(request, request.param, tmp_path)
    return _site(tmp_path / "a", url, 21, "Site A"), _site(tmp_path / "b", url, 22, "Site B")


def _shown(site: Site) -> list[dict]:
    with open_catalog_for(site.config) as catalog:
        return search(catalog, Criteria(), per_page=50, shown=store_labels(site.config, catalog)).patients


def test_two_sites_naming_their_store_primary_share_one_catalog(sites: tuple[Site, Site]) -> None:
    a, b = sites
    for site in (a, b):
        done = backup(site.config, open_store(site.config, None))
        assert done.verdict().code == 0 and done.catalog is None
    assert len(_shown(a)) == 2 * PATIENTS
    refresh(a.config)  # a sync of one site keeps the other's snapshots
    refresh(b.config)
    shown = _shown(b)
    assert len(shown) == 2 * PATIENTS
    assert all(p["status"] == "active" for p in shown)


def test_each_site_sees_its_own_store_by_name_and_the_other_by_its_site(sites: tuple[Site, Site]) -> None:
    a, b = sites
    for site in (a, b):
        backup(site.config, open_store(site.config, None))
    b_id = open_store(b.config, None).info["id"]
    stores = {loc["store"] for p in _shown(a) for loc in p["locations"]}
    assert "primary" in stores and len(stores) == 2
    other = next(s for s in stores if s != "primary")
    assert "Site B" in other or b_id[:8] in other


def test_a_viewer_of_one_site_sees_only_that_sites_patients_on_the_shared_catalog(sites: tuple[Site, Site]) -> None:
    a, b = sites
    for site in (a, b):
        backup(site.config, open_store(site.config, None))
    everyone = _shown(a)
    assert sorted(p["site"] for p in everyone) == ["Site A"] * PATIENTS + ["Site B"] * PATIENTS
    with open_catalog_for(a.config) as catalog:
        add_user(catalog, "viewer-b", "viewer", PASSWORD, sites=["Site B"])
        token = create_token(catalog, "viewer-b")
        only_b = search(catalog, Criteria(), per_page=50, sites=["Site B"]).patients
    assert {p["site"] for p in only_b} == {"Site B"} and len(only_b) == PATIENTS
    client = TestClient(create_app(a.config), headers={"Authorization": f"Bearer {token}"})  # Site A's web server
    found = client.get("/api/search", params={"status": "active", "per_page": "50"}).json()["patients"]
    assert sorted(p["key"] for p in found) == sorted(p["key"] for p in only_b)
    of_a = next(p["key"] for p in everyone if p["site"] == "Site A")
    assert client.get(f"/api/patients/{of_a}").status_code == 404
    assert client.get(f"/api/patients/{only_b[0]['key']}").json()["site"] == "Site B"


def _as_before_store_ids(url: str, store_id: str, name: str) -> None:
    """The catalog as rtvault wrote it before migration 0017: rows naming the store by its configured name."""
    with open_catalog(url) as db, db.transaction():
        for table in ("locations", "indexed"):
            db.execute(f"UPDATE {table} SET store = ? WHERE store = ?", (name, store_id))
        db.execute("DROP TABLE stores")
        db.execute("DELETE FROM schema_migrations WHERE name = ?", (STORE_IDS,))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_catalog_written_before_store_ids_is_upgraded_through_the_configuration(
        request: pytest.FixtureRequest, dialect: str, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(V1_STORE, store)  # a store the previous release made
    url = new_url(request, dialect, tmp_path)
    config = load(write_config(tmp_path / "rtvault.toml", root=tmp_path / "db", stores={"primary": store},
                               catalog={"url": url}))
    refresh(config)
    seen = _shown(Site(config.file, store))
    assert seen and {loc["store"] for p in seen for loc in p["locations"]} == {"primary"}
    sid = Store.open(store).info["id"]
    _as_before_store_ids(url, sid, "primary")
    with open_catalog(url) as db, db.transaction():  # a store no configuration names any more: left as it was
        db.execute("INSERT INTO indexed (store, kind, ref, time) VALUES ('gone', 'snapshot', 'x', '2020-01-01T00:00Z')")
    assert _shown(Site(config.file, store)) == seen  # renamed on opening: nothing lost, nothing read again
    with open_catalog(url) as db:
        assert {r[0] for r in db.execute("SELECT DISTINCT store FROM indexed")} == {sid, "gone"}
        assert db.execute("SELECT id, name FROM stores") == [(sid, "primary")]
    again = refresh(config)
    assert (again[0].snapshots_added, again[0].snapshots_removed, again[0].archives_added) == (0, 0, 0)


@pytest.mark.slow
def test_two_sites_share_one_s3_bucket_a_prefix_each_and_one_catalog(seaweed, tmp_path: Path) -> None:
    bucket, url = seaweed.new_bucket(), f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    sites = []
    for label, seed in (("a", 31), ("b", 32)):
        base = tmp_path / label
        generate_database(base / "db", patients=PATIENTS, seed=seed, image_mb=0.05)
        path = write_config(base / "rtvault.toml", root=base / "db", catalog={"url": url},
                            stores={"primary": seaweed.store_settings(bucket, f"site-{label}")})
        config = load(path)
        init_stores(config)
        assert backup(config, open_store(config, None)).verdict().code == 0
        sites.append(Site(path, base))
    refresh(sites[0].config)
    shown = _shown(sites[0])
    assert len(shown) == 2 * PATIENTS and all(p["status"] == "active" for p in shown)
    assert len({loc["store_id"] for p in shown for loc in p["locations"]}) == 2
