"""rtvault as a DICOM client of its peers (the test kit of `rtvault dicom echo|send|find|move|check`): a peer named
in `[dicom.peers.NAME]`, an association to it with rtvault's AE title (`[dicom] ae_title`) and TCP_NODELAY on its
socket, and every way that can fail said in one sentence (`PeerError`, exit 11): nothing listens on the port, the
host does not answer, the peer rejects one of the AE titles, accepts none of the SOP classes proposed, or aborts.
A peer with `tls = true` is reached over TLS (`client_tls`: its certificate checked against `[dicom] tls_ca_file`,
rtvault's own `tls_cert_file` presented when set), and a TLS session that cannot be made says why
(`PeerTlsFailed`): the peer answers plain TCP, its certificate is not trusted, has expired or names another host.

The operations themselves are in `dicom_peer_ops.py` (send, find, move) and `dicom_check.py` (check); C-ECHO is
here, being the association alone.
"""

from __future__ import annotations

import errno
import socket
import ssl
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pydicom.uid import UID
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.status import GENERAL_STATUS

from rtvault.config import Config
from rtvault.config.settings import DicomPeer
from rtvault.errors import ConfigError, PeerError, PeerTlsFailed, PeerUnreachable
from rtvault.report import OK, Line, Report, Verdict

CONNECT_TIMEOUT_S = 10
ANSWER_TIMEOUT_S = 60  # ACSE, DIMSE and network: a peer writing a big object answers within it
MAX_CONTEXTS = 128  # presentation contexts in one association (PS3.8 9.3.2.2: odd ids 1..255)


@dataclass(frozen=True)
class Peer:
    """A configured peer: the name of its `[dicom.peers.NAME]` table and where it answers."""

    name: str
    ae_title: str
    host: str
    port: int
    tls: bool = False

    @property
    def where(self) -> str:
        return f"{self.name} ({self.ae_title} at {self.host}:{self.port}{' over TLS' if self.tls else ''})"


def peer_named(config: Config, name: str) -> Peer:
    """The peer of `[dicom.peers.NAME]`; ConfigError (exit 3) when there is none or it has no host and port."""
    found: DicomPeer | None = config.dicom.peers.get(name)
    if found is None:
        known = ", ".join(sorted(config.dicom.peers)) or "none is configured"
        raise ConfigError(str(config.file), [f"no DICOM peer named {name!r}: add a [dicom.peers.{name}] table "
                                             f"(ae_title, host, port) or name one of the peers ({known})"])
    if not found.host or not found.port:
        raise ConfigError(str(config.file), [f"[dicom.peers.{name}] has no host and port (it only sends to rtvault): "
                                             "set both to reach it"])
    return Peer(name, found.ae_title, found.host, found.port, found.tls)


def class_name(uid: str) -> str:
    """A SOP class or transfer syntax as a person reads it: its name and UID, or the UID alone."""
    known = UID(uid).name
    return f"{known} ({uid})" if known and known != uid else uid


def status_text(code: int, table: dict[int, tuple[str, str]]) -> str:
    """A DIMSE status as `0xA700 (Failure: Refused: Out of resources)`."""
    category, meaning = table.get(code) or GENERAL_STATUS.get(code) or ("", "")
    if not category:
        return f"0x{code:04X}"
    return f"0x{code:04X} ({category}: {meaning.strip()})" if meaning else f"0x{code:04X} ({category})"


@contextmanager
def associated(config: Config, peer: Peer, contexts: Iterable[PresentationContext]) -> Iterator[Association]:
    """An established association to `peer` proposing `contexts`, released at the end; PeerError saying why when
    it cannot be made."""
    ae = AE(ae_title=config.dicom.ae_title)
    ae.connection_timeout = CONNECT_TIMEOUT_S
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ANSWER_TIMEOUT_S
    ae.requested_contexts = list(contexts)
    try:
        assoc = _associate(config, ae, peer)
        if assoc is None:  # once more: a peer closing right after its A-ASSOCIATE-RJ may have it lost
            assoc = _associate(config, ae, peer)
        if assoc is None and peer.tls:
            raise PeerTlsFailed(f"peer {peer.where} closed the TLS connection without answering the association "
                                f"request: it may want a client certificate it trusts ([dicom] tls_cert_file and "
                                f"tls_key_file) or refuse rtvault's AE title {config.dicom.ae_title}; see its log")
        if assoc is None:
            raise PeerError(f"peer {peer.where} closed the connection without answering the association request: "
                            f"it may refuse rtvault's AE title {config.dicom.ae_title} or expect TLS "
                            f"(tls = true in [dicom.peers.{peer.name}]); see its log")
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()
    finally:
        ae.shutdown()


def _associate(config: Config, ae: AE, peer: Peer) -> Association | None:
    """An established association; None when the peer closed the connection without a word; PeerError saying
    why it was not made otherwise."""
    opened: list[bool] = []

    def no_delay(event: evt.Event) -> None:
        # dcmtk peers stall ~40 ms per object on Nagle's algorithm otherwise (the finding)
        event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[union-attr]
        opened.append(True)

    tls_args = client_tls(config, peer.host) if peer.tls else None
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title, evt_handlers=[(evt.EVT_CONN_OPEN, no_delay)],
                         tls_args=tls_args)
    if assoc.is_established:
        return assoc
    if not opened and tls_args is not None:
        raise _tls_failed(peer, *tls_args)
    if not opened:
        raise PeerUnreachable(_unreachable(peer))
    if assoc.is_rejected and assoc.acceptor.primitive is not None:
        raise PeerError(_rejected(config, peer, assoc.acceptor.primitive))
    refused = assoc.rejected_contexts
    if refused and not assoc.accepted_contexts:
        classes = ", ".join(sorted({class_name(str(c.abstract_syntax)) for c in refused}))
        raise PeerError(f"peer {peer.where} accepts none of the SOP classes proposed ({classes}) in the transfer "
                        "syntaxes proposed: allow them on the peer (Orthanc: UnknownSopClassAccepted, "
                        "AcceptedTransferSyntaxes)")
    return None


def _unreachable(peer: Peer) -> str:
    """Why the TCP connection failed, found by trying it once more (pynetdicom only logs it)."""
    fix = f"check [dicom.peers.{peer.name}] host and port, and that the peer is running"
    try:
        with socket.create_connection((peer.host, peer.port), timeout=CONNECT_TIMEOUT_S):
            pass
    except socket.gaierror:
        return f"peer {peer.name}: host name {peer.host!r} is unknown: check [dicom.peers.{peer.name}] host"
    except ConnectionRefusedError:
        return f"peer {peer.where} refused the connection (nothing listens on port {peer.port}): {fix}"
    except TimeoutError:
        return (f"peer {peer.where} did not answer within {CONNECT_TIMEOUT_S} s (host down or a firewall drops "
                f"the connection): {fix}")
    except OSError as error:
        if error.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return f"peer {peer.where} cannot be reached ({error.strerror}): check the network route and {fix}"
        return f"peer {peer.where}: cannot connect ({error.strerror or error}): {fix}"
    return f"peer {peer.where} accepted a connection but the association could not start: {fix}"


def client_tls(config: Config, host: str) -> tuple[ssl.SSLContext, str]:
    """The TLS side of an association rtvault requests from a peer with `tls = true` (the test kit, and the node's
    C-MOVE sub-associations): the peer's certificate checked against `[dicom] tls_ca_file` (and the system's
    authorities) and its host name, rtvault's `tls_cert_file`/`tls_key_file` presented as client certificate
    when set. ConfigError (exit 3) when those files cannot be used."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    dicom = config.dicom
    try:
        if dicom.tls_ca_file:
            context.load_verify_locations(str(dicom.tls_ca_file))
        if dicom.tls_cert_file and dicom.tls_key_file:
            context.load_cert_chain(str(dicom.tls_cert_file), str(dicom.tls_key_file))
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(str(config.file), [f"[dicom] TLS: the certificate, key or CA file cannot be used ({error}): "
                                             "check tls_cert_file, tls_key_file and tls_ca_file"]) from None
    return context, host


def _tls_failed(peer: Peer, context: ssl.SSLContext, host: str) -> PeerError:
    """Why no TLS session could be made with the peer, found by making the handshake once more (pynetdicom only
    logs it); PeerUnreachable when not even the TCP connection is made."""
    try:
        raw = socket.create_connection((peer.host, peer.port), timeout=CONNECT_TIMEOUT_S)
    except OSError:
        return PeerUnreachable(_unreachable(peer))
    said = f"peer {peer.where}"
    try:
        with context.wrap_socket(raw, server_hostname=host):
            pass
    except ssl.SSLCertVerificationError as error:
        code, why = error.verify_code, error.verify_message
        if code == 10:  # X509_V_ERR_CERT_HAS_EXPIRED
            return PeerTlsFailed(f"{said}: its TLS certificate has expired ({why}): the peer's administrator must "
                                 "renew it")
        if code == 9:  # X509_V_ERR_CERT_NOT_YET_VALID
            return PeerTlsFailed(f"{said}: its TLS certificate is not valid yet ({why}): check the clock of both "
                                 "machines")
        if code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
            return PeerTlsFailed(f"{said}: its TLS certificate is not made out to {host} ({why}): set [dicom.peers."
                                 f"{peer.name}] host to a name the certificate gives")
        return PeerTlsFailed(f"{said}: its TLS certificate is not trusted ({why}): add the authority that signed it "
                             "to [dicom] tls_ca_file")
    except ssl.SSLError as error:
        reason = error.reason or str(error)
        if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "UNKNOWN_PROTOCOL", "HTTP_REQUEST"):
            return PeerTlsFailed(f"{said} answers in plain TCP, not TLS: set tls = false in [dicom.peers."
                                 f"{peer.name}] or turn TLS on at the peer")
        return PeerTlsFailed(f"{said}: the TLS handshake failed ({reason}): the peer may refuse rtvault's client "
                             "certificate ([dicom] tls_cert_file) or its TLS versions; see its log")
    except OSError as error:  # closed or reset during the handshake
        return PeerTlsFailed(f"{said} closed the connection during the TLS handshake ({error.strerror or error}): "
                             f"it may speak plain TCP on port {peer.port} (then set tls = false in [dicom.peers."
                             f"{peer.name}]) or refuse rtvault's client certificate; see its log")
    finally:
        raw.close()
    return PeerTlsFailed(f"{said} accepted a TLS connection but the association could not start: see its log")


# A-ASSOCIATE-RJ (PS3.8 table 9-21): (source, reason) -> what to do
def _rejected(config: Config, peer: Peer, answer: object) -> str:
    source, reason = getattr(answer, "result_source", 0), getattr(answer, "diagnostic", 0)
    transient = " for now" if getattr(answer, "result", 1) == 2 else ""
    said = f"peer {peer.where} rejected the association{transient}"
    ours = config.dicom.ae_title
    if source == 1 and reason == 3:
        return (f"{said}: it does not know rtvault's calling AE title {ours}: add {ours} to the peer's known "
                f"modalities (Orthanc: DicomModalities; host and port of this machine)")
    if source == 1 and reason == 7:
        return (f"{said}: it does not answer to the called AE title {peer.ae_title}: check [dicom.peers."
                f"{peer.name}] ae_title against the AE title the peer is configured with")
    if source == 1 and reason == 2:
        return f"{said}: it does not support the DICOM application context"
    if source == 2 and reason == 2:
        return f"{said}: it does not support the DICOM protocol version rtvault speaks"
    if source == 3:
        return f"{said}: it is too busy (too many associations): try again later or raise its limit"
    return (f"{said} without giving a reason: check [dicom.peers.{peer.name}] ae_title and that the peer knows "
            f"rtvault's AE title {ours}")


def aborted(peer: Peer, doing: str) -> str:
    """The sentence of a peer that aborted the association (or stopped answering) while doing something."""
    return (f"peer {peer.where} aborted the association or stopped answering while {doing}: see the peer's log "
            "(it may have run out of space, or refuse what was sent)")


@dataclass(frozen=True)
class Echoed(Report):
    """`rtvault dicom echo PEER`: the peer answered a C-ECHO, in so many milliseconds."""

    peer: str
    ae_title: str
    address: str
    ms: float

    def to_json(self) -> dict[str, object]:
        return {"peer": self.peer, "ae_title": self.ae_title, "address": self.address, "ok": True,
                "ms": round(self.ms, 1)}

    def lines(self) -> Iterable[Line]:
        yield Line(f"{self.peer} ({self.ae_title} at {self.address}): C-ECHO answered in {self.ms:.0f} ms")

    def verdict(self) -> Verdict:
        return OK


def echo(config: Config, name: str) -> Echoed:
    """A C-ECHO to the peer; PeerError saying why when it fails."""
    peer = peer_named(config, name)
    start = time.monotonic()
    echo_once(config, peer)
    return Echoed(peer.name, peer.ae_title, f"{peer.host}:{peer.port}", (time.monotonic() - start) * 1000)


def echo_once(config: Config, peer: Peer) -> None:
    with associated(config, peer, [build_context(Verification)]) as assoc:
        status = assoc.send_c_echo()
        if "Status" not in status:
            raise PeerError(aborted(peer, "answering a C-ECHO"))
        if status.Status != 0:
            raise PeerError(f"peer {peer.where} answered the C-ECHO with status "
                            f"{status_text(status.Status, GENERAL_STATUS)}")
