"""`rtvault dicom serve`: the DICOM node's network side (docs/design.md, "The DICOM node", "Services"), on
pynetdicom; what it stores goes through `jobs/dicom_receive.Receiver`.

- Verification (C-ECHO) here; Storage (C-STORE) in `jobs/dicom_node_store.py`, Query/Retrieve (C-FIND, C-MOVE,
  C-GET) in `jobs/dicom_node_qr.py`: mixins of `Node`.
- Security: a calling AE title no peer has is refused (unless `accept_unknown`), the called AE title must be
  ours; TLS when `tls_cert_file` and `tls_key_file` are set (`tls_ca_file`: a client certificate required).
  Each association, store, find, move and get is audited (user = the calling AE title) and logged in one line.
- Every association socket has TCP_NODELAY (a dcmtk peer otherwise waits ~40 ms per object on Nagle).
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pynetdicom import AE, evt
from pynetdicom._globals import ALL_TRANSFER_SYNTAXES
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from rtvault.catalog.db import Catalog
from rtvault.config import Config
from rtvault.configured import open_catalog_for
from rtvault.dicom.received import STORAGE_CLASSES
from rtvault.errors import ConfigError, ExitCode, LockBusy, Problem, RtvaultError
from rtvault.jobs.actions import WebActions
from rtvault.jobs.dicom_node_net import _NodeAE, _Server, discard_incoming, receive_in_files, server_tls
from rtvault.jobs.dicom_node_qr import (
    _UNCOMPRESSED,
    FIND_MODELS,
    GET_MODELS,
    MOVE_MODELS,
    QueryRetrieve,
    _text,
)
from rtvault.jobs.dicom_node_store import Storage
from rtvault.jobs.dicom_receive import Receiver
from rtvault.report import Line, Report, Verdict

MAX_ASSOCIATIONS = 10
# The largest PDU peers may send us. pynetdicom holds a PDU whole in memory, several copies while it is decoded: 4 MiB
# bounds that to some 16 MiB an association (160 MiB at MAX_ASSOCIATIONS), while a CT slice (~0.5 MB) still comes
# in one PDU (dcmtk sends at most 128 KiB ones anyway). 0 would let a peer send a 4 GiB PDU into memory.
MAX_PDU = 4 << 20
STOP_GRACE_S = 10.0  # at a stop, associations under way get this long to end before they are aborted
UNKNOWN_CALLING = "calling AE title not recognised"
UNKNOWN_CALLED = "called AE title not recognised"
TOO_MANY = "too many associations"
# The transfer syntaxes the node accepts, in its order of preference (pynetdicom takes the acceptor's first one the
# requestor proposed): an encapsulated (compressed) syntax first, since a sender proposing one holds the object
# so; then the uncompressed ones, explicit VR little endian first. Whatever is negotiated is stored as it comes.
SYNTAXES = [s for s in ALL_TRANSFER_SYNTAXES if s not in _UNCOMPRESSED] + list(_UNCOMPRESSED)


@dataclass
class NodeSummary(Report):
    """What the node did while it ran: `rtvault dicom serve`'s report when it stops."""

    address: str = ""
    port: int = 0
    tls: bool = False
    associations: int = 0
    refused: int = 0
    stored: int = 0
    duplicates: int = 0
    failed: int = 0
    finds: int = 0
    moved: int = 0
    got: int = 0
    problems: list[Problem] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"address": self.address, "port": self.port, "tls": self.tls, "associations": self.associations,
                "refused": self.refused, "stored": self.stored, "duplicates": self.duplicates,
                "failed": self.failed, "finds": self.finds, "moved": self.moved, "got": self.got,
                "problems": [str(p) for p in self.problems]}

    def lines(self) -> Iterator[Line]:
        yield Line(f"DICOM node stopped: {self.associations} association(s) accepted, {self.refused} refused; "
                   f"{self.stored} object(s) stored, {self.duplicates} already held, {self.failed} refused or "
                   f"failed; {self.finds} C-FIND, {self.moved} object(s) sent by C-MOVE, {self.got} by C-GET")
        for problem in self.problems:
            yield Line(f"problem: {problem}", err=True)

    def verdict(self) -> Verdict:
        return Verdict.unless(self.problems, ExitCode.PARTIAL)


SHOWN = 200  # characters of one value an audit entry and its log line keep (a C-FIND may list 1,000 UIDs)


def _shortened(value: object) -> object:
    """A value of an audit entry, each text at most SHOWN characters (a peer's 64 KiB identifier would otherwise
    make a 64 KiB log line and audit row per query)."""
    if isinstance(value, dict):
        return {k: _shortened(v) for k, v in value.items()}
    if isinstance(value, str) and len(value) > SHOWN:
        return f"{value[:SHOWN]}... ({len(value)} characters)"
    return value


class Node(Storage, QueryRetrieve):
    """The DICOM node: `start()`, `wait()` until `stop()` (a signal handler may call it), `summary`."""

    def __init__(self, config: Config, *, log: Callable[[str], None] = lambda _line: None,
                 host: str | None = None, port: int | None = None, max_associations: int = MAX_ASSOCIATIONS,
                 max_pdu: int = MAX_PDU, seal_after_s: float = 30.0) -> None:
        self.config = config
        self.log = log
        self.host = config.dicom.host if host is None else host
        self.port = config.dicom.port if port is None else port
        if self.port is None or self.port < 0:
            raise ConfigError(str(config.file), ["the DICOM node needs a port: set [dicom] port (or give --port)"])
        self.ae_title = config.dicom.ae_title
        self.max_associations = max_associations
        self.max_pdu = max_pdu
        self.tls = server_tls(config)
        self.summary = NodeSummary(tls=self.tls is not None)
        self.receiver = Receiver(config, seal_after_s=seal_after_s, warn=self._warned)
        self._peers = {peer.ae_title.strip(): peer for peer in config.dicom.peers.values()}
        self._count = threading.Lock()
        self._ending = threading.Lock()  # an association's end said once, with what it left discarded
        self._stopping = threading.Event()
        self._catalogs: queue.LifoQueue[Catalog] = queue.LifoQueue()
        self._audits: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._auditor: threading.Thread | None = None
        self._server: _Server | None = None
        self._serving: threading.Thread | None = None
        self._started = False
        self.ae = self._application_entity()

    # --- life ---------------------------------------------------------------------------------------------

    def _application_entity(self) -> AE:
        ae = _NodeAE(ae_title=self.ae_title)
        ae.maximum_associations = self.max_associations
        ae.maximum_pdu_size = self.max_pdu
        ae.require_called_aet = True
        ae.require_calling_aet = [] if self.config.dicom.accept_unknown else list(self._peers)
        if not self.config.dicom.accept_unknown and not self._peers:
            ae._allowed = []  # no peer: everyone refused (the log says so at start)
        ae.network_timeout = self.config.dicom.network_timeout  # also each PDU's deadline (dicom_node_net)
        # pynetdicom's own wait for an association request: past the PDU deadline, which says why it ends
        ae.acse_timeout = self.config.dicom.network_timeout + 5
        ae.dimse_timeout = self.config.dicom.network_timeout
        ae.add_supported_context(Verification, _UNCOMPRESSED)
        for sop_class in STORAGE_CLASSES:  # SCP of C-STORE; SCU too (role selection) for C-GET's sub-operations
            ae.add_supported_context(sop_class, SYNTAXES, scu_role=True, scp_role=True)
        for model in (*FIND_MODELS, *MOVE_MODELS, *GET_MODELS):
            ae.add_supported_context(model, _UNCOMPRESSED)
        return ae

    def start(self) -> Node:
        try:
            self.receiver.start()
        except LockBusy as error:
            raise LockBusy(f"another DICOM node or `rtvault dicom import` is receiving into "
                           f"{self.receiver.store.location} ({error}): stop it, or give this node another "
                           "[dicom] store") from None
        self._started = True
        if self.receiver.cleaned:
            self.say(f"removed {len(self.receiver.cleaned)} data set(s) a stopped node left arriving in "
                     f"{self.receiver.incoming}")
        receive_in_files()
        try:
            self._auditor = threading.Thread(target=self._audit_loop, name="rtvault-dicom-audit", daemon=True)
            self._auditor.start()
            handlers = [(evt.EVT_C_ECHO, self._echo), (evt.EVT_C_STORE, self._store), (evt.EVT_C_FIND, self._find),
                        (evt.EVT_C_MOVE, self._move), (evt.EVT_C_GET, self._get),
                        (evt.EVT_ACCEPTED, self._accepted), (evt.EVT_REJECTED, self._rejected),
                        (evt.EVT_CONN_CLOSE, self._closed), (evt.EVT_ABORTED, self._closed)]
            try:
                server = self.ae.make_server((self.host, self.port), ae_title=self.ae_title, ssl_context=self.tls,
                                             evt_handlers=handlers, server_class=_Server)
            except OSError as error:
                raise ConfigError(str(self.config.file), [
                    f"the DICOM node cannot listen on {self.host}:{self.port} ({error.strerror}): free the port or "
                    "set another [dicom] port"]) from None
        except BaseException:
            self._audits.put(None)
            self.receiver.close()
            raise
        server.rtvault_node = self  # type: ignore[attr-defined]
        server.rtvault_incoming = self.receiver.incoming  # type: ignore[attr-defined]
        server.rtvault_stalled = self.stalled  # type: ignore[attr-defined]
        self.ae._servers.append(server)  # as start_server does: shutdown() removes it
        self._server = server
        self.port = server.server_address[1]
        self.summary.address, self.summary.port = self.host, self.port
        self._serving = threading.Thread(target=server.serve_forever, name="rtvault-dicom-server", daemon=True)
        self._serving.start()
        who = "any calling AE title" if self.config.dicom.accept_unknown else \
            ("the AE titles of [dicom.peers]: " + ", ".join(sorted(self._peers)) if self._peers else
             "no one: no [dicom.peers] is configured and accept_unknown is false")
        self.say(f"listening on {self.host}:{self.port} as {self.ae_title}{' over TLS' if self.tls else ''}; "
                 f"accepting {who}; store {self.receiver.root}")
        return self

    def wait(self) -> None:
        while not self._stopping.wait(1.0):
            pass

    def stop(self) -> None:
        """Ask the node to stop (safe from a signal handler): `close` does the rest."""
        self._stopping.set()

    def close(self) -> NodeSummary:
        """No new association; those under way get STOP_GRACE_S to end, then are aborted; the spool is sealed and
        the store released."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()  # also closes its socket
            deadline = time.monotonic() + STOP_GRACE_S
            while any(a.is_established for a in self._active()) and time.monotonic() < deadline:
                time.sleep(0.1)
            lingering = self._active()  # still sending after the grace, or connected and never negotiating
            for assoc in lingering:  # wakes a thread blocked reading a PDU its peer never finishes
                with contextlib.suppress(AttributeError, OSError):
                    assoc.dul.socket.socket.shutdown(socket.SHUT_RDWR)
            for assoc in lingering:
                assoc.abort()
            self._server = None
        self.receiver.close()
        self._audits.put(None)
        if self._auditor is not None:
            self._auditor.join(timeout=30)
        while not self._catalogs.empty():
            self._catalogs.get().close()
        self.summary.problems.extend(p for p in self.receiver.problems if p not in self.summary.problems)
        if self._started:  # a node that never held the store has nothing to seal
            self.say(f"stopped; the spool is sealed into {self.receiver.root}")
        return self.summary

    def _active(self) -> list[Any]:
        return [a for a in self.ae.active_associations if a.is_acceptor and a.is_alive()]

    def __enter__(self) -> Node:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- log, audit, catalog ------------------------------------------------------------------------------

    def say(self, line: str) -> None:
        self.log(line)

    def _warned(self, problem: Problem) -> None:
        self.say(f"problem: {problem}")

    def audit(self, calling: str, address: str, action: str, detail: dict[str, Any], result: str = "ok") -> None:
        """One line on the log, one entry in the audit trail (written by the auditor thread, never waited for)."""
        detail = {k: _shortened(v) for k, v in detail.items()}
        shown = " ".join(f"{k}={_text(v)}" for k, v in detail.items() if v not in ("", None, [], {}))
        self.say(f"{action} {calling or '-'}@{address or '-'} {shown} -> {result}".replace("\n", " "))
        self._audits.put({"user": calling, "address": address, "action": action, "detail": detail,
                          "result": result})

    def _audit_loop(self) -> None:
        actions = WebActions(self.config, via="dicom")
        catalog: Catalog | None = None
        while (item := self._audits.get()) is not None:
            try:
                if catalog is None:
                    catalog = open_catalog_for(self.config)
                actions.record(catalog, user=item["user"], address=item["address"], action=item["action"],
                               detail=item["detail"], result=item["result"])
            except RtvaultError as error:
                self.say(f"problem: the audit trail cannot be written ({error}); the line above is the record")
                if catalog is not None:
                    catalog.close()
                catalog = None
        actions.flush()
        if catalog is not None:
            catalog.close()

    @contextmanager
    def catalog(self) -> Iterator[Catalog]:
        """A catalog connection of the node's small pool (one per association thread at a time)."""
        try:
            catalog = self._catalogs.get_nowait()
        except queue.Empty:
            catalog = open_catalog_for(self.config)
        try:
            yield catalog
        except BaseException:
            catalog.close()
            raise
        else:
            self._catalogs.put(catalog)

    # --- associations -------------------------------------------------------------------------------------

    @staticmethod
    def _peer_of(event: evt.Event) -> tuple[str, str]:
        assoc = event.assoc
        calling = (assoc.requestor.ae_title or "").strip()
        return calling, str(assoc.requestor.address or "")

    def _accepted(self, event: evt.Event) -> None:
        event.assoc.rtvault_negotiated = True
        calling, address = self._peer_of(event)
        with self._count:
            self.summary.associations += 1
        self.audit(calling, address, "dicom_association", {"called": event.assoc.acceptor.ae_title.strip(),
                                                           "tls": self.tls is not None}, "accepted")

    def _rejected(self, event: evt.Event) -> None:
        event.assoc.rtvault_negotiated = True
        calling, address = self._peer_of(event)
        request = event.assoc.requestor.primitive
        called = str(getattr(request, "called_ae_title", "") or "").strip()
        if not self.ae.require_calling_aet or calling in self.ae.require_calling_aet:
            why = UNKNOWN_CALLED if called != self.ae_title else TOO_MANY
        else:
            why = UNKNOWN_CALLING
        with self._count:
            self.summary.refused += 1
        self.audit(calling, address, "dicom_association", {"called": called}, f"refused: {why}")

    def _closed(self, event: evt.Event) -> None:
        """An association ended (released, aborted, its connection lost, or idle past the network timeout): what it
        left arriving is removed, and why it ended said when it was not a release."""
        if event.assoc.is_acceptor:
            with self._ending:  # the reactor's PDU deadline and the association's idle timer may end it at once
                self._ended(event.assoc, discard_incoming(event.assoc))
            self.receiver.seal_soon()

    def stalled(self, assoc: Any) -> None:
        """A PDU did not arrive whole in time (`dicom_node_net._DeadlineSocket`, in the association's reactor
        thread, before the association ends: pynetdicom says nothing of a connection that never associated)."""
        with self._ending:
            self._ended(assoc, discard_incoming(assoc))

    def _ended(self, assoc: Any, discarded: int) -> None:
        """One line, once, naming the peer, when an association ends on a timeout or mid-object."""
        if getattr(assoc, "rtvault_said", False):
            return
        calling = (assoc.requestor.ae_title or "").strip() if getattr(assoc, "rtvault_negotiated", False) else ""
        address = str(assoc.requestor.address or "")
        timeout = self.config.dicom.network_timeout
        if getattr(assoc, "rtvault_stalled", None) is not None or assoc.dul.idle_timer_expired():
            got, wanted, _timeout = getattr(assoc, "rtvault_stalled", None) or (0, 0, 0)
            partly = f" (it had sent {got} of a PDU's {wanted} bytes)" if wanted else ""
            before = "" if getattr(assoc, "rtvault_negotiated", False) else " before any association"
            result = (f"ended{before}: nothing whole came from the peer in {timeout} s ([dicom] network_timeout)"
                      f"{partly}; the connection is closed, its slot freed"
                      f"{', and its partial object discarded' if discarded else ''}")
        elif discarded:
            result = "ended mid-object: the partial object is discarded, nothing of it stored"
        else:
            return
        assoc.rtvault_said = True
        self.audit(calling, address, "dicom_association", {"discarded": discarded} if discarded else {}, result)

    # --- services -----------------------------------------------------------------------------------------

    def _echo(self, event: evt.Event) -> int:
        calling, address = self._peer_of(event)
        self.audit(calling, address, "dicom_echo", {})
        return 0x0000

