"""The DICOM node's write path: an object is durable in the store's spool before its sender is answered, sealed
into content objects and a receipt, found in the catalog at once, stored once however often it is sent, never
pruned, and a receiver killed mid-run loses nothing its peers were told was stored."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from kit.config import write_config
from kit.crypto import sealed_store
from kit.faults import fill, small_disk
from kit.vault import Vault
from rtvault.catalog.db import Catalog
from rtvault.config import load
from rtvault.configured import init_store, open_catalog_for, open_store
from rtvault.demo import generate_database
from rtvault.dicom.received import Refused, describe, part10, streamed
from rtvault.dicom.received import dataset_of as split
from rtvault.errors import StoreError
from rtvault.jobs.dicom_receive import Receiver
from rtvault.jobs.maintenance import prune
from rtvault.store import Store, receipts
from rtvault.store.objects import read_object

SAMPLES = ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "rtstruct.dcm", "rtdose.dcm")


def received(name: str) -> tuple[bytes, dict]:
    """A pydicom sample as the node receives it: its data set behind rtvault's own meta."""
    dataset, syntax = split(Path(get_testdata_file(name)).read_bytes())
    tags = describe(Path(get_testdata_file(name)).read_bytes())
    return part10(dataset, tags["SOPClassUID"], tags["SOPInstanceUID"], syntax), tags


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    generate_database(tmp_path / "db", patients=2, seed=5, image_mb=0.05)
    vault = Vault(tmp_path / "db", tmp_path / "store", tmp_path / "rtvault.toml")
    vault.configure()
    Store.init(vault.store_path)
    return vault


def instances(catalog: Catalog) -> list[tuple]:
    return catalog.execute("SELECT sop_instance, receipt, modality, patient_id FROM dicom_instances ORDER BY id")


def test_an_object_is_in_the_spool_when_answered_then_sealed_into_a_receipt(vault: Vault) -> None:
    data, tags = received("CT_small.dcm")
    with Receiver(vault.config) as receiver:
        stored = receiver.put(data, tags, calling_ae="SCANNER")
        assert not stored.duplicate
        spools = list((vault.store_path / "dicom" / "spool").glob("*.spool"))
        assert len(spools) == 1 and data in spools[0].read_bytes()  # durable before the answer
        assert receiver.read(stored.hash) == data
        assert receiver.indexed()  # indexed by a thread of its own, moments later (a C-FIND waits for it)
        with open_catalog_for(vault.config) as catalog:
            [(sop, receipt, modality, pid)] = instances(catalog)
        assert (sop, modality, pid) == (tags["SOPInstanceUID"], "CT", tags["PatientID"])
        assert receipt.startswith("spool:")  # C-FIND finds it before it is sealed
    assert not list((vault.store_path / "dicom" / "spool").glob("*.spool"))
    store = Store.open(vault.store_path)
    [ident] = receipts.ids(store.backend)
    receipt = receipts.load(store.backend, ident)
    assert [(i.hash, i.calling_ae, i.tags["SOPInstanceUID"]) for i in receipt.instances] == \
        [(stored.hash, "SCANNER", tags["SOPInstanceUID"])]
    assert b"".join(read_object(store.backend, stored.hash)) == data  # byte for byte
    with open_catalog_for(vault.config) as catalog:
        assert [r[1] for r in instances(catalog)] == [ident]
        [(user, detail)] = catalog.execute("SELECT username, detail FROM audit WHERE action = ?",
                                           ("dicom_receive",))
    assert user == "SCANNER" and ident in detail  # the journal of actions says what came, from whom, for whom
    assert json.loads(detail)["patients"] == [tags["PatientID"]] and json.loads(detail)["instances"] == 1


def test_the_same_object_sent_again_is_stored_once(vault: Vault) -> None:
    samples = [received(name) for name in SAMPLES]
    with Receiver(vault.config) as receiver:
        first = [receiver.put(data, tags) for data, tags in samples]
        again = [receiver.put(data, tags) for data, tags in samples]
    assert not any(s.duplicate for s in first) and all(s.duplicate for s in again)
    with Receiver(vault.config) as receiver:  # after the seal, from the catalog
        assert all(receiver.put(data, tags).duplicate for data, tags in samples)
    store = Store.open(vault.store_path)
    held = [i.hash for _, i in receipts.instances(store.backend)]
    assert sorted(held) == sorted(s.hash for s in first)


def test_prune_never_deletes_a_received_object(vault: Vault) -> None:
    vault.backup()
    samples = [received(name) for name in SAMPLES]
    with Receiver(vault.config) as receiver:
        hashes = [receiver.put(data, tags).hash for data, tags in samples]
    store = Store.open(vault.store_path)
    prune(vault.config, store)
    store = Store.open(vault.store_path)
    for (data, _), digest in zip(samples, hashes, strict=True):
        assert b"".join(read_object(store.backend, digest)) == data


def test_a_receiver_killed_after_answering_loses_nothing(vault: Vault) -> None:
    """SIGKILL (os._exit) right after the objects were answered as stored, before any seal: the next receiver
    seals the spool it left."""
    names = json.dumps(list(SAMPLES))
    script = textwrap.dedent(f"""
        import json, os, sys
        sys.path[:0] = [{str(Path(__file__).parent)!r}, {str(Path(__file__).parents[1])!r}]
        from test_dicom_receive import received
        from rtvault.config import load
        from rtvault.jobs.dicom_receive import Receiver
        from pathlib import Path
        receiver = Receiver(load(Path({str(vault.config_path)!r}))).start()
        print(json.dumps([receiver.put(*received(n)).hash for n in json.loads({names!r})]), flush=True)
        os._exit(9)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 9, done.stderr
    answered = json.loads(done.stdout)
    assert list((vault.store_path / "dicom" / "spool").glob("*.spool"))
    with Receiver(vault.config):  # the lock of the dead process is taken over, its spool sealed
        pass
    store = Store.open(vault.store_path)
    assert sorted(i.hash for _, i in receipts.instances(store.backend)) == sorted(answered)
    for digest in answered:
        assert b"".join(read_object(store.backend, digest))
    assert not list((vault.store_path / "dicom" / "spool").glob("*.spool"))


@pytest.mark.slow
@pytest.mark.parametrize("encrypted", [False, True])
def test_a_large_object_is_streamed_through_spool_and_seal(tmp_path: Path, encrypted: bool) -> None:
    """An object larger than what is stored from memory (and than many 1 MiB encryption chunks) arrives in a file
    and goes to the spool and the store in blocks; described without its pixel data; read back byte for byte.
    In an encrypted store its spool record is sealed as it is written: none of its bytes lie there in clear."""
    store = sealed_store(tmp_path, tmp_path / "store") if encrypted else tmp_path / "store"
    config = load(write_config(tmp_path / "rtvault.toml", root=tmp_path / "db", stores={"primary": store}))
    init_store(config, "primary")
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    dataset.PixelData = os.urandom((17 << 20) + 12345)  # over SMALL (16 MiB), 18 chunks sealed
    arrived = tmp_path / "arrived.dcm"
    dataset.save_as(arrived, enforce_file_format=True)
    syntax = str(dataset.file_meta.TransferSyntaxUID)
    incoming = streamed(arrived, dataset.SOPClassUID, dataset.SOPInstanceUID, syntax)
    whole = part10(split(arrived.read_bytes())[0], dataset.SOPClassUID, dataset.SOPInstanceUID, syntax)
    tags = describe(incoming, expected_class=dataset.SOPClassUID)
    assert tags["SOPInstanceUID"] == dataset.SOPInstanceUID and incoming.hash == hashlib.sha256(whole).hexdigest()
    with Receiver(config) as receiver:
        stored = receiver.put(incoming, tags)
        [spool] = (tmp_path / "store" / "dicom" / "spool").glob("*.spool")
        raw = spool.read_bytes()
        assert (dataset.PixelData[5 << 20:(5 << 20) + 4096] in raw) is not encrypted
        assert receiver.read(stored.hash) == whole
    assert b"".join(read_object(open_store(config, "primary").backend, stored.hash)) == whole
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(arrived.read_bytes()[:-1000])
    with pytest.raises(Refused, match="truncated"):
        describe(streamed(cut, dataset.SOPClassUID, dataset.SOPInstanceUID, syntax))


def test_an_encrypted_store_spools_nothing_in_clear(tmp_path: Path) -> None:
    config_path = write_config(tmp_path / "rtvault.toml", root=tmp_path / "db",
                               stores={"sealed": sealed_store(tmp_path, tmp_path / "sealed")})
    config = load(config_path)
    init_store(config, "sealed")
    data, tags = received("CT_small.dcm")
    with Receiver(config) as receiver:
        stored = receiver.put(data, tags)
        [spool] = (tmp_path / "sealed" / "dicom" / "spool").glob("*.spool")
        raw = spool.read_bytes()
        assert tags["PatientID"].encode() not in raw and str(tags["PatientName"]).encode() not in raw
        assert data[-4096:] not in raw
        assert receiver.read(stored.hash) == data
    store = open_store(config, "sealed")
    assert b"".join(read_object(store.backend, stored.hash)) == data
    for path in (tmp_path / "sealed").rglob("*"):
        if path.is_file():
            assert str(tags["PatientName"]).encode() not in path.read_bytes(), path


def test_a_full_disk_fails_the_send_loses_nothing_and_the_next_send_succeeds(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "4m") as disk:
        config = load(write_config(tmp_path / "rtvault.toml", root=tmp_path / "db", stores={"primary": disk / "store"}))
        Store.init(disk / "store")
        small, small_tags = received("CT_small.dcm")
        with Receiver(config, seal_after_s=3600) as receiver:
            first = receiver.put(small, small_tags)
            filler = fill(disk)
            big, big_tags = received("MR_small.dcm")
            with pytest.raises(StoreError, match=str(disk / "store")):
                receiver.put(big, big_tags)
            filler.unlink()
            again = receiver.put(big, big_tags)  # the sender tries again: stored
            assert receiver.read(first.hash) == small and receiver.read(again.hash) == big
        store = Store.open(disk / "store")
        assert sorted(i.hash for _, i in receipts.instances(store.backend)) == sorted([first.hash, again.hash])
