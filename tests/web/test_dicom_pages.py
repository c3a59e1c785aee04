"""Received DICOM data in the web interface: the search finds DICOM patients by MRN and name and says where they
are ("DICOM, n studies"), the patient page shows the received studies and series beside the Pinnacle versions (in
French and English), a patient kept apart for another birth date is said on both pages, and a user limited to a
site never sees another site's DICOM patients."""

from __future__ import annotations

import pytest

from kit.config import add_tables, write_config
from kit.web import PASSWORD, Site
from rtvault.catalog import dicom, open_catalog
from rtvault.catalog.indexer import store_id
from rtvault.catalog.users import add_user, create_token
from rtvault.config import load
from rtvault.configured import init_stores
from rtvault.demo import generate_database
from rtvault.jobs.backup import backup
from rtvault.jobs.catalog import refresh
from rtvault.store import Store
from rtvault.store.receipts import ReceivedInstance
from rtvault.web.app import create_app

CT = "1.2.840.10008.5.1.4.1.1.2"
RTPLAN = "1.2.840.10008.5.1.4.1.1.481.5"


def instance(n: int, patient_id: str, birth: str, name: str, modality: str, *, sender: str = "CT_SIM",
             plan: str = "") -> ReceivedInstance:
    tags = {"SOPClassUID": RTPLAN if modality == "RTPLAN" else CT, "SOPInstanceUID": f"2.25.{n}",
            "PatientID": patient_id, "PatientName": name, "PatientBirthDate": birth, "PatientSex": "F",
            "StudyInstanceUID": f"2.25.9{patient_id.encode().hex()}", "StudyDate": "20261201",
            "StudyDescription": "THORAX", "SeriesInstanceUID": f"2.25.8{n % 2}{patient_id.encode().hex()}",
            "SeriesNumber": str(n % 2 + 1), "SeriesDescription": f"{modality} series", "Modality": modality,
            **({"RTPlanLabel": plan} if plan else {})}
    return ReceivedInstance(f"{n:064x}", 1000 + n, "2026-12-01T10:00:00Z", calling_ae=sender, tags=tags)


@pytest.fixture(scope="module")
def received(tmp_path_factory: pytest.TempPathFactory) -> tuple[Site, dict[str, str]]:
    """Site A's Pinnacle patients backed up; received: CT and a plan of a Site A patient (same MRN and birth
    date), a CT of the same MRN born another day, a Site A DICOM-only patient and a Site B one. An admin and a
    viewer limited to Site A."""
    root = tmp_path_factory.mktemp("dicom-web")
    generate_database(root / "db", patients=2, seed=7, image_mb=0.05)
    path = write_config(root / "rtvault.toml", stores={"primary": "store"}, catalog={"url": "sqlite:///catalog.sqlite"},
                        backup={"max_shrink": 0.9})
    add_tables(path, **{"sources.a": {"root": root / "db", "site": "Site A"}})
    config = load(path)
    init_stores(config)
    store = Store.open(config.stores["primary"].path)
    backup(config, store)
    refresh(config)
    tokens, keys = {}, {}
    with open_catalog(config.catalog.url) as db:
        key, mrn, born = db.one("SELECT key, mrn, birth_date FROM patients ORDER BY key LIMIT 1")
        keys["linked"], keys["mrn"] = key, mrn
        day = born.replace("-", "")
        dicom.add(db, store_id(store), "r1", "Site A", [
            instance(1, mrn, day, "PINNACLE^SAME", "CT"), instance(2, mrn, day, "PINNACLE^SAME", "RTPLAN",
                                                                   sender="TPS", plan="BREAST L")])
        dicom.add(db, store_id(store), "r2", "Site A", [instance(3, mrn, "19010101", "WRONG^BIRTH", "CT"),
                                                        instance(4, "A-ONLY-1", "19800101", "ALONE^ADA", "CT")])
        dicom.add(db, store_id(store), "r3", "Site B", [instance(5, "B-ONLY-1", "19700101", "BSITE^BOB", "CT")])
        for name, role, sites in (("admin", "admin", ()), ("viewer", "viewer", ("Site A",))):
            add_user(db, name, role, PASSWORD, sites=sites)
            tokens[name] = create_token(db, name, "tests")
    return Site(root, config, create_app(config), tokens), keys


def found(web: Site, who: str, **criteria: str) -> list[dict]:
    answer = web.bearer(who).get("/api/search", params=criteria)
    assert answer.status_code == 200, answer.text
    return answer.json()["patients"]


def test_the_search_finds_dicom_patients_by_mrn_and_name_and_says_where(received: tuple[Site, dict]) -> None:
    web, keys = received
    [bob] = found(web, "admin", mrn="b-only-1")
    assert (bob["last_name"], bob["first_name"], bob["status"], bob["site"], bob["source"]) == \
        ("BSITE", "BOB", "received", "Site B", "dicom")
    assert bob["dicom"] == {"studies": 1, "series": 1, "instances": 1, "last_received": "2026-12-01T10:00:00Z"}
    both = found(web, "admin", mrn=keys["mrn"])
    assert sorted(p["status"] for p in both) == ["active", "received"]
    linked = next(p for p in both if p["key"] == keys["linked"])
    assert linked["dicom"]["instances"] == 2 and linked["locations"]
    assert [p["key"] for p in found(web, "admin", last_name="alone", first_name="ada")] == \
        [p["key"] for p in found(web, "admin", mrn="A-ONLY-1")]
    page = web.login("admin").get("/", params={"mrn": "B-ONLY-1", "lang": "en"}).text
    assert "DICOM, 1 study(ies), 1 series, 1 object(s)" in page and "received (DICOM)" in page
    page = web.login("admin").get("/", params={"mrn": "B-ONLY-1", "lang": "fr"}).text
    assert "DICOM, 1 étude(s), 1 série(s), 1 objet(s)" in page and "reçu en DICOM" in page


def test_the_patient_page_shows_the_studies_beside_the_versions(received: tuple[Site, dict]) -> None:
    web, keys = received
    detail = web.bearer("admin").get(f"/api/patients/{keys['linked']}").json()
    assert detail["versions"]
    [study] = detail["dicom"]["studies"]
    assert (study["date"], study["description"], study["modalities"]) == ("2026-12-01", "THORAX", ["CT", "RTPLAN"])
    assert [(s["modality"], s["plan_label"], s["instances"], s["senders"], s["stores"]) for s in study["series"]] == \
        [("RTPLAN", "BREAST L", 1, ["TPS"], ["primary"]), ("CT", "", 1, ["CT_SIM"], ["primary"])]
    [apart] = detail["dicom"]["kept_apart"]
    assert apart["birth_date"] == "1901-01-01" and apart["dicom"]
    english = web.login("admin").get(f"/patients/{keys['linked']}", params={"lang": "en"}).text
    assert "Received DICOM data" in english and "BREAST L" in english and "CT_SIM" in english
    assert "Not linked: patient WRONG BIRTH" in english and "born 1901-01-01" in english
    french = web.login("admin").get(f"/patients/{apart['key']}", params={"lang": "fr"}).text
    assert "Données DICOM reçues" in french and "Non rapproché" in french and keys["linked"] in french
    assert "aucune version Pinnacle" in french and 'id="open-viewer"' not in french


def test_a_user_limited_to_a_site_never_sees_another_sites_dicom_patients(received: tuple[Site, dict]) -> None:
    web, _ = received
    [bob] = found(web, "admin", mrn="B-ONLY-1")
    assert found(web, "viewer", mrn="B-ONLY-1") == []
    assert found(web, "viewer", last_name="bsite") == []
    assert web.bearer("viewer").get(f"/api/patients/{bob['key']}").status_code == 404
    assert web.login("viewer").get(f"/patients/{bob['key']}").status_code == 404
    [ada] = found(web, "viewer", last_name="alone")
    assert ada["site"] == "Site A" and ada["dicom"]["instances"] == 1
