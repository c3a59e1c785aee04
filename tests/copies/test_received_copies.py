"""The DICOM node's received objects are copied, verified, checked and repaired as Pinnacle data is: replication
copies a receipt after the objects it names, `check` and `verify` find a damaged receipt or a missing or damaged
received object, `repair` heals them from the other store byte for byte, and `status` counts them and their
copies."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from kit.config import write_config
from kit.copies import Copies, write_pair_config
from kit.seaweed import SeaweedServer
from kit.store import flip, lose, read
from rtvault.config import load
from rtvault.configured import init_store, open_store
from rtvault.copies.repair import repair
from rtvault.copies.replicate import replicate
from rtvault.copies.status import store_status
from rtvault.copies.verify import verify
from rtvault.jobs.dicom_import import import_dicom
from rtvault.jobs.maintenance import check_store
from rtvault.store import Store, receipts
from rtvault.store.objects import data_key, read_object

SAMPLES = ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "rtstruct.dcm", "rtdose.dcm")


class Pair(Copies):
    """The kit's primary and secondary stores, the primary holding one receipt of SAMPLES imported."""

    def __init__(self, base: Path) -> None:
        (base / "db").mkdir()
        super().__init__(base / "db", base / "primary", base / "secondary", base / "rtvault.toml")
        Store.init(self.primary_path)
        Store.init(self.secondary_path)
        write_pair_config(self.config_path, self.root, self.primary_path, self.secondary_path)
        medium = base / "medium"
        medium.mkdir()
        for name in SAMPLES:
            (medium / name).write_bytes(Path(get_testdata_file(name)).read_bytes())
        assert import_dicom(load(self.config_path), [medium]).stored == len(SAMPLES)
        [self.receipt] = receipts.ids(self.primary.backend)
        self.hashes = [i.hash for i in receipts.load(self.primary.backend, self.receipt).instances]


@pytest.fixture
def pair(tmp_path: Path) -> Pair:
    return Pair(tmp_path)


def test_replication_copies_receipts_after_their_objects_and_status_counts_them(pair: Pair) -> None:
    before = store_status(load(pair.config_path))
    assert (before.receipts, before.received) == (1, len(SAMPLES))
    assert [(s.kind, s.key, s.stores) for s in before.too_few_copies] == [("receipt", pair.receipt, ["primary"])]
    [_, secondary] = before.stores
    assert (secondary.lag_receipts, secondary.received) == (1, 0)
    summary = replicate(pair.primary, pair.secondary)
    assert (summary.receipts_copied, summary.objects_copied, summary.complete) == (1, len(SAMPLES), True)
    for digest in pair.hashes:
        assert b"".join(read_object(pair.secondary.backend, digest)) == \
            b"".join(read_object(pair.primary.backend, digest))
    checked = check_store(pair.secondary, read_data=True)
    assert (checked.healthy, checked.receipts, checked.received_objects, checked.objects_read) == \
        (True, 1, len(SAMPLES), len(SAMPLES))
    after = store_status(load(pair.config_path))
    assert not after.too_few_copies and [s.received for s in after.stores] == [len(SAMPLES)] * 2
    assert after.stores[1].lag_receipts == 0


def test_a_receipt_is_not_copied_before_its_objects(pair: Pair) -> None:
    flip(pair.primary_path, data_key(pair.hashes[0]))  # damaged on the source: never propagated
    summary = replicate(pair.primary, pair.secondary)
    assert summary.receipts_copied == 0 and summary.lag_receipts == 1 and not summary.complete
    assert {p.file for p in summary.problems} == {data_key(pair.hashes[0]), receipts.receipt_key(pair.receipt)}
    assert not receipts.ids(pair.secondary.backend)


def test_verify_finds_a_damaged_receipt_and_received_objects_and_repair_heals_them(pair: Pair) -> None:
    replicate(pair.primary, pair.secondary)
    key = receipts.receipt_key(pair.receipt)
    good_receipt = read(pair.secondary_path, key)
    good_object = b"".join(read_object(pair.primary.backend, pair.hashes[1]))
    flip(pair.secondary_path, key)
    flip(pair.secondary_path, data_key(pair.hashes[1]))
    lose(pair.secondary_path, data_key(pair.hashes[2]))
    checked = check_store(pair.secondary, read_data=True)
    assert {p.file for p in checked.problems} == {key, data_key(pair.hashes[1])}  # the lost one: named by no
    # receipt that can be trusted
    found = verify(pair.secondary, all=True)  # what a damaged receipt names is not trusted: the lost object is
    assert {(p.key, p.kind) for p in found.problems} == {(key, "corrupt"), (data_key(pair.hashes[1]), "corrupt")}
    healed = repair(load(pair.config_path), "secondary")  # ... found once the receipt is healed
    assert healed.healthy and {r["key"] for r in healed.repaired} == {key, data_key(pair.hashes[1])}
    assert read(pair.secondary_path, key) == good_receipt
    assert b"".join(read_object(pair.secondary.backend, pair.hashes[1])) == good_object
    found = verify(pair.secondary, all=True)
    assert [(p.key, p.kind, p.needed_by) for p in found.problems] == [(data_key(pair.hashes[2]), "missing", key)]
    assert [r["key"] for r in repair(load(pair.config_path), "secondary").repaired] == [data_key(pair.hashes[2])]
    assert verify(pair.secondary, all=True).healthy
    assert check_store(pair.secondary, read_data=True).healthy


def test_check_names_a_received_object_missing_from_its_store(pair: Pair) -> None:
    lose(pair.primary_path, data_key(pair.hashes[0]))
    checked = check_store(pair.primary)
    assert [(p.file, p.message) for p in checked.problems] == \
        [(data_key(pair.hashes[0]), f"missing: DICOM receipt {pair.receipt} names it")]


@pytest.mark.slow  # the session's SeaweedFS server
def test_received_objects_are_copied_verified_and_repaired_on_s3(tmp_path: Path, seaweed: SeaweedServer) -> None:
    (tmp_path / "db").mkdir()
    Store.init(tmp_path / "primary")
    config_path = write_config(tmp_path / "rtvault.toml", root=tmp_path / "db", stores={
        "primary": tmp_path / "primary", "offsite": seaweed.store_settings(seaweed.new_bucket(), copy_of="primary")})
    init_store(load(config_path), "offsite")
    medium = tmp_path / "medium"
    medium.mkdir()
    for name in SAMPLES:
        (medium / name).write_bytes(Path(get_testdata_file(name)).read_bytes())
    import_dicom(load(config_path), [medium])
    primary, offsite = open_store(load(config_path), "primary"), open_store(load(config_path), "offsite")
    assert replicate(primary, offsite).receipts_copied == 1
    [ident] = receipts.ids(offsite.backend)
    lost = receipts.load(offsite.backend, ident).instances[0].hash
    assert verify(offsite, all=True).healthy
    offsite.backend.delete(data_key(lost))
    offsite.backend.barrier()  # a packed blob is dropped when the index is written
    assert [(p.key, p.kind) for p in verify(offsite, all=True).problems] == [(data_key(lost), "missing")]
    assert [r["key"] for r in repair(load(config_path), "offsite").repaired] == [data_key(lost)]
    assert b"".join(read_object(offsite.backend, lost)) == b"".join(read_object(primary.backend, lost))
    assert not store_status(load(config_path)).too_few_copies
