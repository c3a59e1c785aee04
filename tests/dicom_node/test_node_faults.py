"""The node when things go wrong: an association cut mid-object leaves nothing; a full store answers "out of
resources" (0xA700) and takes the object once space is freed; a peer is slowed, never dropped."""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

import pydicom
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage

from kit.dicom_node import NODE, SCU, call, ct_series, data_set, held, held_now, make_site, running
from kit.faults import fill, small_disk
from rtvault.configured import open_catalog_for
from rtvault.store import Store


def rows(site) -> int:
    with open_catalog_for(site.config) as catalog:
        return catalog.one("SELECT COUNT(*) FROM dicom_instances")[0]


def test_an_association_cut_mid_object_leaves_nothing(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    [path] = ct_series(tmp_path / "in", 1)
    with running(site) as node:
        ae = AE(ae_title=SCU)
        ae.add_requested_context(CTImageStorage, "1.2.840.10008.1.2.1")
        assoc = ae.associate("127.0.0.1", site.port, ae_title=NODE)
        assert assoc.is_established
        raw: socket.socket = assoc.dul.socket.socket
        context = assoc.accepted_contexts[0].context_id
        body = data_set(path)
        # a P-DATA-TF announcing the whole data set as its last fragment, of which half is sent
        pdv = struct.pack(">IB", len(body) + 2, context) + b"\x02" + body
        pdu = struct.pack(">BBI", 0x04, 0, len(pdv)) + pdv
        raw.sendall(pdu[:len(pdu) // 2])
        raw.shutdown(socket.SHUT_RDWR)
        raw.close()
        deadline = time.monotonic() + 10
        while any(a.is_acceptor and a.is_alive() for a in node.ae.active_associations) and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        assert held_now(site, node) == {}
        assert rows(site) == 0
        assert call("storescu", site, files=[path]).returncode == 0  # the node serves on
    assert list(held(site)) == [str(pydicom.dcmread(path).SOPInstanceUID)]


def test_a_full_store_answers_out_of_resources_then_takes_the_object(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "4m") as disk:
        site = make_site(tmp_path)
        site.store = disk / "store"
        Store.init(site.store)
        site.write()
        files = ct_series(tmp_path / "in", 2)
        with running(site) as node:
            filler = fill(disk)
            refused = call("storescu", site, "-v", files=files[:1])
            assert "OutOfResources" in refused.stdout + refused.stderr or "a700" in \
                (refused.stdout + refused.stderr).lower(), refused.stdout + refused.stderr
            assert rows(site) == 0
            filler.unlink()
            sent = call("storescu", site, files=files)
            assert sent.returncode == 0, sent.stderr
        assert node.summary.failed == 1 and node.summary.stored == 2
        assert set(held(site)) == {str(pydicom.dcmread(p).SOPInstanceUID) for p in files}
    with open_catalog_for(site.config) as catalog:
        results = [r[0] for r in catalog.execute("SELECT result FROM audit WHERE action = 'dicom_store' ORDER BY id")]
    assert results[0].startswith("failed 0xA700") and results[1:] == ["stored", "stored"]
