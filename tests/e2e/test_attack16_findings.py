"""Hostile tests of the DICOM node (issue 16): what a hospital network and careless or hostile peers do to
`rtvault dicom serve`, each finding a test that failed before its fix."""

from __future__ import annotations

import io
import shutil
import signal
import socket
import sqlite3
import threading
import time
import tracemalloc
from pathlib import Path

import pydicom
import pynetdicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    CTImageStorage,
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
)

from kit import faults
from kit.cli import rtvault
from kit.config import add_tables
from kit.dicom_node import (
    ARCHIVE,
    NODE,
    SCU,
    NodeSite,
    call,
    ct_series,
    data_set,
    held,
    make_site,
    running,
    sample,
    served,
)
from kit.faults import fill, small_disk
from kit.files import free_port
from rtvault.catalog import dicom as catalog_dicom
from rtvault.configured import open_catalog_for
from rtvault.dicom.received import describe, part10
from rtvault.jobs import dicom_receive
from rtvault.jobs.dicom_receive import Receiver
from rtvault.store import Store

pytestmark = pytest.mark.slow  # real servers and dcmtk processes

ASSOCIATE_RQ_HEAD = b"\x01\x00\x00\x00\x10\x00"  # an A-ASSOCIATE-RQ PDU announcing 4,096 bytes


def half_open(port: int, count: int) -> list[socket.socket]:
    """`count` connections that each start a PDU and never finish it (a peer that crashed or lost its link)."""
    peers = []
    for _ in range(count):
        peer = socket.create_connection(("127.0.0.1", port))
        peer.sendall(ASSOCIATE_RQ_HEAD + b"\x00\x01")
        peers.append(peer)
    return peers


def test_peers_stalled_mid_pdu_give_their_slots_back(tmp_path: Path) -> None:
    """Finding: a connection that stops in the middle of a PDU held an association slot for ever (pynetdicom
    reads a PDU in a blocking recv where its ARTIM and idle timers never run): a few of them and every peer was
    refused "too many associations" until the node was restarted."""
    site = make_site(tmp_path)
    with running(site, max_associations=2) as node:
        node.ae.network_timeout = node.ae.acse_timeout = 1.5  # 60 s and 30 s in service
        peers = half_open(site.port, 2)
        try:
            time.sleep(0.5)
            assert call("echoscu", site, "-to", "5").returncode != 0  # both slots taken, for now
            time.sleep(3)
            echo = call("echoscu", site, "-to", "5")
        finally:
            for peer in peers:
                peer.close()
        assert echo.returncode == 0, echo.stderr


def test_sigterm_stops_the_node_despite_peers_stalled_mid_pdu(tmp_path: Path) -> None:
    """Finding: with a peer stalled in the middle of a PDU, SIGTERM never stopped `rtvault dicom serve` (its
    stop aborted the association, which waited for a thread blocked in recv): the daemon could not stop it."""
    site = make_site(tmp_path)
    with served(site) as node:
        peers = half_open(site.port, 2)
        time.sleep(0.5)
        started = time.monotonic()
        code, _out, log = node.stop(signal.SIGTERM, timeout=30)
        assert code == 0, log
        assert time.monotonic() - started < 20
        for peer in peers:
            peer.close()


def _send_in_associations(port: int, files: list[Path], per_association: int, answered: dict[str, int],
                          stop: threading.Event, waits: list[float] | None = None) -> None:
    """Send `files` with pynetdicom, `per_association` objects per association, recording each answer's status
    by SOP Instance UID; ends quietly when the node dies."""
    for start in range(0, len(files), per_association):
        if stop.is_set():
            return
        ae = AE(ae_title=SCU)
        ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
        assoc = ae.associate("127.0.0.1", port, ae_title=NODE)
        if not assoc.is_established:
            return
        for path in files[start:start + per_association]:
            dataset = pydicom.dcmread(path)
            started = time.monotonic()
            status = assoc.send_c_store(dataset)
            if waits is not None:
                waits.append(time.monotonic() - started)
            if not status or "Status" not in status:
                return
            answered[str(dataset.SOPInstanceUID)] = int(status.Status)
        assoc.release()


def test_sigkill_mid_association_and_mid_seal_loses_nothing_answered(tmp_path: Path) -> None:
    """SIGKILL `rtvault dicom serve` while peers send (associations ending, so seals under way): after a restart,
    every object answered success is in a receipt, byte for byte; `rtvault check --read-data` passes."""
    site = make_site(tmp_path)
    files = ct_series(tmp_path / "series", 120)
    answered: dict[str, int] = {}
    for round_ in range(3):
        part = files[round_ * 40:(round_ + 1) * 40]
        with served(site) as node:
            stop = threading.Event()
            senders = [threading.Thread(target=_send_in_associations,
                                        args=(site.port, part[i::2], 3, answered, stop)) for i in range(2)]
            for sender in senders:
                sender.start()
            time.sleep(1.0 + round_ * 0.7)
            node.child.kill()
            node.child.wait()
            stop.set()
            for sender in senders:
                sender.join(timeout=60)
    with served(site) as node:  # seals what the killed ones left
        code, _out, log = node.stop(signal.SIGTERM)
    assert code == 0, log
    success = {uid for uid, status in answered.items() if status == 0}
    assert success, "no object was answered before the kills"
    stored = held(site)
    originals = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in files}
    assert success <= set(stored)
    for uid in stored:
        assert data_set(stored[uid]) == data_set(originals[uid])
    assert not list((site.store / "dicom" / "spool").glob("*.spool"))
    checked = rtvault(site.config_path, "check", "--read-data")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_backup_and_prune_while_a_peer_sends_200_objects(tmp_path: Path) -> None:
    """`rtvault backup`, `forget` and `prune` run while two peers send 200 objects: each answered success, none
    waiting long (the node has its own lock), all in receipts byte for byte, the store checks clean."""
    pinnacle = faults.make_site(tmp_path / "site", patients=3, image_mb=0.1)
    site = NodeSite(tmp_path, pinnacle.store, pinnacle.config, port=free_port(), archive_port=free_port())
    add_tables(pinnacle.config, dicom={"ae_title": NODE, "host": "127.0.0.1", "port": site.port,
                                       "peers": {"scu": {"ae_title": SCU}}})
    files = ct_series(tmp_path / "series", 200)
    answered: dict[str, int] = {}
    waits: list[float] = []
    with served(site) as node:
        stop = threading.Event()
        senders = [threading.Thread(target=_send_in_associations,
                                    args=(site.port, files[i::2], 10, answered, stop, waits)) for i in range(2)]
        for sender in senders:
            sender.start()
        pinnacle.run("backup")
        pinnacle.run("forget")
        pinnacle.run("prune")
        pinnacle.run("backup")
        pinnacle.run("prune")
        for sender in senders:
            sender.join(timeout=300)
        pinnacle.run("prune")
        code, _out, log = node.stop(signal.SIGTERM)
    assert code == 0, log
    assert len(answered) == 200 and set(answered.values()) == {0}
    assert max(waits) < 10, sorted(waits)[-5:]
    stored = held(site)
    assert len(stored) == 200
    originals = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in files}
    assert all(data_set(stored[uid]) == data_set(originals[uid]) for uid in stored)
    pinnacle.run("prune")
    pinnacle.run("check", "--read-data")


def _find(port: int, level: str, **keys: str) -> list[Dataset]:
    ae = AE(ae_title=SCU)
    ae.add_requested_context(PatientRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", port, ae_title=NODE)
    assert assoc.is_established
    query = Dataset()
    query.SpecificCharacterSet = "ISO_IR 192"
    query.QueryRetrieveLevel = level
    query.PatientName = ""
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    found = [ident for status, ident in assoc.send_c_find(query, PatientRootQueryRetrieveInformationModelFind)
             if status and status.Status in (0xFF00, 0xFF01)]
    assoc.release()
    return found


def test_find_matches_accented_patient_names_without_case(tmp_path: Path) -> None:
    """Finding (fixed on main meanwhile by `name_fold`, kept as its test): with a SQLite catalog, C-FIND's
    PatientName matching (documented "without case") lowered the query in Python but the column with SQLite's
    ASCII-only LOWER: a French name with an accented capital (DUPRÉ^ÉLODIE) was not found even asked exactly."""
    site = make_site(tmp_path)
    path = sample("CT_small.dcm", tmp_path / "in", PatientName="DUPRÉ^ÉLODIE", PatientID="FR-1",
                  SpecificCharacterSet="ISO_IR 192")
    with running(site):
        assert call("storescu", site, files=[path]).returncode == 0
        for asked in ("DUPRÉ^ÉLODIE", "dupré^élodie", "DUPRÉ*", "dupré*"):
            found = _find(site.port, "PATIENT", PatientID="", PatientName=asked)
            assert [str(f.PatientID) for f in found] == ["FR-1"], asked


def test_a_locked_catalog_does_not_hold_up_c_store(tmp_path: Path) -> None:
    """Finding: the writer thread indexed each group in the catalog before answering its senders, so a catalog
    locked by another writer (a long `catalog sync`, a rebuild) held every C-STORE up to SQLite's 30 s busy
    timeout; the store is the truth: C-STORE is answered once durable, the catalog catches up."""
    site = make_site(tmp_path)
    files = ct_series(tmp_path / "in", 3)
    with running(site):
        locker = sqlite3.connect(tmp_path / "catalog.sqlite", isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")
        try:
            started = time.monotonic()
            sent = call("storescu", site, files=files)
            took = time.monotonic() - started
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert sent.returncode == 0, sent.stderr
        assert took < 8, f"C-STORE waited {took:.1f} s for the catalog"
        deadline = time.monotonic() + 30
        while len(_find(site.port, "IMAGE", PatientID="", SOPInstanceUID="")) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(_find(site.port, "IMAGE", PatientID="", SOPInstanceUID="")) == 3
    assert len(held(site)) == 3


def test_a_version_sent_again_after_a_newer_one_is_what_retrieve_sends(tmp_path: Path) -> None:
    """Finding: the same SOP instance sent as version A, then B (corrected), then A again (the sender reverted):
    each answered success, but the third was a 'duplicate' (A's bytes already held) that left no trace of being
    received, so C-FIND, C-MOVE and C-GET kept answering B. A version sent again after another is received anew."""
    site = make_site(tmp_path)
    first = sample("CT_small.dcm", tmp_path / "a", SeriesDescription="version A")
    dataset = pydicom.dcmread(first)
    dataset.SeriesDescription = "version B"
    second = tmp_path / "b.dcm"
    dataset.save_as(second, enforce_file_format=True)
    uid = str(dataset.SOPInstanceUID)
    with running(site) as node:
        for path in (first, second, first):
            assert call("storescu", site, files=[path]).returncode == 0
        with open_catalog_for(site.config) as catalog:
            [item] = catalog_dicom.held(catalog, "IMAGE", {"SOPInstanceUID": uid}, store=node.receiver.store_id)
        sent = pydicom.dcmread(io.BytesIO(node.receiver.read(item.hash)))
        assert call("storescu", site, files=[first]).returncode == 0  # A once more: now a plain duplicate
    assert sent.SeriesDescription == "version A"
    assert (node.summary.stored, node.summary.duplicates) == (3, 1)


def test_a_truncated_data_set_is_refused_not_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding: a data set cut short (a file truncated on a damaged medium, a sender's bug), or one whose last
    element declares 4 GB and holds ten bytes, was stored and answered success: pydicom reads a value cut short
    with a warning only. It is now refused 0xC000 and nothing is written."""
    site = make_site(tmp_path)
    whole = sample("CT_small.dcm", tmp_path / "in")
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(whole.read_bytes()[:-5000])  # inside the pixel data
    lying = tmp_path / "lying.dcm"
    body = data_set(whole)
    lying.write_bytes(whole.read_bytes()[:-len(body)] + body[:body.index(b"\xe0\x7f\x10\x00")]
                      + b"\xe0\x7f\x10\x00OW\x00\x00" + (0xFFFFFFF0).to_bytes(4, "little") + b"0123456789")
    with running(site) as node:
        ae = AE(ae_title=SCU)
        ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
        assoc = ae.associate("127.0.0.1", site.port, ae_title=NODE)
        assert assoc.is_established
        monkeypatch.setattr(pynetdicom._config, "STORE_SEND_CHUNKED_DATASET", True)  # the file's bytes as they lie
        statuses = [int(assoc.send_c_store(path).Status) for path in (cut, lying, whole)]
        assoc.release()
        assert statuses == [0xC000, 0xC000, 0x0000]
        assert any("truncated" in line for line in node.lines)
    assert list(held(site)) == [str(pydicom.dcmread(whole).SOPInstanceUID)]


def test_a_backslash_in_patient_id_is_kept_not_a_python_list(tmp_path: Path) -> None:
    """Finding: a PatientID holding a backslash (which pydicom splits into values) was indexed as the Python
    list's text, "['A', 'B']": `rtvault search` showed that MRN and C-FIND could not find the patient."""
    site = make_site(tmp_path)
    path = sample("CT_small.dcm", tmp_path / "in", PatientID="A\\B")
    with running(site):
        assert call("storescu", site, files=[path]).returncode == 0
        found = _find(site.port, "PATIENT", PatientID="A\\B")
        assert [list(f.PatientID) for f in found] == [["A", "B"]]  # pydicom splits it again
    found = rtvault(site.config_path, "search", "--mrn", "A\\B")
    assert "MRN A\\B" in found.stdout and "[" not in found.stdout, found.stdout


def test_a_seal_that_failed_is_tried_again_while_the_node_runs(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding (fixed on main meanwhile by the receiver's review, kept as its test): a spool whose seal failed
    (the store full for a moment) was sealed only at the node's next start: a node run by the daemon for weeks
    kept those objects in its spool alone, with no receipt, so replication never copied them and `status` never
    named them. The sealer tries again while the node runs."""
    monkeypatch.setattr(dicom_receive, "SEAL_RETRY_S", 0.5)
    with small_disk(tmp_path / "disk", "4m") as disk:
        site = make_site(tmp_path)
        site.store = disk / "store"
        Store.init(site.store)
        site.write()
        files = ct_series(tmp_path / "in", 4)
        with running(site) as node:
            assoc = AE(ae_title=SCU)
            assoc.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
            association = assoc.associate("127.0.0.1", site.port, ae_title=NODE)
            assert [int(association.send_c_store(pydicom.dcmread(p)).Status) for p in files[:2]] == [0, 0]
            filler = fill(disk)
            association.release()  # its end seals the spool: the store is full
            deadline = time.monotonic() + 10
            while not node.receiver.problems and time.monotonic() < deadline:
                time.sleep(0.1)
            assert node.receiver.problems, "the seal did not fail: the disk was not full"
            filler.unlink()
            deadline = time.monotonic() + 10
            while list((site.store / "dicom" / "spool").glob("*.spool")) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not list((site.store / "dicom" / "spool").glob("*.spool"))
            assert len(held(site)) == 2  # in a receipt, the node still running
        assert node.summary.problems == []  # sealed after all: no lasting problem


def test_reading_a_spooled_object_reads_that_object_alone(tmp_path: Path) -> None:
    """Finding: `Receiver.read` of an object not sealed yet (a C-MOVE or C-GET right after it came) read the
    whole spool file into memory (up to 256 MiB) and walked it, for every object: ten peers retrieving from a
    full spool needed gigabytes. It now reads the one record."""
    site = make_site(tmp_path)
    paths = ct_series(tmp_path / "in", 30)
    with Receiver(site.config, seal_after_s=3600) as receiver:
        stored = []
        for path in paths:
            dataset = pydicom.dcmread(path)
            dataset.add_new(0x00291010, "OB", bytes(1 << 20))  # 1 MiB each: a 30 MiB spool
            body = io.BytesIO()
            dataset.save_as(body, enforce_file_format=True)
            data = part10(data_set(body.getvalue()), CTImageStorage, str(dataset.SOPInstanceUID),
                          ExplicitVRLittleEndian)
            stored.append((receiver.put(data, describe(data)).hash, data))
        assert len(list((site.store / "dicom" / "spool").glob("*.spool"))) == 1
        tracemalloc.start()
        try:
            assert receiver.read(stored[0][0]) == stored[0][1]
            _now, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 6 << 20, f"reading one 1 MiB object took {peak >> 20} MiB"
        assert receiver.read(stored[-1][0]) == stored[-1][1]


def test_a_find_with_a_64_kib_uid_list_matches_and_logs_a_short_line(tmp_path: Path) -> None:
    """Finding: a C-FIND listing 1,000 UIDs of 64 characters (the most the node matches) is answered right, but
    its log line and audit row held the whole 64 KiB identifier: a peer looping on such queries filled the log
    and the catalog. Each value is now cut at 200 characters there, its length said."""
    site = make_site(tmp_path)
    files = ct_series(tmp_path / "in", 2)
    uids = [str(pydicom.dcmread(p).SOPInstanceUID) for p in files]
    filler = [f"1.2.826.0.1.3680043.8.498.{10 ** 37 + n}" for n in range(998)]  # 64 characters each
    with running(site) as node:
        assert call("storescu", site, files=files).returncode == 0
        found = _find(site.port, "IMAGE", PatientID="", SOPInstanceUID="\\".join([uids[0], *filler, uids[1]]))
        assert sorted(str(f.SOPInstanceUID) for f in found) == sorted(uids)
        assert max(len(line) for line in node.lines) < 4000  # the log shows the start of a long value
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open_catalog_for(site.config) as catalog:
            finds = catalog.execute("SELECT LENGTH(detail) FROM audit WHERE action = 'dicom_find'")
        if finds:
            break
        time.sleep(0.2)
    assert finds and max(length for (length,) in finds) < 4000


def test_an_object_the_catalog_knows_but_the_store_lost_is_stored_again(tmp_path: Path) -> None:
    """Finding: the duplicate check trusted the catalog alone: after the store's disk was restored from an older
    copy (same store, its receipts of the last days gone) the peers' resending of those days was answered
    "already held", success, and nothing was stored. The store is the truth: a catalog row counts only when the
    store holds the object."""
    site = make_site(tmp_path)
    [path] = ct_series(tmp_path / "in", 1)
    shutil.copytree(site.store, tmp_path / "older-copy")
    with running(site):
        assert call("storescu", site, files=[path]).returncode == 0
    assert len(held(site)) == 1
    shutil.rmtree(site.store)
    shutil.copytree(tmp_path / "older-copy", site.store)  # the disk restored: the catalog still lists the object
    assert held(site) == {}
    with running(site) as node:
        assert call("storescu", site, files=[path]).returncode == 0  # the PACS sends the last days again
    assert (node.summary.stored, node.summary.duplicates) == (1, 0)
    assert list(held(site)) == [str(pydicom.dcmread(path).SOPInstanceUID)]


def test_a_second_node_on_the_same_store_says_why_and_seals_nothing(tmp_path: Path) -> None:
    """Finding: a second `rtvault dicom serve` on a store a node receives into was refused (exit 6) with the
    store lock's "try again later", and then logged "stopped; the spool is sealed into ..." for a spool it
    never held. It now names the other receiver and what to do, and logs no seal."""
    site = make_site(tmp_path)
    with served(site):
        second = rtvault(site.config_path, "dicom", "serve", "--port", str(free_port()), expect=6)
    assert "another DICOM node or `rtvault dicom import` is receiving into" in second.stderr, second.stderr
    assert "[dicom] store" in second.stderr and "spool is sealed" not in second.stderr, second.stderr


def test_a_sop_instance_uid_with_control_characters_is_refused(tmp_path: Path) -> None:
    """Finding: a SOP Instance UID holding an escape sequence (or letters) was stored and indexed as sent: the
    object then carried a name no peer accepts and every listing had to defuse. A UID is digits and dots."""
    site = make_site(tmp_path)
    good = pydicom.dcmread(sample("CT_small.dcm", tmp_path / "in"))
    bad = pydicom.dcmread(sample("CT_small.dcm", tmp_path / "in"))
    bad.SOPInstanceUID = "1.2.3\x1b[31mRED\x1b[0m"
    with running(site) as node:
        ae = AE(ae_title=SCU)
        ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
        assoc = ae.associate("127.0.0.1", site.port, ae_title=NODE)
        statuses = [int(assoc.send_c_store(dataset).Status) for dataset in (bad, good)]
        assoc.release()
    assert statuses == [0xC000, 0x0000]
    assert list(held(site)) == [str(good.SOPInstanceUID)]
    assert any("is not a UID" in line for line in node.lines)


def test_a_move_to_a_peer_that_is_down_and_a_get_of_nothing_are_audited(tmp_path: Path) -> None:
    """Finding: a C-MOVE whose destination (a configured peer) did not accept the association, and a C-GET that
    matched nothing, left no log line and no audit entry: pynetdicom drops the handler before its end, where the
    node wrote them. An operator chasing a peer that "never receives" saw nothing."""
    site = make_site(tmp_path)  # the ARCHIVE peer's port: nothing listens there
    files = ct_series(tmp_path / "in", 2, PatientID="MOVE-1")
    with running(site) as node:
        assert call("storescu", site, files=files).returncode == 0
        ae = AE(ae_title=SCU)
        ae.add_requested_context(PatientRootQueryRetrieveInformationModelMove)
        ae.add_requested_context(PatientRootQueryRetrieveInformationModelGet)
        assoc = ae.associate("127.0.0.1", site.port, ae_title=NODE)
        query = Dataset()
        query.QueryRetrieveLevel = "PATIENT"
        query.PatientID = "MOVE-1"
        moved = [int(status.Status) for status, _ in
                 assoc.send_c_move(query, ARCHIVE, PatientRootQueryRetrieveInformationModelMove)]
        query.PatientID = "NOBODY"
        got = [int(status.Status) for status, _ in assoc.send_c_get(query, PatientRootQueryRetrieveInformationModelGet)]
        assoc.release()
    assert moved == [0xA801] and got == [0x0000]
    assert any(line.startswith("dicom_move") and "failed 0xA801: ARCHIVE at 127.0.0.1" in line
               for line in node.lines), node.lines
    assert any(line.startswith("dicom_get") and "count=0" in line for line in node.lines), node.lines
    with open_catalog_for(site.config) as catalog:
        audited = [r[0] for r in catalog.execute("SELECT action FROM audit WHERE action IN "
                                                 "('dicom_move', 'dicom_get')")]
    assert sorted(audited) == ["dicom_get", "dicom_move"]


def test_a_node_started_on_a_new_catalog_finds_what_the_store_holds(tmp_path: Path) -> None:
    """Finding: the node indexed only what it received itself: started beside a new, rebuilt or restored
    catalog, its C-FIND answered "nothing" for everything the store held (a peer concludes the archive is empty)
    until someone ran `rtvault catalog sync`. It now indexes the store's receipts the catalog lacks at start."""
    site = make_site(tmp_path)
    files = ct_series(tmp_path / "in", 3, PatientID="CAT-1")
    with running(site):
        assert call("storescu", site, files=files).returncode == 0
    for path in tmp_path.glob("catalog.sqlite*"):
        path.unlink()  # the catalog lost (or restored from last month's copy)
    with running(site):
        found = _find(site.port, "IMAGE", PatientID="CAT-1", SOPInstanceUID="")
    assert sorted(str(f.SOPInstanceUID) for f in found) == sorted(str(pydicom.dcmread(p).SOPInstanceUID)
                                                                  for p in files)
