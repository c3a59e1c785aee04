"""`GET /patients/{key}/dicom.zip`: a patient's received DICOM objects handed back by the web interface, byte for
byte as stored, under a DICOMDIR pydicom reads; narrowed to a study or a series; an operator's only; a patient of
another site unknown; an object no store can give named (in the zip and a header) and audited as partial, the rest
delivered from whichever store holds it; nothing readable a clear 503, never a 500."""

from __future__ import annotations

import io
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from kit.config import write_config
from kit.store import lose
from kit.web import PASSWORD, Site
from rtvault.catalog import open_catalog
from rtvault.catalog.users import add_user, create_token
from rtvault.config import load
from rtvault.configured import init_stores
from rtvault.dicom.received import dataset_of, describe, part10
from rtvault.jobs.dicom_receive import Receiver
from rtvault.store.objects import data_key
from rtvault.web.app import create_app

SAMPLES = ("CT_small.dcm", "rtplan.dcm", "rtstruct.dcm", "rtdose.dcm")  # four studies or series of one patient
pytestmark = pytest.mark.slow  # receivers into two stores, a zip per test: about 6 s in all

USERS = (("admin", "admin", ()), ("operator", "operator", ()), ("viewer", "viewer", ()),
         ("site_a_operator", "operator", ("Site A",)))


def as_received(name: str, patient_id: str) -> tuple[bytes, dict]:
    """A pydicom sample sent for `patient_id`, as the node stores it (its data set behind rtvault's meta)."""
    dataset = pydicom.dcmread(get_testdata_file(name), force=True)
    dataset.PatientID = patient_id
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    tags = describe(out.getvalue())
    body, syntax = dataset_of(out.getvalue())
    data = part10(body, tags["SOPClassUID"], tags["SOPInstanceUID"], syntax)
    return data, describe(data)


@dataclass
class Received:
    web: Site
    stores: dict[str, Path]
    key: str  # the patient whose objects were received
    other_site: str  # a patient of Site B
    sent: dict[str, tuple[bytes, dict, str]]  # SOP instance UID → (bytes stored, tags, hash)


def receive(config_path: Path, store: str, objects: list[tuple[bytes, dict]]) -> list[str]:
    with Receiver(load(config_path), store_name=store) as receiver:
        return [receiver.put(data, tags, calling_ae="TPS").hash for data, tags in objects]


def build(root: Path) -> Received:
    """Two stores: the four samples received into the primary for patient RT-ONE, the plan also into the offsite
    store; an MR received at Site B for patient B-ONE. Users of each role, and an operator limited to Site A."""
    stores = {"primary": root / "primary", "offsite": root / "offsite"}
    common = {"stores": stores, "catalog": {"url": f"sqlite:///{root / 'catalog.sqlite'}"}}
    path_a = write_config(root / "a.toml", site={"name": "Site A"}, **common)
    path_b = write_config(root / "b.toml", site={"name": "Site B"}, **common)
    config = load(path_a)
    init_stores(config)
    objects = [as_received(name, "RT-ONE") for name in SAMPLES]
    hashes = receive(path_a, "primary", objects)
    receive(path_a, "offsite", [objects[1]])
    receive(path_b, "primary", [as_received("MR_small.dcm", "B-ONE")])
    tokens = {}
    with open_catalog(config.catalog.url) as db:
        for name, role, sites in USERS:
            add_user(db, name, role, PASSWORD, sites=sites)
            tokens[name] = create_token(db, name, "tests")
        key = db.one("SELECT key FROM patients WHERE mrn = 'RT-ONE'")[0]
        other = db.one("SELECT key FROM patients WHERE mrn = 'B-ONE'")[0]
    sent = {tags["SOPInstanceUID"]: (data, tags, digest) for (data, tags), digest in zip(objects, hashes, strict=True)}
    return Received(Site(root, config, create_app(config), tokens), stores, key, other, sent)


@pytest.fixture(scope="module")
def received(tmp_path_factory: pytest.TempPathFactory) -> Received:
    return build(tmp_path_factory.mktemp("dicom-download"))


@pytest.fixture
def own_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The web's temporary area, here of this test alone: what a download leaves behind is seen."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def files_of(answer, into: Path) -> tuple[dict[str, bytes], zipfile.ZipFile]:
    """SOP instance UID → bytes of each file the zip's DICOMDIR references (each one exists), read with pydicom
    from the zip unpacked into a new folder of `into`."""
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    out = Path(tempfile.mkdtemp(dir=into))
    archive.extractall(out)
    found = {}
    for record in pydicom.dcmread(out / "DICOMDIR").DirectoryRecordSequence:
        if "ReferencedFileID" in record:
            data = out.joinpath(*record.ReferencedFileID).read_bytes()
            found[record.ReferencedSOPInstanceUIDInFile] = data
    return found, archive


def test_the_zip_holds_each_received_object_byte_for_byte_under_its_dicomdir(received: Received,
                                                                              own_temp: Path) -> None:
    tmp = own_temp
    answer = received.web.bearer("operator").get(f"/api/patients/{received.key}/dicom.zip")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    assert f"-{received.key}-dicom.zip" in answer.headers["content-disposition"]
    assert (answer.headers["x-rtvault-instances"], answer.headers["x-rtvault-missing"]) == ("4", "0")
    assert list(own_temp.iterdir()) == []  # the zip, its folder and the File-set's staged files gone once sent
    found, archive = files_of(answer, tmp)
    assert found == {uid: data for uid, (data, _, _) in received.sent.items()}  # byte for byte, each listed
    assert "MANQUANT-MISSING.txt" not in archive.namelist() and archive.namelist()[0] == "DICOMDIR"
    [entry] = received.web.audit(action="dicom_download", patient=received.key)[:1]
    assert (entry["user"], entry["result"]) == ("operator", "ok")
    assert entry["detail"] == {"instances": 4, "missing": 0, "stores": ["primary"]}
    page = received.web.login("operator").get(f"/patients/{received.key}/dicom.zip")  # the page's own address
    assert page.status_code == 200 and files_of(page, tmp)[0].keys() == received.sent.keys()


def test_a_study_or_a_series_is_downloaded_alone(received: Received, tmp_path: Path) -> None:
    tmp = tmp_path
    ct = next(tags for _, tags, _ in received.sent.values() if tags["Modality"] == "CT")
    plan = next(tags for _, tags, _ in received.sent.values() if tags["Modality"] == "RTPLAN")
    client = received.web.bearer("operator")
    answer = client.get(f"/api/patients/{received.key}/dicom.zip", params={"study": ct["StudyInstanceUID"]})
    assert answer.status_code == 200 and set(files_of(answer, tmp)[0]) == {
        uid for uid, (_, tags, _) in received.sent.items() if tags["StudyInstanceUID"] == ct["StudyInstanceUID"]}
    answer = client.get(f"/api/patients/{received.key}/dicom.zip", params={"series": plan["SeriesInstanceUID"]})
    assert list(files_of(answer, tmp)[0]) == [plan["SOPInstanceUID"]]
    assert files_of(answer, tmp)[0][plan["SOPInstanceUID"]] == received.sent[plan["SOPInstanceUID"]][0]
    entry = received.web.audit(action="dicom_download", patient=received.key)[0]
    assert entry["detail"]["series"] == plan["SeriesInstanceUID"] and entry["detail"]["instances"] == 1
    mismatch = client.get(f"/api/patients/{received.key}/dicom.zip",
                          params={"study": ct["StudyInstanceUID"], "series": plan["SeriesInstanceUID"]})
    assert mismatch.status_code == 404 and "no received DICOM object" in mismatch.json()["error"]["message"]
    head = client.head(f"/api/patients/{received.key}/dicom.zip", params={"study": ct["StudyInstanceUID"]})
    assert head.status_code == 200 and head.headers["x-rtvault-instances"] == "1" and head.content == b""


def test_the_patient_page_links_the_downloads_for_operators_only(received: Received) -> None:
    english = received.web.login("operator").get(f"/patients/{received.key}", params={"lang": "en"}).text
    assert f'href="/patients/{received.key}/dicom.zip"' in english
    assert "Download all received DICOM objects (4, zip with DICOMDIR)" in english
    assert english.count('class="dicom-download-study"') == len({t["StudyInstanceUID"]
                                                                 for _, t, _ in received.sent.values()})
    assert english.count('class="dicom-download-series"') == 4 and "Download series" in english
    french = received.web.login("operator").get(f"/patients/{received.key}", params={"lang": "fr"}).text
    assert "Télécharger tous les objets DICOM reçus (4, zip avec DICOMDIR)" in french
    assert "Télécharger cette étude (zip)" in french
    seen = received.web.login("viewer").get(f"/patients/{received.key}", params={"lang": "en"}).text
    assert "Received DICOM data" in seen and "dicom.zip" not in seen


def test_a_viewer_another_site_and_hostile_values_are_refused(received: Received) -> None:
    key = received.key
    assert received.web.bearer("viewer").get(f"/api/patients/{key}/dicom.zip").status_code == 403
    assert received.web.login("viewer").get(f"/patients/{key}/dicom.zip").status_code == 403
    limited = received.web.bearer("site_a_operator")
    assert limited.get(f"/api/patients/{key}/dicom.zip").status_code == 200
    hidden = limited.get(f"/api/patients/{received.other_site}/dicom.zip")
    assert hidden.status_code == 404 and received.other_site in hidden.json()["error"]["message"]
    [refusal] = received.web.audit(action="refused", patient=received.other_site)
    assert refusal["user"] == "site_a_operator"
    assert received.web.bearer("operator").get(f"/api/patients/{received.other_site}/dicom.zip").status_code == 200
    for hostile in ("' OR 1=1 --", "1.2.3/../../etc/passwd", "1" * 65, "1..2", "１.２", "1.2\r\nX-Evil: 1"):
        answer = received.web.bearer("operator").get(f"/api/patients/{key}/dicom.zip", params={"study": hostile})
        assert answer.status_code == 400, hostile
        assert "is not a DICOM UID" in answer.json()["error"]["message"]
    assert received.web.bearer("operator").get("/api/patients/0000000000000000/dicom.zip").status_code == 404
    assert received.web.bearer("operator").get("/api/patients/..%2F..%2Fetc/dicom.zip").status_code == 404
    page = received.web.login("operator").get(f"/patients/{key}/dicom.zip", params={"series": "x'<b>", "lang": "en"})
    assert page.status_code == 400 and "<b>" not in page.text


def test_an_object_no_store_gives_is_named_and_the_rest_delivered_from_any_store(tmp_path: Path) -> None:
    site, tmp = build(tmp_path / "site"), tmp_path
    by_modality = {tags["Modality"]: (uid, data, digest) for uid, (data, tags, digest) in site.sent.items()}
    ct_uid, _, ct_hash = by_modality["CT"]
    plan_uid, plan_bytes, plan_hash = by_modality["RTPLAN"]
    lose(site.stores["primary"], data_key(ct_hash))  # the CT only the primary held
    lose(site.stores["primary"], data_key(plan_hash))  # the plan, which the offsite store holds too
    answer = site.web.bearer("operator").get(f"/api/patients/{site.key}/dicom.zip")
    assert answer.status_code == 200
    assert (answer.headers["x-rtvault-instances"], answer.headers["x-rtvault-missing"]) == ("3", "1")
    assert answer.headers["x-rtvault-missing-objects"] == ct_uid
    found, archive = files_of(answer, tmp)
    assert ct_uid not in found and found[plan_uid] == plan_bytes and len(found) == 3
    missing = archive.read("MANQUANT-MISSING.txt").decode()
    assert ct_uid in missing and "n'ont pas pu être lus" in missing and "could not be read" in missing
    assert plan_uid not in missing
    entry = site.web.audit(action="dicom_download", patient=site.key)[0]
    assert entry["result"].startswith("partial: 1 received object(s) not readable") and ct_uid in entry["result"]
    assert entry["detail"] == {"instances": 3, "missing": 1, "stores": ["offsite", "primary"]}
    ct_study = site.sent[ct_uid][1]["StudyInstanceUID"]
    none = site.web.bearer("operator").get(f"/api/patients/{site.key}/dicom.zip", params={"study": ct_study})
    assert none.status_code == 503 and ct_uid in none.json()["error"]["message"]
    page = site.web.login("operator").get(f"/patients/{site.key}/dicom.zip", params={"study": ct_study, "lang": "fr"})
    assert page.status_code == 503 and "Objets illisibles" in page.text and "réessayez dans une minute" in page.text
    assert site.web.audit(action="dicom_download", patient=site.key)[0]["result"].startswith("none of the 1")
