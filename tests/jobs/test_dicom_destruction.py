"""Legal destruction of a DICOM patient's received objects (`rtvault dicom delete`): refused before keep-until and
without a reason; on two stores, the patient's receipts rewritten and its objects' bytes gone from every file
(packed and loose), another patient's kept; a store offline at the time finished once it is back and never
revived by a replication either way; objects still in a running node's spool pending until sealed; the object
sent again afterwards stored anew; the certificate as JSON and PDF; a run killed by SIGKILL finished by the next."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from pypdf import PdfReader

from kit.config import write_config
from kit.copies import Copies, write_pair_config
from kit.crypto import sealed_store
from rtvault.catalog import destructions
from rtvault.catalog import dicom as catalog_dicom
from rtvault.config import load
from rtvault.configured import init_store, open_catalog_for, open_store
from rtvault.copies.replicate import replicate
from rtvault.demo import generate_database
from rtvault.dicom.received import dataset_of as split
from rtvault.dicom.received import describe, part10
from rtvault.errors import ExitCode, InputError, StoreError
from rtvault.jobs import dicom_destruction
from rtvault.jobs.archive_now import archive_now
from rtvault.jobs.archiving import record_override
from rtvault.jobs.catalog import refresh_quietly
from rtvault.jobs.dicom_receive import Receiver
from rtvault.jobs.maintenance import check_store
from rtvault.store import Store, receipts
from rtvault.store.objects import data_key, read_object
from rtvault.store.packfile import pack_key

REASON = "retention ended, committee of 2046-03-02"
NAME = b"CompressedSamples^CT1"  # CT_small's PatientName: in the store's files until destroyed
LATER = date(2200, 1, 1)


def received(raw: bytes) -> tuple[bytes, dict]:
    dataset, syntax = split(raw)
    tags = describe(raw)
    return part10(dataset, tags["SOPClassUID"], tags["SOPInstanceUID"], syntax), tags


def sample(name: str) -> tuple[bytes, dict]:
    return received(Path(get_testdata_file(name)).read_bytes())


def ct_of(pattern: bytes, side: int) -> tuple[bytes, dict]:
    """A CT slice of CT_small's patient, `side` pixels square, random (incompressible: its bytes stay as they are
    in the store's files, compressed or not), with `pattern` in them: 64 is packed, 1600 too large for a pack."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Rows = ds.Columns = side
    pixels = bytearray(os.urandom(side * side * 2))
    pixels[1000:1000 + len(pattern)] = pattern
    ds.PixelData = bytes(pixels)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return received(out.getvalue())


def files_holding(root: Path, needle: bytes) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.fixture
def pair(tmp_path: Path) -> Copies:
    generate_database(tmp_path / "db", patients=1, seed=5, image_mb=0.02)
    copies = Copies(tmp_path / "db", tmp_path / "primary", tmp_path / "secondary", tmp_path / "rtvault.toml")
    write_pair_config(copies.config_path, copies.root, copies.primary_path, copies.secondary_path)
    Store.init(copies.primary_path)
    Store.init(copies.secondary_path)
    return copies


def receive(copies: Copies, *objects: tuple[bytes, dict]) -> list[str]:
    with Receiver(copies.config) as receiver:
        hashes = [receiver.put(data, tags, calling_ae="SCANNER").hash for data, tags in objects]
    return hashes


def keep_day(copies: Copies) -> date:
    """The CT patient's keep-until: received today (after its 2004 study), 20 years on."""
    with open_catalog_for(copies.config) as catalog:
        (received_at,) = catalog.one("SELECT MAX(received) FROM dicom_instances WHERE patient_id = '1CT1'")
    day = date.fromisoformat(received_at[:10])
    return day.replace(year=day.year + 20)


def patient_rows(copies: Copies, pid: str = "1CT1") -> int:
    with open_catalog_for(copies.config) as catalog:
        return catalog.one("SELECT COUNT(*) FROM dicom_instances WHERE patient_id = ?", (pid,))[0]


def test_refused_before_keep_until_and_without_a_reason(pair: Copies) -> None:
    receive(pair, sample("CT_small.dcm"))
    keep = keep_day(pair)
    with pytest.raises(InputError, match="give --reason"):
        dicom_destruction.destroy(pair.config, "  ", LATER, mrn="1CT1")
    with pytest.raises(InputError, match=f"refusing to delete the received objects of .*kept until {keep}"):
        dicom_destruction.destroy(pair.config, REASON, keep, mrn="1CT1")
    with pytest.raises(InputError, match="no received DICOM object for MRN nobody"):
        dicom_destruction.destroy(pair.config, REASON, LATER, mrn="nobody")
    with open_catalog_for(pair.config) as catalog:
        assert destructions.all_destructions(catalog) == []
    assert patient_rows(pair) == 1 and not list((pair.primary_path / "dicom" / "destroyed").glob("*"))
    done = dicom_destruction.destroy(pair.config, REASON, keep + timedelta(days=1), mrn="1ct1")  # the day after
    assert done.certificates[0]["complete"] and patient_rows(pair) == 0


@pytest.mark.slow
def test_destroyed_on_both_stores_bytes_gone_the_other_patient_kept(pair: Copies, tmp_path: Path) -> None:
    small, large = os.urandom(48), os.urandom(48)
    ct, mr, packed, big = sample("CT_small.dcm"), sample("MR_small.dcm"), ct_of(small, 64), ct_of(large, 1600)
    ct_hash, mr_hash, packed_hash, big_hash = receive(pair, ct, mr, packed, big)
    receive(pair, ct)  # sent again: a duplicate, stored once
    replicate(pair.primary, pair.secondary)
    refresh_quietly(pair.config)
    for root in (pair.primary_path, pair.secondary_path):
        assert files_holding(root, NAME)  # in the receipt
        assert files_holding(root, small)[0].startswith("packs/")  # what the test looks for is there
        assert files_holding(root, large) == [data_key(big_hash)]  # the big one is loose

    out = tmp_path / "certificate.pdf"
    done = dicom_destruction.destroy(pair.config, REASON, LATER, mrn="1CT1", out=out, lang="en")
    assert done.verdict().code == 0
    [certificate] = done.to_json()["destroyed"]
    assert certificate["patient"]["mrn"] == "1CT1" and certificate["patient"]["last_name"] == "CompressedSamples"
    assert certificate["instances"] == 3 and certificate["files"] == 3 and certificate["complete"]
    assert sorted(certificate["objects"]) == sorted([ct_hash, packed_hash, big_hash])
    assert [s["modality"] for st in certificate["studies"] for s in st["series"]] == ["CT"]
    assert {c["place"] for c in certificate["copies"]} == {"primary", "secondary"}
    assert all(c["status"] == "removed" for c in certificate["copies"])
    text = "\n".join(page.extract_text() for page in PdfReader(out).pages)
    assert "CompressedSamples" in text and "1CT1" in text and REASON in text and "PENDING" not in text

    for store, root in ((pair.primary, pair.primary_path), (pair.secondary, pair.secondary_path)):
        for needle in (NAME, small, large):
            assert files_holding(root, needle) == []  # the bytes are gone from every file
        assert not store.backend.exists(data_key(ct_hash)) and not store.backend.exists(data_key(big_hash))
        named = [i.tags["PatientID"] for _r, i in receipts.instances(store.backend)]
        assert named == ["4MR1"]  # the receipt rewritten: the other patient's entry kept
        assert b"".join(read_object(store.backend, mr_hash)) == mr[0]
        assert not check_store(store).problems  # a rewritten receipt is no damage
        record = json.loads((root / "dicom" / "destroyed" / f"{certificate['archive']}.json").read_text())
        assert record["format"] == "rtvault-dicom-destruction" and b"CompressedSamples" not in json.dumps(
            record).encode()
    assert patient_rows(pair) == 0 and patient_rows(pair, "4MR1") == 2  # one row per store
    with open_catalog_for(pair.config) as catalog:
        assert catalog_dicom.find(catalog, "PATIENT", {"PatientID": "1CT1"}) == []
        assert catalog.one("SELECT COUNT(*) FROM patients WHERE mrn = '1CT1'")[0] == 0  # gone from search
    verified = pair.cli_json("verify", "--all")
    assert verified["healthy"], verified
    journal = [json.loads(p.read_text()) for p in (pair.primary_path / "journal").rglob("*.json")]
    assert [r["certificate"]["archive"] for r in journal if r.get("kind") == "destruction"] == \
        [certificate["archive"]]
    refresh_quietly(pair.config)  # a sync does not bring the rows back
    assert patient_rows(pair) == 0

    again = receive(pair, ct)  # a peer sends the object again: stored anew, and shown
    assert again == [ct_hash] and pair.primary.backend.exists(data_key(ct_hash))
    assert patient_rows(pair) == 1
    reprinted = pair.cli_json("dicom", "delete", "--mrn", "1CT1", "--reason", REASON, expect=ExitCode.INPUT)
    assert reprinted == {} or "destroyed" not in reprinted  # a new decision: refused (kept until 20 years on)


@pytest.mark.slow
def test_a_store_offline_is_finished_when_back_and_never_revived(pair: Copies, tmp_path: Path) -> None:
    ct_hash, mr_hash = receive(pair, sample("CT_small.dcm"), sample("MR_small.dcm"))
    replicate(pair.primary, pair.secondary)
    refresh_quietly(pair.config)
    away = tmp_path / "secondary-away"
    pair.secondary_path.rename(away)  # the NAS is down

    done = dicom_destruction.destroy(pair.config, REASON, LATER, mrn="1CT1")
    assert done.verdict().code == ExitCode.PARTIAL
    [pending] = [c for c in done.certificates[0]["copies"] if c["removed"] is None]
    assert pending["place"] == "secondary" and "does not answer" in pending["note"]
    status = pair.cli_json("status", expect=None)
    assert [p["place"] for p in status["pending_destruction"]] == ["secondary"]
    assert patient_rows(pair) == 0  # not shown while a store is pending

    away.rename(pair.secondary_path)  # back, with the old receipt and the object
    back = replicate(pair.secondary, pair.primary)  # the wrong way first: nothing comes back
    assert back.destroyed_skipped >= 1 and not back.lag_receipts
    assert not pair.primary.backend.exists(data_key(ct_hash))
    assert [i.tags["PatientID"] for _r, i in receipts.instances(pair.primary.backend)] == ["4MR1"]
    refresh_quietly(pair.config)
    assert patient_rows(pair) == 0  # the old receipt on the secondary is not indexed again

    finished = pair.cli_json("replicate")  # the job carries the destruction on
    assert "pairs" in finished
    assert files_holding(pair.secondary_path, NAME) == []
    assert [i.tags["PatientID"] for _r, i in receipts.instances(pair.secondary.backend)] == ["4MR1"]
    assert pair.cli_json("status", expect=None)["pending_destruction"] == []
    assert pair.cli_json("dicom", "delete", "--pending")["destroyed"] == []
    replicate(pair.primary, pair.secondary)
    assert b"".join(read_object(pair.secondary.backend, mr_hash)) == sample("MR_small.dcm")[0]


@pytest.mark.slow
def test_objects_in_a_running_nodes_spool_stay_pending_until_sealed(pair: Copies) -> None:
    ct = sample("CT_small.dcm")
    receiver = Receiver(pair.config, seal_after_s=3600).start()
    try:
        ct_hash = receiver.put(*ct).hash
        assert receiver.indexed()
        done = dicom_destruction.destroy(pair.config, REASON, LATER, mrn="1CT1")
        [copy] = done.certificates[0]["copies"]
        assert copy["removed"] is None and "in the node's spool" in copy["note"]
        assert done.verdict().code == ExitCode.PARTIAL
    finally:
        receiver.close()  # the node seals its spool
    finished = dicom_destruction.resume(pair.config)
    assert finished.certificates[0]["complete"]
    assert files_holding(pair.primary_path, NAME) == [] and not pair.primary.backend.exists(data_key(ct_hash))

    with Receiver(pair.config) as node:  # the node running: the object sent again is stored, not "already held"
        assert not node.put(*ct).duplicate
    assert pair.primary.backend.exists(data_key(ct_hash)) and patient_rows(pair) == 1


@pytest.mark.slow
def test_a_linked_patient_keeps_its_pinnacle_record_and_an_archive_hold_applies(pair: Copies) -> None:
    pair.backup()
    refresh_quietly(pair.config)
    with open_catalog_for(pair.config) as catalog:
        pid, key, mrn, path = catalog.one("SELECT id, key, mrn, path FROM patients WHERE path <> '' LIMIT 1")
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.PatientID, ds.PatientBirthDate = mrn, ""  # the Pinnacle patient's MRN: linked
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    receive(pair, received(out.getvalue()))
    with open_catalog_for(pair.config) as catalog:
        assert catalog.one("SELECT patient FROM dicom_instances")[0] == pid
    [archived] = archive_now(pair.config, pair.primary, keys=[mrn]).archived
    record_override(pair.config, pair.primary, archived.record.id, None, "hold", None,
                    "litigation, letter of 2026-11-02", "tester")
    with pytest.raises(InputError, match="hold"):  # the archive's litigation hold applies to the received objects
        dicom_destruction.destroy(pair.config, REASON, LATER, patient=key)
    record_override(pair.config, pair.primary, archived.record.id, path, "release", None, "settled", "tester")
    done = dicom_destruction.destroy(pair.config, REASON, LATER, patient=key)
    assert done.certificates[0]["complete"] and done.certificates[0]["patient"]["key"] == key
    assert patient_rows(pair, mrn) == 0
    with open_catalog_for(pair.config) as catalog:  # the Pinnacle patient stays, with its versions
        assert catalog.one("SELECT COUNT(*) FROM versions WHERE patient = ?", (pid,))[0] >= 1


def test_an_encrypted_store_loses_the_pack_that_held_the_object(tmp_path: Path) -> None:
    config_path = write_config(tmp_path / "rtvault.toml", root=tmp_path / "db",
                               stores={"sealed": sealed_store(tmp_path, tmp_path / "sealed")})
    config = load(config_path)
    init_store(config, "sealed")
    ct, mr = sample("CT_small.dcm"), sample("MR_small.dcm")
    with Receiver(config) as receiver:
        ct_hash, mr_hash = receiver.put(*ct).hash, receiver.put(*mr).hash
    store = open_store(config, "sealed")
    where = store.backend.where_of(data_key(ct_hash))
    assert where is not None and (tmp_path / "sealed" / pack_key(where.pack)).is_file()
    done = dicom_destruction.destroy(config, REASON, LATER, mrn="1CT1")
    assert done.certificates[0]["complete"]
    store = open_store(config, "sealed")
    assert not (tmp_path / "sealed" / pack_key(where.pack)).exists()  # the pack that held it is gone
    assert not store.backend.exists(data_key(ct_hash))
    with pytest.raises(StoreError):
        b"".join(read_object(store.backend, ct_hash))
    assert b"".join(read_object(store.backend, mr_hash)) == mr[0]  # its pack neighbour rewritten, readable


KILLED_AFTER_ONE_RECEIPT = """import datetime, os, runpy, signal, sys
import rtvault.store.receipts as receipts
import rtvault.cli.dicom_delete_cmd as command
real = receipts.strip
def strip(backend, ident, hashes):
    removed = real(backend, ident, hashes)
    os.kill(os.getpid(), signal.SIGKILL)  # one receipt rewritten, its objects not deleted yet
receipts.strip = strip
class Later(datetime.date):
    @classmethod
    def today(cls):
        return datetime.date(2200, 1, 1)
command.date = Later
sys.argv[0] = "rtvault"
runpy.run_module("rtvault", run_name="__main__")
"""


@pytest.mark.slow
def test_a_destruction_killed_halfway_is_finished_by_the_next_run(pair: Copies) -> None:
    pattern = os.urandom(48)
    receive(pair, sample("CT_small.dcm"), sample("MR_small.dcm"), ct_of(pattern, 64))
    replicate(pair.primary, pair.secondary)
    refresh_quietly(pair.config)
    killed = subprocess.run([sys.executable, "-c", KILLED_AFTER_ONE_RECEIPT, "--config", str(pair.config_path),
                             "dicom", "delete", "--mrn", "1CT1", "--reason", REASON], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    status = pair.cli_json("status", expect=None)  # destroyed in the catalog: every store still holding it pending
    assert {p["place"] for p in status["pending_destruction"]} == {"primary", "secondary"}
    assert files_holding(pair.primary_path, pattern)  # the object is still there (only its receipt was rewritten)

    done = pair.cli_json("dicom", "delete", "--pending")
    assert done["pending"] == [] and done["destroyed"][0]["reason"] == REASON
    for root in (pair.primary_path, pair.secondary_path):
        assert files_holding(root, NAME) == [] and files_holding(root, pattern) == []
    assert pair.cli_json("status", expect=None)["pending_destruction"] == []
    stages = [json.loads(p.read_text()).get("stage") for p in (pair.primary_path / "journal").rglob("*.json")
              if json.loads(p.read_text()).get("kind") == "destruction"]
    assert stages == ["decided"]  # killed before its first record: written once, complete at once
    assert done["destroyed"][0]["complete"]
    pair.cli("journal", "verify")


def test_bytes_a_backup_also_holds_are_kept_for_the_backup(pair: Copies) -> None:
    """A received object byte for byte the same as a file backed up with a Pinnacle patient (an export copied into
    its folder): the destruction removes it from the receipts and the catalog, but never the object the snapshot
    needs; the copy's note says it was kept, and the snapshot still restores and checks whole."""
    data, tags = ct_of(b"SHARED-WITH-A-BACKUP", 64)
    [digest] = receive(pair, (data, tags))
    patient = next((pair.root).glob("Institution_*/Mount_*/Patient_*"))
    (patient / "ImageSet_0.DICOM").mkdir(exist_ok=True)
    (patient / "ImageSet_0.DICOM" / "copied.dcm").write_bytes(data)
    pair.backup()
    result = dicom_destruction.destroy(pair.config, REASON, LATER, mrn="1CT1")
    notes = [c["note"] for c in result.certificates[0]["copies"]]
    assert result.certificates[0]["complete"], notes
    assert any("1 object(s) kept: the same bytes are part of snapshots or archives" in n for n in notes), notes
    primary = pair.store("primary")
    assert primary.backend.exists(data_key(digest)) and b"".join(read_object(primary.backend, digest)) == data
    assert check_store(primary, read_data=True).healthy and patient_rows(pair) == 0
    assert all(digest not in [i.hash for i in receipts.load(primary.backend, r).instances]
               for r in receipts.ids(primary.backend))
