"""`rtvault export dicom --what pinnacle|received|all`: the objects the DICOM node received for a patient written
beside its Pinnacle version, byte for byte as stored, one DICOMDIR covering both; a patient the node alone knows
exported by its PatientID; what the node has not sealed yet named."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from kit.cli import rtvault_json
from kit.dicom import dciodvfy_errors
from kit.dicom_export import files_by_modality
from kit.vault import Vault
from rtvault.demo import generate_database
from rtvault.dicom.received import dataset_of, describe, part10
from rtvault.errors import NotFound
from rtvault.jobs.catalog import refresh
from rtvault.jobs.dicom_export import export_dicom
from rtvault.jobs.dicom_import import import_dicom
from rtvault.jobs.dicom_receive import Receiver
from rtvault.store import Store

pytestmark = pytest.mark.slow  # a backup, exports and dciodvfy: about 3 s

RECEIVED = ("CT_small.dcm", "rtplan.dcm", "rtstruct.dcm")


class Site:
    """One Pinnacle patient backed up, three objects received for it (its MRN as PatientID) and one for a patient
    the node alone knows."""

    def __init__(self, base: Path) -> None:
        self.base = base
        generate_database(base / "db", patients=1, seed=5, image_mb=0.05)
        self.vault = Vault(base / "db", base / "store", base / "rtvault.toml")
        self.vault.configure()
        Store.init(self.vault.store_path)
        self.vault.backup()
        [self.patient] = self.vault.store.manifests()[-1].patients
        medium = base / "medium"
        medium.mkdir()
        for name in RECEIVED:
            dataset = pydicom.dcmread(get_testdata_file(name), force=True)
            dataset.PatientID = self.patient.mrn
            dataset.save_as(medium / name)
        alone = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
        alone.PatientID = "MR-ONLY-1"
        alone.save_as(medium / "alone.dcm")
        assert import_dicom(self.vault.config, [medium]).stored == 4
        self.stored = {describe(p.read_bytes())["SOPInstanceUID"]: _as_stored(p.read_bytes())
                       for p in medium.iterdir()}

    def export(self, name: str, key: str, what: str) -> Path:
        out = self.base / name
        report = export_dicom(self.vault.config, self.vault.store, key, out, what=what)
        assert report.missing == [], report.missing
        return out


def _as_stored(data: bytes) -> bytes:
    dataset, syntax = dataset_of(data)
    tags = describe(data)
    return part10(dataset, tags["SOPClassUID"], tags["SOPInstanceUID"], syntax)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return Site(tmp_path_factory.mktemp("received-export"))


def _files(out: Path) -> dict[str, bytes]:
    """SOP instance UID → bytes of every file the DICOMDIR references (each one it names exists)."""
    records = pydicom.dcmread(out / "DICOMDIR").DirectoryRecordSequence
    found = {}
    for record in records:
        if "ReferencedFileID" in record:
            data = (out / Path(*record.ReferencedFileID)).read_bytes()
            found[record.ReferencedSOPInstanceUIDInFile] = data
    assert len(found) == sum(1 for p in out.rglob("*") if p.is_file() and p.name != "DICOMDIR")
    return found


def test_all_writes_the_pinnacle_version_and_the_received_objects_under_one_dicomdir(site: Site) -> None:
    out = site.export("all", site.patient.path, "all")
    files = _files(out)
    mine = {uid: data for uid, data in site.stored.items() if uid in files}
    assert len(mine) == len(RECEIVED)  # the MR of another patient is not there
    assert all(files[uid] == data for uid, data in mine.items())  # byte for byte as stored
    pinnacle = files_by_modality(out)
    assert pinnacle["RTPLAN"] and pinnacle["RTDOSE"] and len(pinnacle["CT"]) > 1
    for path in [pinnacle["CT"][0], *pinnacle["RTPLAN"][:1], *pinnacle["RTDOSE"][:1], out / "DICOMDIR"]:
        assert dciodvfy_errors(path) == [], path


def test_pinnacle_alone_and_received_alone(site: Site) -> None:
    only_pinnacle = _files(site.export("pinnacle", site.patient.mrn, "pinnacle"))
    assert not set(only_pinnacle) & set(site.stored)
    only_received = _files(site.export("received", site.patient.path, "received"))
    assert set(only_received) == {describe(d)["SOPInstanceUID"] for d in site.stored.values()
                                  if pydicom.dcmread(io.BytesIO(d)).PatientID == site.patient.mrn}
    assert all(only_received[uid] == site.stored[uid] for uid in only_received)


def test_a_patient_the_node_alone_knows_is_exported_by_its_patient_id(site: Site) -> None:
    found = rtvault_json(site.vault.config_path, "export", "dicom", "--patient", "MR-ONLY-1", "--to",
                         site.base / "alone")
    assert (found["source"]["kind"], found["what"], found["received"]) == ("received", "all", 1)
    [(uid, data)] = _files(site.base / "alone").items()
    assert data == site.stored[uid]
    with pytest.raises(NotFound, match="no received DICOM object"):
        export_dicom(site.vault.config, site.vault.store, "NOBODY", site.base / "nobody", what="received")
    with pytest.raises(Exception, match="holds a patient 'MR-ONLY-1'"):
        export_dicom(site.vault.config, site.vault.store, "MR-ONLY-1", site.base / "nope", what="pinnacle")


def test_an_object_still_in_the_nodes_spool_is_named(site: Site) -> None:
    raw = dataset_of(Path(get_testdata_file("rtdose.dcm")).read_bytes())
    tags = describe(Path(get_testdata_file("rtdose.dcm")).read_bytes()) | {"PatientID": "SPOOLED-1"}
    with Receiver(site.vault.config, seal_after_s=3600) as receiver:
        receiver.put(part10(raw[0], tags["SOPClassUID"], tags["SOPInstanceUID"], raw[1]), tags)
        assert receiver.indexed()
        report = export_dicom(site.vault.config, site.vault.store, "SPOOLED-1", site.base / "spooled")
        assert report.received == 0 and "not sealed into the store yet" in report.missing[0]
        assert report.verdict().code == 9


def test_an_object_whose_patient_id_is_the_mrn_written_otherwise_is_exported_through_the_link(site: Site) -> None:
    """The PACS writes the MRN with a hyphen and in another case: the catalog links it to the Pinnacle patient
    (MRNs compared folded), and the patient's export carries it."""
    refresh(site.vault.config)  # the Pinnacle patient in the catalog
    medium = site.base / "medium-otherwise"
    medium.mkdir()
    dose = pydicom.dcmread(get_testdata_file("rtdose.dcm"))
    mrn = site.patient.mrn
    dose.PatientID = f"{mrn[:3]}-{mrn[3:]}".lower()
    dose.PatientBirthDate = (site.patient.birth_date or "").replace("-", "")  # the same person
    dose.save_as(medium / "dose.dcm")
    assert import_dicom(site.vault.config, [medium]).stored == 1
    uid = describe((medium / "dose.dcm").read_bytes())["SOPInstanceUID"]
    assert uid in _files(site.export("linked", mrn, "received"))
