"""The DICOM node's bounds (issue 16, items 1 and 4): a peer that stalls or dribbles in the middle of a PDU has its
association ended after [dicom] network_timeout, its slot freed and its partial object discarded; an association
aborted mid-object leaves nothing; what a killed node left arriving is removed at the next start."""

from __future__ import annotations

import contextlib
import io
import socket
import time
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu import P_DATA_TF

from kit.dicom_large import write_large
from kit.dicom_node import NODE, SCU, NodeSite, call, ct_series, data_set, held, make_site, running
from kit.faults import small_disk
from rtvault.configured import open_catalog_for
from rtvault.dicom.received import IN_MEMORY
from rtvault.store import Store


def _pdus(site: NodeSite, path: Path) -> tuple[object, list[bytes]]:
    """An association with the node, and the P-DATA-TF PDUs of a C-STORE of `path` (16 KiB each), unsent."""
    dataset = pydicom.dcmread(path)
    ae = AE(ae_title=SCU)
    ae.add_requested_context(dataset.SOPClassUID, str(dataset.file_meta.TransferSyntaxUID))
    assoc = ae.associate("127.0.0.1", site.port, ae_title=NODE)
    assert assoc.is_established
    request = C_STORE()
    request.MessageID = 1
    request.AffectedSOPClassUID = dataset.SOPClassUID
    request.AffectedSOPInstanceUID = dataset.SOPInstanceUID
    request.Priority = 2
    request.DataSet = io.BytesIO(data_set(path))
    message = C_STORE_RQ()
    message.primitive_to_message(request)
    pdus = []
    for primitive in message.encode_msg(assoc.accepted_contexts[0].context_id, 16384):
        pdu = P_DATA_TF()
        pdu.from_primitive(primitive)
        pdus.append(pdu.encode())
    assert len(pdus) >= 3
    return assoc, pdus


def _arriving(site: NodeSite) -> list[Path]:
    return sorted((site.store / "dicom" / "spool").glob("*.incoming"))


def _nothing_stored(site: NodeSite) -> None:
    assert not _arriving(site)
    with open_catalog_for(site.config) as catalog:
        assert catalog.execute("SELECT COUNT(*) FROM dicom_instances")[0][0] == 0
    assert held(site) == {}


def _until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.slow
def test_a_peer_dribbling_a_pdu_is_ended_and_its_slot_freed(tmp_path: Path) -> None:
    site = make_site(tmp_path, network_timeout=2)
    path = tmp_path / "large.dcm"  # over IN_MEMORY: it arrives in a file
    write_large(path, IN_MEMORY + (1 << 20))
    with running(site, max_associations=1) as node:
        assoc, pdus = _pdus(site, path)
        sock = assoc.dul.socket.socket
        for pdu in pdus[:-1]:
            sock.sendall(pdu)
        sock.sendall(pdus[-1][:100])
        assert _until(lambda: _arriving(site) != [], 5)  # the partial object lies in its file
        started = time.monotonic()
        dribbled = 0
        while node._active() and time.monotonic() - started < 10:  # one byte every half second
            try:
                sock.sendall(pdus[-1][100 + dribbled:101 + dribbled])
            except OSError:
                break
            dribbled += 1
            time.sleep(0.5)
        took = time.monotonic() - started
        assert 1.5 < took < 6, took
        assert _until(lambda: not node._active(), 5)
        assoc.abort()
        assert _until(lambda: not _arriving(site), 5)
        # the one slot is free: the next sender is served
        [other] = ct_series(tmp_path / "again", 1)
        assert call("storescu", site, files=[other]).returncode == 0
    lines = [line for line in node.lines if "network_timeout" in line]
    assert len(lines) == 1 and f"{SCU}@127.0.0.1" in lines[0] and "partial object discarded" in lines[0], \
        "\n".join(node.lines)
    assert set(held(site)) == {str(pydicom.dcmread(other).SOPInstanceUID)}
    assert not _arriving(site)


@pytest.mark.slow
def test_a_connection_dribbling_its_association_request_is_closed(tmp_path: Path) -> None:
    """Before any association (no idle timer runs yet): an A-ASSOCIATE-RQ sent a byte at a time is cut off at the
    PDU's deadline, and the slot freed."""
    site = make_site(tmp_path, network_timeout=2)
    request = b"\x01\x00" + (200).to_bytes(4, "big") + b"\x00\x01\x00\x00"
    with running(site, max_associations=1) as node, socket.create_connection(("127.0.0.1", site.port)) as sock:
        started, closed = time.monotonic(), False
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.5)
        sock.settimeout(5)
        with contextlib.suppress(OSError):
            closed = closed or sock.recv(1024) is not None
        took = time.monotonic() - started
        assert closed and took < 4, took
        assert _until(lambda: not node._active(), 10)  # pynetdicom ends it at its ACSE timeout (2 + 5 s)
        [other] = ct_series(tmp_path / "in", 1)
        assert call("storescu", site, files=[other]).returncode == 0
    assert any("network_timeout" in line and "@127.0.0.1" in line for line in node.lines), "\n".join(node.lines)


def test_an_association_aborted_mid_object_leaves_nothing(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    path = tmp_path / "large.dcm"
    write_large(path, IN_MEMORY + (1 << 20))
    with running(site) as node:
        assoc, pdus = _pdus(site, path)
        for pdu in pdus[:-1]:
            assoc.dul.socket.socket.sendall(pdu)
        assert _until(lambda: _arriving(site) != [], 5)
        assoc.abort()
        assert _until(lambda: not _arriving(site) and not node._active(), 5)
    assert any("ended mid-object" in line and f"{SCU}@127.0.0.1" in line for line in node.lines), node.lines
    assert node.summary.stored == 0 and node.summary.failed == 0
    _nothing_stored(site)


def test_what_a_killed_node_left_arriving_is_removed_at_start(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    left = site.store / "dicom" / "spool" / "cstore-abc123.incoming"
    left.parent.mkdir(parents=True, exist_ok=True)
    left.write_bytes(b"\0" * 128 + b"DICM" + b"half an object")
    with running(site) as node:
        assert not left.exists()
    assert any("removed 1 data set(s) a stopped node left arriving" in line for line in node.lines), node.lines


def test_an_object_over_the_in_memory_size_is_streamed_byte_for_byte(tmp_path: Path) -> None:
    """An object larger than received.IN_MEMORY goes through the streamed path (file, spool and seal in blocks):
    stored byte for byte, nothing left arriving."""
    site = make_site(tmp_path)
    big = tmp_path / "big.dcm"
    write_large(big, IN_MEMORY + (2 << 20), patient_id="LARGE-0002")
    with running(site) as node:
        assert call("storescu", site, files=[big]).returncode == 0
    assert node.summary.stored == 1
    [(_uid, stored)] = held(site).items()
    assert data_set(stored) == data_set(big) and not _arriving(site)


def test_a_disk_filling_while_a_large_object_arrives_answers_out_of_resources(tmp_path: Path) -> None:
    """The file a large data set arrives in fills the disk: the C-STORE is answered 0xA700 (the peer sends again
    later), not aborted; the file is removed and nothing is stored."""
    big = tmp_path / "large.dcm"
    write_large(big, IN_MEMORY + (2 << 20))
    with small_disk(tmp_path / "disk", "4m") as disk:
        site = make_site(tmp_path)
        site.store = disk / "store"
        Store.init(site.store)
        site.write()
        with running(site) as node:
            refused = call("storescu", site, "-v", files=[big])
        assert "OutOfResources" in refused.stdout + refused.stderr, refused.stdout + refused.stderr
        assert node.summary.failed == 1 and node.summary.stored == 0
        assert any("failed 0xA700" in line and "could not be written" in line for line in node.lines), node.lines
        _nothing_stored(site)
