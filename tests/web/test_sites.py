"""Two sites' sources in one store and one catalog: each patient carries the site and source it was seen in
(search, the patient page, the API; an archive made from a snapshot records them), `site` and `source` are
search criteria, and a user limited to sites sees only those sites' patients: another site's patient is
answered 404 (its existence is not told) on its page, its download and its restore, and the refusal is audited.
An admin sees every site; the catalog rebuilt from the store gives each patient the same site."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.config import add_tables, write_config
from kit.web import PASSWORD, Site, csrf_of
from rtvault.archive import records
from rtvault.catalog import open_catalog
from rtvault.catalog.users import add_user, create_token
from rtvault.config import load
from rtvault.configured import init_stores
from rtvault.demo import evolve_database, generate_database
from rtvault.errors import InputError
from rtvault.jobs.backup import backup
from rtvault.jobs.catalog import rebuild_all
from rtvault.store import Store
from rtvault.web.app import create_app

SITES = {"a": "Site A", "b": "Site B"}
EVERYONE = {"status": "active,archived,deleted", "per_page": "100"}


@pytest.fixture(scope="module")
def two_sites(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """Sources `a` (Site A) and `b` (Site B) backed up into one store, a patient of A deleted and archived;
    an admin, a viewer and an operator limited to Site A, each with a token."""
    root = tmp_path_factory.mktemp("two-sites")
    generate_database(root / "db-a", patients=4, seed=7, image_mb=0.05)
    generate_database(root / "db-b", patients=4, seed=12, image_mb=0.05)
    (root / "restores").mkdir()
    path = write_config(root / "rtvault.toml", stores={"primary": "store"}, catalog={"url": "sqlite:///catalog.sqlite"},
                        web={"restore_dir": "restores"}, backup={"max_shrink": 0.9})
    add_tables(path, **{f"sources.{name}": {"root": root / f"db-{name}", "site": site} for name, site in SITES.items()})
    config = load(path)
    init_stores(config)
    store = Store.open(config.stores["primary"].path)
    backup(config, store)
    evolve_database(root / "db-a", 1)
    backup(config, store)
    tokens = {}
    with open_catalog(config.catalog.url) as db:
        for name, role, sites in (("admin", "admin", ()), ("viewer", "viewer", ("Site A",)),
                                  ("operator", "operator", ("Site A",))):
            add_user(db, name, role, PASSWORD, sites=sites)
            tokens[name] = create_token(db, name, "tests")
    return Site(root, config, create_app(config), tokens)


def _patients(web: Site, who: str, **criteria: str) -> list[dict]:
    answer = web.bearer(who).get("/api/search", params={**EVERYONE, **criteria})
    assert answer.status_code == 200, answer.text
    return answer.json()["patients"]


def _of_site(web: Site, label: str) -> dict:
    return next(p for p in _patients(web, "admin") if p["site"] == label)


def test_each_patient_carries_its_site_and_source(two_sites: Site) -> None:
    everyone = _patients(two_sites, "admin")
    assert {(p["site"], p["source"]) for p in everyone} == {("Site A", "a"), ("Site B", "b")}
    assert len([p for p in everyone if p["site"] == "Site B"]) == 4
    for patient in everyone:
        assert {(loc["site"], loc["source"]) for loc in patient["locations"]} == {(patient["site"], patient["source"])}
    detail = two_sites.bearer("admin").get(f"/api/patients/{_of_site(two_sites, 'Site B')['key']}").json()
    assert (detail["site"], detail["source"]) == ("Site B", "b")
    assert {loc["site"] for v in detail["versions"] for loc in v["locations"]} == {"Site B"}
    page = two_sites.login("admin").get(f"/patients/{detail['key']}", params={"lang": "en"}).text
    assert '<dd id="site">Site B</dd>' in page and '<dd id="source">b</dd>' in page


def test_the_archive_of_a_deleted_patient_records_its_site_and_source(two_sites: Site) -> None:
    store = Store.open(two_sites.config.stores["primary"].path)
    made = [records.load(store, archive_id) for archive_id in records.all_ids(store)]
    assert made and all((r.site, r.source_name) == ("Site A", "a") for r in made)
    stored = json.loads((two_sites.config.stores["primary"].path / records.record_key(made[0].id)).read_text())
    assert (stored["site"], stored["source_name"]) == ("Site A", "a")
    archived = [p for p in _patients(two_sites, "admin", status="archived")]
    assert archived and all(p["site"] == "Site A" for p in archived)
    assert [(loc["site"], loc["source"]) for p in archived for loc in p["locations"] if loc["kind"] == "archive"] \
        == [("Site A", "a")] * len(archived)


def test_search_by_site_and_by_source(two_sites: Site) -> None:
    assert {p["site"] for p in _patients(two_sites, "admin", site="Site B")} == {"Site B"}
    assert len(_patients(two_sites, "admin", site="Site B")) == 4
    assert {p["source"] for p in _patients(two_sites, "admin", source="a")} == {"a"}
    assert _patients(two_sites, "admin", site="Site C") == []
    page = two_sites.login("admin").get("/", params={"site": "Site B", "lang": "fr"}).text
    assert page.count('class="patient-link"') == 4 and "Site / source" in page


def test_a_viewer_limited_to_site_a_finds_only_its_patients(two_sites: Site) -> None:
    for client in (two_sites.bearer("viewer"), two_sites.login("viewer")):
        found = client.get("/api/search", params=EVERYONE).json()["patients"]
        assert sorted(p["key"] for p in found) == sorted(p["key"] for p in _patients(two_sites, "admin", site="Site A"))
        assert {p["site"] for p in found} == {"Site A"}
        assert client.get("/api/search", params={**EVERYONE, "site": "Site B"}).json()["patients"] == []
    name = _of_site(two_sites, "Site B")["last_name"]
    assert all(p["site"] == "Site A" for p in _patients(two_sites, "viewer", last_name=name))


def test_another_sites_patient_is_not_found_and_the_refusal_audited(two_sites: Site) -> None:
    other, own = _of_site(two_sites, "Site B")["key"], _of_site(two_sites, "Site A")["key"]
    viewer = two_sites.login("viewer")
    assert viewer.get(f"/patients/{own}").status_code == 200
    unknown = viewer.get("/patients/0123456789abcdef")
    refused = viewer.get(f"/patients/{other}")
    assert refused.status_code == unknown.status_code == 404
    assert two_sites.bearer("viewer").get(f"/api/patients/{other}").json()["error"]["message"] == \
        f"no patient {other!r} in the catalog"
    operator = two_sites.login("operator")
    assert operator.get(f"/patients/{other}/download").status_code == 404
    assert operator.head(f"/patients/{other}/download").status_code == 404
    token = csrf_of(operator, f"/patients/{own}")
    assert operator.post(f"/api/patients/{other}/restore", headers={"X-CSRF-Token": token}, json={}).status_code == 404
    assert not any((two_sites.root / "restores").iterdir())
    assert operator.get(f"/patients/{own}/download").status_code == 200
    entries = [e for e in two_sites.audit(action="refused") if e["patient"] == other]
    assert {e["user"] for e in entries} == {"viewer", "operator"}
    assert all(e["detail"]["site"] == "Site B" and e["detail"]["sites"] == ["Site A"] for e in entries)
    assert len(entries) >= 5


def test_an_operator_limited_to_site_a_restores_no_patient_of_site_b_from_a_list(two_sites: Site) -> None:
    other = _of_site(two_sites, "Site B")
    client = two_sites.bearer("operator")
    answer = client.post("/api/restore-list", data={"csv": f"mrn\n{other['mrn']}\n"})
    report = answer.json()["report"]
    assert [entry["asked"]["mrn"] for entry in report["not_found"]] == [other["mrn"]]
    assert report["restored"] == [] and "Site B" not in answer.text and other["key"] not in answer.text
    refused = [e for e in two_sites.audit(action="refused") if e["detail"].get("list")]
    assert [(e["user"], e["patient"], e["detail"]["site"]) for e in refused] == [("operator", other["key"], "Site B")]


def test_an_admin_is_never_limited_and_the_limit_is_checked(two_sites: Site) -> None:
    assert {p["site"] for p in _patients(two_sites, "admin")} == {"Site A", "Site B"}
    with open_catalog(two_sites.config.catalog.url) as db:
        with pytest.raises(InputError, match="an admin sees every site"):
            add_user(db, "boss", "admin", PASSWORD, sites=["Site A"])
        with pytest.raises(InputError, match="not a site label"):
            add_user(db, "blank", "viewer", PASSWORD, sites=["  "])


def test_the_catalog_rebuilt_from_the_store_gives_the_same_sites(two_sites: Site) -> None:
    before = {p["key"]: (p["site"], p["source"], p["status"]) for p in _patients(two_sites, "admin")}
    rebuild_all(two_sites.config)
    assert {p["key"]: (p["site"], p["source"], p["status"]) for p in _patients(two_sites, "admin")} == before


def test_a_store_without_site_labels_gives_its_patients_the_stores_site(tmp_path: Path) -> None:
    generate_database(tmp_path / "db", patients=2, seed=3, image_mb=0.05)
    config = load(write_config(tmp_path / "rtvault.toml", root=tmp_path / "db", stores={"primary": "store"},
                               catalog={"url": "sqlite:///catalog.sqlite"}, site={"name": "CHU Exemple"}))
    init_stores(config)
    backup(config, Store.open(config.stores["primary"].path))
    with open_catalog(config.catalog.url) as db:
        assert db.execute("SELECT DISTINCT site, source FROM patients") == [("CHU Exemple", "pinnacle")]


def test_another_sites_patient_is_not_shown_in_the_viewer_and_the_refusal_audited(two_sites: Site) -> None:
    other, own = _of_site(two_sites, "Site B")["key"], _of_site(two_sites, "Site A")["key"]
    viewer = two_sites.login("viewer")
    assert viewer.get(f"/patients/{own}/view").status_code == 200
    for path in (f"/patients/{other}/view", f"/patients/{other}/view/slice.png", f"/patients/{other}/view/dvh.svg",
                 f"/api/patients/{other}/view"):
        assert viewer.get(path).status_code == 404, path
    assert "Site B" not in viewer.get(f"/patients/{other}/view").text
    refused = [e for e in two_sites.audit(action="refused", user="viewer") if e["patient"] == other
               and e["detail"]["site"] == "Site B"]
    assert len(refused) >= 4
