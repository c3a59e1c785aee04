"""DICOM patients in the catalog: a received instance belongs to the Pinnacle patient of its site and MRN when the
birth dates agree, else to a patient of its own (named when the birth dates differ); a DICOM patient is merged
into the Pinnacle patient of its MRN when one appears; `catalog rebuild` gives the same links; search finds both;
on SQLite and on PostgreSQL (a French ICU collation), which give the same links."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from kit.catalog import new_url
from kit.config import add_tables
from kit.files import set_field
from kit.vault import Vault
from rtvault.catalog.db import Catalog
from rtvault.catalog.patients import patient_detail
from rtvault.catalog.search import Criteria, search
from rtvault.configured import open_catalog_for
from rtvault.demo import generate_database
from rtvault.dicom.received import dataset_of, describe, part10
from rtvault.jobs.catalog import rebuild_all, refresh
from rtvault.jobs.dicom_receive import Receiver
from rtvault.store import Store


def received(name: str, patient_id: str, birth: str, person: str = "DICOM^ONLY") -> tuple[bytes, dict]:
    """A pydicom sample made the object of another patient, as the node receives it."""
    dataset = pydicom.dcmread(get_testdata_file(name))
    dataset.PatientID, dataset.PatientBirthDate, dataset.PatientName = patient_id, birth, person
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    data, syntax = dataset_of(buffer.getvalue())
    tags = describe(buffer.getvalue())
    return part10(data, tags["SOPClassUID"], tags["SOPInstanceUID"], syntax), tags


def receive(vault: Vault, *objects: tuple[bytes, dict], sender: str = "SCANNER") -> None:
    with Receiver(vault.config) as receiver:
        for data, tags in objects:
            receiver.put(data, tags, calling_ae=sender)


def site(base: Path, catalog_url: str) -> Vault:
    """Two Pinnacle patients backed up and indexed in the catalog of `catalog_url`."""
    generate_database(base / "db", patients=2, seed=5, image_mb=0.05)
    vault = Vault(base / "db", base / "store", base / "rtvault.toml")
    vault.configure()
    add_tables(vault.config_path, catalog={"url": catalog_url})
    Store.init(vault.store_path)
    vault.backup()
    refresh(vault.config)
    return vault


@pytest.fixture
def vault(tmp_path: Path, catalog_url: str) -> Vault:
    return site(tmp_path, catalog_url)


def pinnacle(catalog: Catalog) -> list[tuple[str, str, str]]:
    """(key, MRN, birth date) of the Pinnacle patients."""
    return catalog.execute("SELECT key, mrn, birth_date FROM patients WHERE status <> 'received' ORDER BY key")


def links(catalog: Catalog) -> list[tuple[str, str, str]]:
    """(SOP instance, patient key, patient status) of every received instance: what a rebuild must give again."""
    return catalog.execute("SELECT i.sop_instance, p.key, p.status FROM dicom_instances i "
                           "JOIN patients p ON p.id = i.patient ORDER BY i.sop_instance, i.store")


def dicom_date(iso: str) -> str:
    return iso.replace("-", "")


def test_same_mrn_and_birth_date_one_patient_with_both(vault: Vault) -> None:
    with open_catalog_for(vault.config) as catalog:
        (key, mrn, birth), _ = pinnacle(catalog)
    receive(vault, received("CT_small.dcm", f" {mrn.lower()} ", dicom_date(birth)),
            received("rtplan.dcm", mrn, dicom_date(birth)))
    with open_catalog_for(vault.config) as catalog:
        assert {(k, s) for _, k, s in links(catalog)} == {(key, "active")}  # linked as soon as received
        found = search(catalog, Criteria(mrn=mrn)).patients
        assert [(p["key"], p["dicom"]["studies"] > 0, len(p["locations"])) for p in found] == [(key, True, 1)]
        detail = patient_detail(catalog, key)
        assert detail is not None and detail["versions"] and detail["dicom"]["kept_apart"] == []
        series = [s for study in detail["dicom"]["studies"] for s in study["series"]]
        assert {s["modality"] for s in series} == {"CT", "RTPLAN"}
        assert all(s["senders"] == ["SCANNER"] and s["instances"] == 1 for s in series)
    [summary] = refresh(vault.config)  # the receipt indexed at the sync: the same link, nothing named
    assert summary.dicom_unlinked == [] and not summary.problems


def test_birth_date_differs_two_patients_and_a_named_problem(vault: Vault) -> None:
    with open_catalog_for(vault.config) as catalog:
        (key, mrn, birth), _ = pinnacle(catalog)
    receive(vault, received("CT_small.dcm", mrn, "19000101", "OTHER^PERSON"))
    [summary] = refresh(vault.config)
    [problem] = summary.dicom_unlinked
    assert mrn in problem and "1900-01-01" in problem and key in problem and birth in problem
    assert not summary.problems  # named, not a failure of the sync
    with open_catalog_for(vault.config) as catalog:
        found = search(catalog, Criteria(mrn=mrn)).patients
        assert sorted((p["status"], p["source"]) for p in found) == [("active", "pinnacle"), ("received", "dicom")]
        own = next(p for p in found if p["status"] == "received")
        assert (own["last_name"], own["first_name"], own["birth_date"]) == ("OTHER", "PERSON", "1900-01-01")
        assert own["dicom"]["instances"] == 1 and own["locations"] == []
        detail = patient_detail(catalog, own["key"])
        assert detail is not None
        assert [(k["key"], k["birth_date"]) for k in detail["dicom"]["kept_apart"]] == [(key, birth)]
        theirs = patient_detail(catalog, key)
        assert theirs is not None and [k["key"] for k in theirs["dicom"]["kept_apart"]] == [own["key"]]
        assert theirs["dicom"]["studies"] == []
        # the name is searchable, alone or with a first name
        assert [p["key"] for p in search(catalog, Criteria(last_name="other")).patients] == [own["key"]]
        assert [p["key"] for p in search(catalog, Criteria(last_name="othr", first_name="person")).patients] == \
            [own["key"]]
        assert [p["key"] for p in search(catalog, Criteria(status="received")).patients] == [own["key"]]


def test_dicom_first_then_pinnacle_merged_at_next_sync_and_rebuild_gives_the_same(vault: Vault) -> None:
    receive(vault, received("CT_small.dcm", "LATE-0042", "19570314", "LATER^ANNE"),
            received("rtdose.dcm", "LATE-0042", "", "LATER^ANNE"))
    with open_catalog_for(vault.config) as catalog:
        [(_, own, status)] = set(links(catalog)[:1])
        assert status == "received"
        assert [p["key"] for p in search(catalog, Criteria(mrn="late0042")).patients] == [own]
    patient_file = next(vault.root.rglob("Patient_*/Patient"))
    set_field(patient_file, "MedicalRecordNumber", "LATE-0042")
    set_field(patient_file, "DateOfBirth", "1957-03-14")
    vault.backup()
    [summary] = refresh(vault.config)
    assert summary.dicom_unlinked == []
    with open_catalog_for(vault.config) as catalog:
        merged = links(catalog)
        [(key, status)] = {(k, s) for _, k, s in merged}
        assert key != own and status == "active"
        assert catalog.one("SELECT 1 FROM patients WHERE key = ?", (own,)) is None  # the DICOM patient is gone
        assert [p["key"] for p in search(catalog, Criteria(last_name="later")).patients] == []
        [found] = search(catalog, Criteria(mrn="LATE-0042")).patients
        assert found["key"] == key and found["dicom"]["instances"] == 2
    rebuild_all(vault.config)
    with open_catalog_for(vault.config) as catalog:
        assert links(catalog) == merged


def test_rebuild_gives_the_same_links_and_searches_on_sqlite_and_postgresql(request: pytest.FixtureRequest,
                                                                          tmp_path: Path) -> None:
    vault = site(tmp_path, new_url(request, "sqlite", tmp_path))
    with open_catalog_for(vault.config) as catalog:
        (_, mrn, birth), (_, other, _) = pinnacle(catalog)
    receive(vault, received("CT_small.dcm", mrn.lower(), dicom_date(birth), "LINKED^Ève"),
            received("rtplan.dcm", other, "19000101", "KEPT^Apart"),  # another person's number
            received("rtdose.dcm", "ÉTR-001", "", "ÉTRANGER^Zoé"), received("MR_small.dcm", "etr_001", "", "b^z"))
    found = []
    for url in (vault.config.catalog.url, request.getfixturevalue("postgres_server").new_database()):
        vault.configure()
        add_tables(vault.config_path, catalog={"url": url})
        [summary] = rebuild_all(vault.config).summaries
        with open_catalog_for(vault.config) as catalog:
            searched = [(p["key"], p["status"], p["last_name"], p["dicom"]) for criteria in (
                Criteria(mrn=mrn), Criteria(mrn=other), Criteria(mrn="etr001"), Criteria(status="received"),
                Criteria(last_name="etranger"), Criteria(first_name="zoe")) for p in search(catalog, criteria).patients]
            found.append((links(catalog), searched, summary.dicom_unlinked))
    assert found[0] == found[1]
    assert len({k for _, k, _ in found[0][0]}) == 4 and len(found[0][2]) == 1
