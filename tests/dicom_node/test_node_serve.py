"""`rtvault dicom serve` with dcmtk's tools: echo, a CT series stored byte for byte, duplicates, refused peers and
objects (the right DIMSE status, nothing stored), TLS, TCP_NODELAY, SIGTERM sealing what was received."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path

import pydicom
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification

from kit.dicom_node import NODE, SCU, call, certificate, ct_series, data_set, held, make_site, running, sample, served
from rtvault.catalog.db import Catalog
from rtvault.configured import open_catalog_for
from rtvault.dicom.received import part10
from rtvault.jobs import dicom_node


def audit(site) -> list[tuple[str, str, str]]:
    with open_catalog_for(site.config) as catalog:
        return [tuple(r) for r in catalog.execute("SELECT username, action, result FROM audit ORDER BY id")]


def test_echo_and_a_ct_series_stored_byte_for_byte(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    files = ct_series(tmp_path / "series", 5)
    with running(site) as node:
        assert call("echoscu", site).returncode == 0
        sent = call("storescu", site, files=files)
        assert sent.returncode == 0, sent.stderr
        again = call("storescu", site, files=files[:1])  # the same object again: success, stored once
        assert again.returncode == 0, again.stderr
    got = held(site)
    assert len(got) == 5
    for path in files:
        uid = pydicom.dcmread(path).SOPInstanceUID
        assert data_set(got[uid]) == data_set(path)  # the data set as sent, byte for byte
        assert pydicom.dcmread(__import__("io").BytesIO(got[uid])).file_meta.ImplementationVersionName == "RTVAULT_1"
    assert (node.summary.stored, node.summary.duplicates, node.summary.failed) == (5, 1, 0)
    actions = audit(site)
    assert (SCU, "dicom_echo", "ok") in actions
    assert sum(1 for a in actions if a[1:] == ("dicom_store", "stored")) == 5
    assert (SCU, "dicom_store", "duplicate") in actions
    assert any(line.startswith("dicom_store SCU@127.0.0.1 sop_instance=") for line in node.lines)
    with open_catalog_for(site.config) as catalog:
        assert catalog.one("SELECT COUNT(*) FROM dicom_instances")[0] == 5


def test_an_unknown_calling_ae_is_refused_unless_accept_unknown(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    with running(site) as node:
        refused = call("echoscu", site, aet="STRANGER")
        assert refused.returncode != 0 and "Calling AE Title Not Recognized" in refused.stderr + refused.stdout
        wrong_called = dcmtk_echo_called(site, "NOTUS")
        assert wrong_called.returncode != 0 and "Called AE Title Not Recognized" in \
            wrong_called.stderr + wrong_called.stdout
    assert node.summary.refused == 2
    actions = audit(site)
    assert ("STRANGER", "dicom_association", f"refused: {dicom_node.UNKNOWN_CALLING}") in actions
    assert (SCU, "dicom_association", f"refused: {dicom_node.UNKNOWN_CALLED}") in actions
    site.write(accept_unknown=True)
    with running(site):
        assert call("echoscu", site, aet="STRANGER").returncode == 0


def dcmtk_echo_called(site, called: str) -> subprocess.CompletedProcess[str]:
    from kit.dicom_node import dcmtk

    return dcmtk("echoscu", "-aet", SCU, "-aec", called, "127.0.0.1", str(site.port))


def scu(site, contexts: list, *, aet: str = SCU):
    ae = AE(ae_title=aet)
    for sop_class, syntaxes in contexts:
        ae.add_requested_context(sop_class, syntaxes)
    assoc = ae.associate("127.0.0.1", site.port, ae_title=NODE)
    assert assoc.is_established
    return assoc


def send_raw(assoc, data: bytes, sop_class: str, sop_instance: str, folder: Path) -> int:
    """A C-STORE whose data set is `data` as given: pynetdicom sends a file's data set unparsed (chunked)."""
    from pynetdicom import _config

    path = folder / f"raw-{sop_instance}.dcm"
    path.write_bytes(part10(data, sop_class, sop_instance, "1.2.840.10008.1.2.1"))
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        return int(assoc.send_c_store(path).Status)
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = False


def test_malformed_objects_get_their_status_and_nothing_is_stored(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    ct = pydicom.dcmread(sample("CT_small.dcm", tmp_path / "in"))
    plain = data_set(sample("CT_small.dcm", tmp_path / "in"))
    missing = pydicom.dcmread(sample("CT_small.dcm", tmp_path / "in"))
    del missing.SOPInstanceUID
    missing_path = tmp_path / "missing.dcm"
    missing.save_as(missing_path)
    with running(site) as node:
        assoc = scu(site, [(CTImageStorage, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]),
                           ("1.2.840.10008.5.1.4.1.1.12.1", ["1.2.840.10008.1.2.1"])])  # X-Ray Angiography
        try:
            # a class rtvault does not store is refused at negotiation: its context is not accepted
            assert [cx.abstract_syntax for cx in assoc.rejected_contexts] == ["1.2.840.10008.5.1.4.1.1.12.1"]
            garbage = send_raw(assoc, b"\x08\x00\x16\x00garbage that is no data set" * 3, CTImageStorage,
                               "1.2.3.4", tmp_path)
            no_uid = send_raw(assoc, data_set(missing_path), CTImageStorage, str(ct.SOPInstanceUID), tmp_path)
            wrong_instance = send_raw(assoc, plain, CTImageStorage, "1.2.3.4.5", tmp_path)
            wrong_class = send_raw(assoc, data_set(sample("MR_small.dcm", tmp_path / "in")), CTImageStorage,
                                   "1.2.3.4.6", tmp_path)
        finally:
            assoc.release()
    assert garbage in (0xC000, 0xA900), hex(garbage)
    assert (no_uid, wrong_instance, wrong_class) == (0xA900, 0xA900, 0xA900)
    assert held(site) == {}
    assert node.summary.stored == 0 and node.summary.failed == 4
    results = [r for _, a, r in audit(site) if a == "dicom_store"]
    assert len(results) == 4 and all(r.startswith("refused 0x") for r in results)


def test_tcp_nodelay_on_the_association_socket(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    seen: list[int] = []
    with running(site) as node:
        assoc = scu(site, [(Verification, ["1.2.840.10008.1.2"])])
        try:
            [server_side] = [a for a in node.ae.active_associations if a.is_acceptor]
            seen.append(server_side.dul.socket.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        finally:
            assoc.release()
    assert seen == [1]


def test_tls_echo_with_a_generated_certificate(tmp_path: Path) -> None:
    import ssl

    cert, key = certificate(tmp_path)
    site = make_site(tmp_path, tls_cert_file=cert, tls_key_file=key)
    with running(site) as node:
        ae = AE(ae_title=SCU)
        ae.add_requested_context(Verification)
        client = ssl.create_default_context(cafile=str(cert))
        assoc = ae.associate("127.0.0.1", site.port, ae_title=NODE, tls_args=(client, "localhost"))
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0
        assoc.release()
        plain = AE(ae_title=SCU)
        plain.add_requested_context(Verification)
        assert not plain.associate("127.0.0.1", site.port, ae_title=NODE).is_established  # TLS only
    assert node.summary.tls and node.summary.associations == 1


def test_tls_with_a_ca_requires_a_client_certificate(tmp_path: Path) -> None:
    import ssl

    cert, key = certificate(tmp_path)
    site = make_site(tmp_path, tls_cert_file=cert, tls_key_file=key, tls_ca_file=cert)
    with running(site):
        for with_certificate in (False, True):
            ae = AE(ae_title=SCU)
            ae.add_requested_context(Verification)
            ae.acse_timeout = 5
            client = ssl.create_default_context(cafile=str(cert))
            if with_certificate:
                client.load_cert_chain(str(cert), str(key))
            assoc = ae.associate("127.0.0.1", site.port, ae_title=NODE, tls_args=(client, "localhost"))
            assert assoc.is_established == with_certificate
            if assoc.is_established:
                assoc.release()


def test_sigterm_seals_what_was_received(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    files = ct_series(tmp_path / "series", 3)
    with served(site, "--json") as node:
        assert call("storescu", site, files=files).returncode == 0
        code, out, log = node.stop(signal.SIGTERM)
    assert code == 0, log
    summary = json.loads(out)
    assert summary["stored"] == 3 and summary["port"] == site.port
    assert "SIGTERM: stopping" in log and "stopped; the spool is sealed" in log
    assert not list((site.store / "dicom" / "spool").glob("*.spool"))
    assert len(held(site)) == 3
    with Catalog(site.config.catalog.url) as catalog:
        receipts_ = {r[0] for r in catalog.execute("SELECT receipt FROM dicom_instances")}
    assert receipts_ and not any(r.startswith("spool:") for r in receipts_)


def test_no_port_is_a_configuration_error(tmp_path: Path) -> None:
    from kit.cli import run_cli

    site = make_site(tmp_path)
    site.port = 0
    site.write()
    done = run_cli("dicom", "serve", config=site.config_path, expect=3)
    assert "[dicom] port is not set" in done.stderr


def test_no_peer_and_not_accept_unknown_refuses_everyone(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    from kit.config import write_config

    write_config(site.config_path, stores={"primary": site.store},
                 catalog={"url": f"sqlite:///{tmp_path / 'catalog.sqlite'}"},
                 dicom={"ae_title": NODE, "host": "127.0.0.1", "port": site.port})
    with running(site) as node:
        assert call("echoscu", site).returncode != 0
    assert node.summary.refused == 1
    assert any("accepting no one" in line for line in node.lines)
