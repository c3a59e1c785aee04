"""The test kit (`rtvault dicom echo|send|find|move|check PEER`) to a peer with `tls = true`: rtvault's own node
served over TLS, a client certificate presented when the node asks for one, and each TLS fault in one sentence
(a peer answering plain TCP, a certificate not trusted, an expired one, a client certificate missing)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pydicom
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kit.cli import rtvault
from kit.config import write_config
from kit.dicom_node import NODE, certificate, ct_series, make_site, running, storescp
from rtvault.config import load
from rtvault.errors import PeerError, PeerTlsFailed
from rtvault.jobs.dicom_check import check
from rtvault.jobs.dicom_peer_query import Criteria, find, move
from rtvault.jobs.dicom_peer_send import send
from rtvault.jobs.dicom_peers import echo

pytestmark = pytest.mark.slow  # each starts a node and makes TLS handshakes: 1 to 2.5 s


def _self(site, tls: bool = True) -> dict:
    return {"self": {"ae_title": NODE, "host": "127.0.0.1", "port": site.port, "tls": tls}}


def _client(tmp_path: Path, site, **dicom: object):
    """A second rtvault (its own configuration) whose peer `self` is the site's node over TLS."""
    path = write_config(tmp_path / "client" / "rtvault.toml", root=tmp_path / "client" / "db",
                        stores={"primary": tmp_path / "client" / "store"},
                        dicom={"ae_title": "RTVAULT", **dicom, "peers": _self(site)})
    return load(path)


def test_echo_send_find_move_and_check_over_tls_with_a_client_certificate(tmp_path: Path) -> None:
    cert, key = certificate(tmp_path / "tls")
    site = make_site(tmp_path, tls_cert_file=cert, tls_key_file=key, tls_ca_file=cert)  # asks a client certificate
    site.peers = _self(site)
    site.write()
    config = site.config  # the kit presents [dicom] tls_cert_file and trusts tls_ca_file
    files = ct_series(tmp_path / "series", 3)
    study = str(pydicom.dcmread(files[0]).StudyInstanceUID)
    with running(site) as node, storescp(site.archive_port, tmp_path / "archive") as archive:
        assert echo(config, "self").to_json()["ok"]
        sent = send(config, "self", files).to_json()
        assert (sent["sent"], sent["failed"]) == (3, 0)
        found = find(config, "self", "study", Criteria(study_uid=study)).to_json()
        assert [m["StudyInstanceUID"] for m in found["matches"]] == [study]
        moved = move(config, "self", "archive", Criteria(study_uid=study)).to_json()
        assert (moved["completed"], moved["failed"]) == (3, 0)
        checked = check(config, "self").to_json()
        assert [(s["step"], s["ok"]) for s in checked["steps"]] == [("echo", True), ("store", True), ("find", True)], \
            checked
        assert len(list(archive.iterdir())) == 3
    assert node.summary.tls and node.summary.stored == 4  # the series and check's test object


def _fault(config) -> PeerError:
    with pytest.raises(PeerError) as raised:
        echo(config, "self")
    return raised.value


def test_a_peer_answering_plain_tcp_when_tls_is_configured(tmp_path: Path) -> None:
    site = make_site(tmp_path)  # no TLS
    with running(site):
        error = _fault(_client(tmp_path, site))
    assert isinstance(error, PeerTlsFailed)
    assert "answers in plain TCP, not TLS" in str(error) and "tls = false in [dicom.peers.self]" in str(error)


def test_a_certificate_not_trusted_and_an_expired_one(tmp_path: Path) -> None:
    cert, key = certificate(tmp_path / "tls")
    other, _ = certificate(tmp_path / "tls", "other")
    site = make_site(tmp_path, tls_cert_file=cert, tls_key_file=key)
    with running(site):
        untrusted = _fault(_client(tmp_path, site, tls_ca_file=other))
    assert isinstance(untrusted, PeerTlsFailed) and "TLS certificate is not trusted" in str(untrusted)
    assert "[dicom] tls_ca_file" in str(untrusted)
    expired, expired_key = _expired(tmp_path / "tls")
    site.write(tls_cert_file=expired, tls_key_file=expired_key)
    with running(site):
        error = _fault(_client(tmp_path, site, tls_ca_file=expired))
    assert isinstance(error, PeerTlsFailed) and "TLS certificate has expired" in str(error)


def test_a_tls_node_asking_a_client_certificate_and_a_plain_peer_entry(tmp_path: Path) -> None:
    cert, key = certificate(tmp_path / "tls")
    site = make_site(tmp_path, tls_cert_file=cert, tls_key_file=key, tls_ca_file=cert)
    with running(site):
        no_certificate = _fault(_client(tmp_path, site, tls_ca_file=cert))
        site.peers = _self(site, tls=False)
        site.write()
        plain = _fault(site.config)
    assert isinstance(no_certificate, PeerTlsFailed)
    assert "client certificate" in str(no_certificate) and "tls_cert_file" in str(no_certificate)
    assert not isinstance(plain, PeerTlsFailed) and "tls = true in [dicom.peers.self]" in str(plain)


def test_the_cli_says_the_tls_fault_with_exit_11(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    client = _client(tmp_path, site)
    with running(site):
        done = rtvault(client.file, "dicom", "echo", "self", expect=11)
        checked = rtvault(client.file, "dicom", "check", "self", expect=7)
    assert "answers in plain TCP, not TLS" in done.stderr
    assert "not tried: no TLS session with the peer" in checked.stdout + checked.stderr


def _expired(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 that expired yesterday."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=10))
            .not_valid_after(now - dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "expired.crt", folder / "expired.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
