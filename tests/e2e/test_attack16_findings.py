"""Hostile tests of the DICOM node (issue 16): what a hospital network and careless or hostile peers do to
`rtvault dicom serve`, each finding a test that failed before its fix."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest

from kit.dicom_node import call, make_site, running, served

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
