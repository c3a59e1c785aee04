"""The patient access bundle as a library caller gets it (`jobs.bundle.export_bundle`): a patient whose name is
markup and format fields is printed as text in the summary and the README; a bundle whose CT the store lost is
written without slices, what is missing named, and the destination is whole or absent."""

from __future__ import annotations

from pathlib import Path

import pypdf
import pytest

from kit.archive import make_vault
from kit.files import set_field
from kit.store import lose
from rtvault.errors import InputError
from rtvault.jobs.bundle import export_bundle
from rtvault.store.objects import data_key

HOSTILE = "<b>Zoé</b> & {mrn} %s"


def _text(pdf: Path) -> str:
    return " ".join(" ".join(page.extract_text() for page in pypdf.PdfReader(pdf).pages).split())


@pytest.fixture
def vault(tmp_path: Path):
    from rtvault.demo import generate_database

    generate_database(tmp_path / "pinnacle", patients=1, seed=5, image_mb=0.05)
    patient = next((tmp_path / "pinnacle").glob("Institution_*/Mount_*/Patient_*"))
    set_field(patient / "Patient", "FirstName", HOSTILE)
    made = make_vault(tmp_path / "site", tmp_path / "pinnacle")
    made.backup()
    return made


def test_a_name_made_of_markup_is_printed_as_text(tmp_path: Path, vault) -> None:
    path = vault.patient_paths()[0]
    report = export_bundle(vault.config, vault.store, path, tmp_path / "bundle", lang="en")
    assert report.missing == [] and report.verdict().code == 0
    assert HOSTILE in _text(tmp_path / "bundle" / "summary.pdf")
    readme = (tmp_path / "bundle" / "README.txt").read_text(encoding="utf-8")
    assert HOSTILE in readme and "Produced by rtvault" in readme
    with pytest.raises(InputError, match="unknown language"):
        export_bundle(vault.config, vault.store, path, tmp_path / "other", lang="de")
    assert not (tmp_path / "other").exists()


def test_a_ct_the_store_lost_gives_a_bundle_without_slices_and_names_it(tmp_path: Path, vault) -> None:
    path = vault.patient_paths()[0]
    store = vault.store
    snapshot = store.manifests()[-1]
    tree = store.get_tree(snapshot.patient(path).tree)
    lose(vault.store_path, data_key(tree.by_name()["ImageSet_0.img"].hash))
    report = export_bundle(vault.config, vault.store, path, tmp_path / "bundle")
    assert report.verdict().code == 9
    assert any("no slices in summary.pdf" in m for m in report.missing), report.missing
    summary = _text(tmp_path / "bundle" / "summary.pdf")
    assert "Non exporté" in summary and "Pas de coupe" in summary and "UM par fraction" in summary
    assert "Non exporté" in (tmp_path / "bundle" / "README.txt").read_text(encoding="utf-8")
    assert not list(tmp_path.glob(".bundle*"))  # no temporary sibling left


@pytest.mark.slow  # a backup, an import and two bundles (WeasyPrint): about 5 s
def test_the_received_objects_are_in_the_bundle_byte_for_byte_and_one_unreadable_is_named(tmp_path: Path) -> None:
    import pydicom
    from pydicom.data import get_testdata_file

    from kit.vault import Vault
    from rtvault.demo import generate_database
    from rtvault.dicom.received import dataset_of, describe, part10
    from rtvault.jobs.dicom_import import import_dicom
    from rtvault.store import Store

    generate_database(tmp_path / "db", patients=1, seed=5, image_mb=0.05)
    vault = Vault(tmp_path / "db", tmp_path / "store", tmp_path / "rtvault.toml")
    vault.configure()
    Store.init(vault.store_path)
    vault.backup()
    [patient] = vault.store.manifests()[-1].patients
    medium = tmp_path / "medium"
    medium.mkdir()
    for name in ("CT_small.dcm", "rtplan.dcm", "rtstruct.dcm"):
        dataset = pydicom.dcmread(get_testdata_file(name), force=True)
        dataset.PatientID = patient.mrn
        dataset.save_as(medium / name)
    other = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    other.PatientID = "SOMEONE-ELSE"
    other.save_as(medium / "other.dcm")
    assert import_dicom(vault.config, [medium]).stored == 4
    stored = {}
    for path in medium.iterdir():
        tags = describe(path.read_bytes())
        data, syntax = dataset_of(path.read_bytes())
        stored[tags["SOPInstanceUID"]] = (part10(data, tags["SOPClassUID"], tags["SOPInstanceUID"], syntax),
                                          tags["Modality"])

    report = export_bundle(vault.config, vault.store, patient.path, tmp_path / "bundle", lang="en")
    assert report.missing == [] and report.verdict().code == 0 and report.received == 3
    listed = report.to_json()["received_files"]
    assert len(listed) == 3 and {f["sop_instance"] for f in listed} == set(stored) - {str(other.SOPInstanceUID)}
    for item in listed:  # byte for byte as stored, under DICOM/, and in the DICOMDIR
        assert (tmp_path / "bundle" / item["path"]).read_bytes() == stored[item["sop_instance"]][0]
        assert item["modality"] == stored[item["sop_instance"]][1]
    in_dicomdir = {r.ReferencedSOPInstanceUIDInFile for r in
                   pydicom.dcmread(tmp_path / "bundle" / "DICOM" / "DICOMDIR").DirectoryRecordSequence
                   if "ReferencedFileID" in r}
    assert {f["sop_instance"] for f in listed} <= in_dicomdir and len(in_dicomdir) > 3
    readme = (tmp_path / "bundle" / "README.txt").read_text(encoding="utf-8")
    assert "Received DICOM objects" in readme and all(f"{f['path']}  {f['modality']}" in readme for f in listed)
    summary = _text(tmp_path / "bundle" / "summary.pdf")
    assert "Received DICOM objects" in summary

    lost_uid = next(uid for uid, (_, modality) in stored.items() if modality == "RTPLAN")
    with open_catalog(vault) as catalog:
        [(digest,)] = catalog.execute("SELECT hash FROM dicom_instances WHERE sop_instance = ?", (lost_uid,))
    lose(vault.store_path, data_key(digest))
    partial = export_bundle(vault.config, vault.store, patient.path, tmp_path / "partial")
    assert partial.verdict().code == 9 and partial.received == 2
    assert len(partial.missing) == 1 and f"received object {lost_uid} (RTPLAN)" in partial.missing[0]
    readme = (tmp_path / "partial" / "README.txt").read_text(encoding="utf-8")
    assert "Objets DICOM reçus" in readme and lost_uid in readme.split("Non exporté")[1]


def open_catalog(vault):
    from rtvault.configured import open_catalog_for

    return open_catalog_for(vault.config)
