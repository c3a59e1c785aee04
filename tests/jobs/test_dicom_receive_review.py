"""The DICOM node's write path under the faults a review found: a duplicate in the same group as its original is
not answered before the original is durable; a spool whose objects were not indexed as they came is indexed
when sealed; a seal that failed is tried again while the node runs; the kernel's short writes (at most
0x7ffff000 bytes per write) are not taken for a full disk; an unexpected error in the writer fails its group
instead of leaving every later C-STORE waiting; a damaged record in the middle of a spool loses only itself,
said, and the spool is kept."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from kit.config import write_config
from kit.faults import fill, small_disk
from rtvault.catalog import dicom as catalog_dicom
from rtvault.catalog import indexer
from rtvault.config import load
from rtvault.configured import open_catalog_for
from rtvault.dicom.received import Streamed, dataset_of, describe, part10, streamed
from rtvault.errors import StoreError
from rtvault.jobs import dicom_receive
from rtvault.jobs.dicom_import import import_dicom
from rtvault.jobs.dicom_receive import Receiver
from rtvault.store import Store, receipts
from rtvault.store.locks import WriterLock
from rtvault.store.objects import read_object
from rtvault.store.receipts import ReceivedInstance
from rtvault.store.spool import Spool


def received(name: str) -> tuple[bytes, dict]:
    raw = Path(get_testdata_file(name)).read_bytes()
    dataset, syntax = dataset_of(raw)
    tags = describe(raw)
    return part10(dataset, tags["SOPClassUID"], tags["SOPInstanceUID"], syntax), tags


def site(tmp_path: Path, store: Path) -> object:
    config = load(write_config(tmp_path / "rtvault.toml", root=tmp_path / "db", stores={"primary": store},
                               catalog={"url": f"sqlite:///{tmp_path / 'catalog.sqlite'}"}))
    Store.init(store)
    return config


def sealed_hashes(store: Path) -> set[str]:
    return {i.hash for _, i in receipts.instances(Store.open(store).backend)}


def until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_twin_in_the_same_group_is_not_answered_before_its_original_is_durable(tmp_path: Path) -> None:
    """Two associations send the same object at once: both pass `put`'s check (neither is written yet) and the
    writer takes them in one group. That group fails (a full disk): neither may be told it is stored. (The two
    are queued as `put` queues them, while the writer is held in its indexing by the catalog's write lock taken
    elsewhere: `put`'s own check would wait on that lock too.)"""
    with small_disk(tmp_path / "disk", "4m") as disk:
        config = site(tmp_path, disk / "store")
        first, first_tags = received("CT_small.dcm")
        twin, twin_tags = received("MR_small.dcm")
        receiver = Receiver(config, seal_after_s=3600).start()
        blocker = sqlite3.connect(tmp_path / "catalog.sqlite", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        sender = threading.Thread(target=receiver.put, args=(first, first_tags))
        sender.start()
        assert until(lambda: len(receiver._held) == 1)  # durable; the writer now waits for the catalog
        filler = fill(disk)
        digest = hashlib.sha256(twin).hexdigest()
        twins = [dicom_receive._Item(twin, ReceivedInstance(digest, len(twin), "2026-01-01T00:00:00Z",
                                                            tags=twin_tags), Future()) for _ in range(2)]
        for item in twins:
            receiver._queue.put(item)
        blocker.execute("ROLLBACK")
        blocker.close()
        sender.join(timeout=40)
        outcomes = [item.done.exception(timeout=40) or item.done.result() for item in twins]
        filler.unlink()
        receiver.close()
        held = sealed_hashes(disk / "store")
        assert isinstance(outcomes[0], StoreError)  # the original: out of resources
        for outcome in outcomes[1:]:  # its twin: the same answer, or, answered stored, really stored
            assert isinstance(outcome, StoreError) or outcome.hash in held, f"answered {outcome} but not stored"


def test_objects_not_indexed_as_they_came_are_indexed_when_their_spool_is_sealed(tmp_path: Path) -> None:
    """The catalog refused the receiver's rows (a lock timeout, a constraint): the seal, or the next sync as the
    problem promises, still indexes them."""
    config = site(tmp_path, tmp_path / "store")
    data, tags = received("CT_small.dcm")
    with Receiver(config, seal_after_s=3600) as receiver:
        with open_catalog_for(config) as catalog:
            catalog.execute("CREATE TRIGGER refuse BEFORE INSERT ON dicom_instances "
                            "BEGIN SELECT RAISE(ABORT, 'refused for the test'); END")
        stored = receiver.put(data, tags)
        receiver.indexed()
        assert any("not indexed yet" in str(p) for p in receiver.problems)
        with open_catalog_for(config) as catalog:
            catalog.execute("DROP TRIGGER refuse")
    with open_catalog_for(config) as catalog:
        indexer.sync(catalog, {"primary": Store.open(tmp_path / "store")})
        rows = catalog.execute("SELECT sop_instance, hash, receipt FROM dicom_instances")
    [ident] = receipts.ids(Store.open(tmp_path / "store").backend)
    assert rows == [(tags["SOPInstanceUID"], stored.hash, ident)]


@pytest.mark.slow
def test_a_seal_that_failed_is_tried_again_while_the_node_runs(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A prune held locks/seal.json longer than a seal waits: the spool is sealed once it is free, not months later
    when the node next starts (until then its objects are on one disk only: replication skips the spool)."""
    monkeypatch.setattr(dicom_receive, "SEAL_WAIT_S", 0.3)
    monkeypatch.setattr(dicom_receive, "SEAL_RETRY_S", 0.3)
    config = site(tmp_path, tmp_path / "store")
    data, tags = received("CT_small.dcm")
    store = Store.open(tmp_path / "store")
    prune_lock = WriterLock(store.base, "prune", 60, key=receipts.SEAL_LOCK)
    prune_lock.acquire()
    with Receiver(config, seal_after_s=0.2) as receiver:
        stored = receiver.put(data, tags)
        assert until(lambda: any("could not be sealed" in str(p) for p in receiver.problems))
        prune_lock.release()
        assert until(lambda: stored.hash in sealed_hashes(tmp_path / "store"))
        assert until(lambda: not list((tmp_path / "store" / "dicom" / "spool").glob("*.spool")))
        assert receiver.read(stored.hash) == data
    assert receiver.problems == []  # sealed after all: nothing left to report


def test_short_writes_are_not_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Linux writes at most 0x7ffff000 bytes per write(2): an object over 2 GiB always comes back short. Emulated
    with a smaller cap: the record is written whole."""
    config = site(tmp_path, tmp_path / "store")
    data, tags = received("CT_small.dcm")
    real_write = os.write
    with Receiver(config, seal_after_s=3600) as receiver:
        with monkeypatch.context() as patch:
            patch.setattr(os, "write", lambda fd, block: real_write(fd, bytes(memoryview(block)[:4096])))
            stored = receiver.put(data, tags)
        assert receiver.read(stored.hash) == data
    assert b"".join(read_object(Store.open(tmp_path / "store").backend, stored.hash)) == data


@pytest.mark.slow
def test_an_object_larger_than_the_memory_left_is_spooled(tmp_path: Path) -> None:
    """An object larger than the memory the process has left is stored all the same: its spool record is written
    in blocks (sealed a chunk at a time in an encrypted store), never built whole; the next object follows."""
    config = site(tmp_path, tmp_path / "store")
    script = textwrap.dedent(f"""
        import resource, sys, threading
        from pathlib import Path
        from rtvault.config import load
        from rtvault.errors import StoreError
        from rtvault.jobs.dicom_receive import Receiver
        receiver = Receiver(load(Path({str(config.file)!r}))).start()
        huge = bytes(300 << 20)
        small = b"x" * 1000
        used = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (used + (120 << 20), resource.RLIM_INFINITY))
        outcome = []
        def send():
            try:
                receiver.put(huge, {{}})
                outcome.append("stored")
            except StoreError:
                outcome.append("refused")
            try:
                receiver.put(small, {{}})
                outcome.append("stored")
            except StoreError as error:
                outcome.append(str(error))
        thread = threading.Thread(target=send, daemon=True)
        thread.start()
        thread.join(20)
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        print(outcome if outcome else "hung", flush=True)
        import os
        os._exit(0)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert done.stdout.strip() == "['stored', 'stored']", done.stdout + done.stderr


class _Failing(Streamed):
    """A streamed object whose reading fails with an error no one expects (a bug)."""

    def blocks(self) -> Iterator[bytes]:
        yield self.head
        raise RuntimeError("unexpected")


def test_the_writer_survives_an_unexpected_error(tmp_path: Path) -> None:
    """An unexpected error while an object is spooled fails that C-STORE (out of resources: sent again later) and
    leaves no part of it in the spool; the writer thread lives on, so the next object is stored instead of its
    sender waiting for ever."""
    config = site(tmp_path, tmp_path / "store")
    data, tags = received("CT_small.dcm")
    dataset, syntax = dataset_of(data)
    arrived = tmp_path / "arrived.dcm"
    arrived.write_bytes(data)
    good = streamed(arrived, tags["SOPClassUID"], tags["SOPInstanceUID"], syntax)
    assert good.hash == hashlib.sha256(part10(dataset, tags["SOPClassUID"], tags["SOPInstanceUID"], syntax)).hexdigest()
    bad = _Failing(good.head, good.path, good.offset, good.size, good.hash)
    with Receiver(config, seal_after_s=3600) as receiver:
        with pytest.raises(StoreError, match="send it again"):
            receiver.put(bad, tags)
        stored = receiver.put(good, tags)
        assert not stored.duplicate and receiver.read(stored.hash) == part10(dataset, tags["SOPClassUID"],
                                                                             tags["SOPInstanceUID"], syntax)
    assert sealed_hashes(tmp_path / "store") == {stored.hash}


def test_a_damaged_record_mid_spool_loses_only_itself_and_says_so(tmp_path: Path) -> None:
    """A spool left by a killed receiver, one record of which was damaged on disk: the records after it are
    sealed too, the damage is named, and the spool is kept (renamed) rather than deleted."""
    config = site(tmp_path, tmp_path / "store")
    samples = [received(name) for name in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm")]
    spool = Spool.create(tmp_path / "store", "20260101T000000Z-host-1-1", None)
    offsets = []
    for data, tags in samples:
        instance = ReceivedInstance(hashlib.sha256(data).hexdigest(), len(data),
                                    "2026-01-01T00:00:00Z", "SCANNER", "RTVAULT", "network", "", tags)
        offsets.append(spool.append(instance.to_json(), data))
    spool.sync()
    spool.close()
    raw = bytearray(spool.path.read_bytes())
    raw[offsets[1] + 200] ^= 0xFF  # a flipped byte inside the second record
    spool.path.write_bytes(bytes(raw))
    problems = []
    with Receiver(config, warn=problems.append) as receiver:
        pass
    hashes = [hashlib.sha256(d).hexdigest() for d, _ in samples]
    assert sealed_hashes(tmp_path / "store") == {hashes[0], hashes[2]}
    assert any("damaged" in str(p) for p in receiver.problems), receiver.problems
    assert not list((tmp_path / "store" / "dicom" / "spool").glob("*.spool"))  # not sealed again at each start
    assert list((tmp_path / "store" / "dicom" / "spool").glob("*.damaged"))  # kept for whoever investigates
    assert json.dumps([str(p) for p in problems])


def test_a_receiver_whose_lock_was_taken_over_answers_nothing_stored(tmp_path: Path) -> None:
    """Its lease not renewed in time (a NAS that hung for two minutes), another receiver takes the store over and
    seals every spool there, this one's too, removing it: what this one appends afterwards goes to a removed file.
    It must not be answered as stored."""
    config = site(tmp_path, tmp_path / "store")
    (first, first_tags), (second, second_tags) = received("CT_small.dcm"), received("MR_small.dcm")
    receiver = Receiver(config, seal_after_s=3600).start()
    kept = receiver.put(first, first_tags)
    lock = receiver.store.base
    record = json.loads(lock.get(dicom_receive.RECEIVER_LOCK))
    lock.replace(dicom_receive.RECEIVER_LOCK, json.dumps({**record, "expires": 0}).encode())  # the lease lapsed
    other = Receiver(config).start()  # takes the stale lease over, seals the spool it finds
    try:
        second_put = receiver.put(second, second_tags)
    except StoreError as error:
        second_put = error
    other.close()
    receiver.close()
    held = sealed_hashes(tmp_path / "store")
    assert kept.hash in held
    assert isinstance(second_put, StoreError) or second_put.hash in held, f"answered {second_put}, not stored"


def test_an_imported_file_whose_meta_length_lies_is_not_stored_as_garbage(tmp_path: Path) -> None:
    """A Part 10 file whose (0002,0000) group length is 8 bytes too long: pydicom reads it, but the data set cut
    after the length it declares is no data set. Stored, it would be indexed as a CT no one can read back."""
    config = site(tmp_path, tmp_path / "store")
    raw = bytearray(Path(get_testdata_file("CT_small.dcm")).read_bytes())
    raw[140:144] = (int.from_bytes(raw[140:144], "little") + 8).to_bytes(4, "little")
    (tmp_path / "medium").mkdir()
    (tmp_path / "medium" / "IM0001").write_bytes(bytes(raw))
    report = import_dicom(config, [tmp_path / "medium"])
    assert report.stored == 0 and [n.source for n in report.not_imported] == [str(tmp_path / "medium" / "IM0001")]
    assert sealed_hashes(tmp_path / "store") == set()


def test_a_spool_of_unreadable_records_leaves_no_object_taken_for_held(tmp_path: Path) -> None:
    """The receiver indexed an object as it made it durable; the disk then damaged its record. Sealed, the spool
    gives no receipt: its catalog rows must go, or the object would be found by C-FIND, never retrieved, and the
    sender's new copy answered "duplicate" and thrown away."""
    config = site(tmp_path, tmp_path / "store")
    (data, tags), (other, other_tags) = received("CT_small.dcm"), received("MR_small.dcm")
    ident = "20260101T000000Z-host-1-1"
    spool = Spool.create(tmp_path / "store", ident, None)
    instance = ReceivedInstance(hashlib.sha256(data).hexdigest(), len(data), "2026-01-01T00:00:00Z", tags=tags)
    at = spool.append(instance.to_json(), data)
    spool.append(ReceivedInstance(hashlib.sha256(other).hexdigest(), len(other), "2026-01-01T00:00:00Z",
                                  tags=other_tags).to_json(), other)
    spool.sync()
    spool.close()
    receiver = Receiver(config)
    with open_catalog_for(config) as catalog:
        catalog_dicom.add(catalog, receiver.store_id, catalog_dicom.SPOOL_PREFIX + ident, "", [instance])
    raw = bytearray(spool.path.read_bytes())
    raw[at + 200] ^= 0xFF
    raw[-40] ^= 0xFF  # the second record damaged too: nothing whole is left
    spool.path.write_bytes(bytes(raw))
    with receiver:
        assert not receiver.put(data, tags).duplicate  # stored anew, not taken for held
    assert instance.hash in sealed_hashes(tmp_path / "store")
