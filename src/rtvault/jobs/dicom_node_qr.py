"""The DICOM node's Query/Retrieve services (docs/design.md, "The DICOM node", "Services"): C-FIND (Patient Root
and Study Root, PATIENT/STUDY/SERIES/IMAGE) from the catalog's `dicom_instances`; C-MOVE to a `[dicom.peers.NAME]`
whose AE title is the move destination, C-GET on the same association: each instance's stored data set sent in its
own transfer syntax. A mixin of `jobs/dicom_node.Node`; also the client side the node's sub-associations use
(TLS to a peer, TCP_NODELAY).
"""

from __future__ import annotations

import contextlib
import io
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pydicom
from pydicom.dataset import Dataset
from pynetdicom import build_context, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from rtvault.catalog import dicom as catalog_dicom
from rtvault.config import Config
from rtvault.config.settings import DicomPeer
from rtvault.dicom.received import OUT_OF_RESOURCES, Refused
from rtvault.errors import RtvaultError
from rtvault.jobs.dicom_peers import client_tls

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from rtvault.catalog.db import Catalog
    from rtvault.jobs.dicom_node import NodeSummary
    from rtvault.jobs.dicom_receive import Receiver

MOVE_UNKNOWN_DESTINATION = 0xA801
FIND_MODELS = {PatientRootQueryRetrieveInformationModelFind: "patient",
               StudyRootQueryRetrieveInformationModelFind: "study"}
MOVE_MODELS = {PatientRootQueryRetrieveInformationModelMove: "patient",
               StudyRootQueryRetrieveInformationModelMove: "study"}
GET_MODELS = {PatientRootQueryRetrieveInformationModelGet: "patient",
              StudyRootQueryRetrieveInformationModelGet: "study"}
IDENTIFIER_MISMATCH = 0xA900  # C-FIND/MOVE/GET: identifier does not match SOP class
UNABLE_TO_PROCESS = 0xC000
MAX_SUBOPERATIONS = 65535  # a C-MOVE/C-GET's counts are US: pynetdicom refuses more (0xC516)
NOT_SENT = "unreadable"  # a sub-operation whose object cannot be read: pynetdicom counts it failed
_UNCOMPRESSED = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2")


def nodelay(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # not a TCP socket (a test's socketpair)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _nodelay_on_open(event: evt.Event) -> None:
    """EVT_CONN_OPEN of the associations the node requests (C-MOVE's sub-associations)."""
    sock = getattr(event.assoc.dul.socket, "socket", None)
    if sock is not None:
        nodelay(sock)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple | pydicom.multival.MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value)


class QueryRetrieve:
    """C-FIND, C-MOVE and C-GET of `Node` (see the module's docstring)."""

    config: Config
    ae_title: str
    max_pdu: int
    receiver: Receiver
    summary: NodeSummary
    _count: Any
    _peers: dict[str, DicomPeer]

    if TYPE_CHECKING:
        def _peer_of(self, event: evt.Event) -> tuple[str, str]: ...
        def audit(self, calling: str, address: str, action: str, detail: dict[str, Any],
                  result: str = "ok") -> None: ...
        def say(self, line: str) -> None: ...
        def catalog(self) -> AbstractContextManager[Catalog]: ...

    def _query(self, event: evt.Event, models: dict[str, str]) -> tuple[str, str, dict[str, str]]:
        """The level and keys of a C-FIND/MOVE/GET identifier; Refused with the status to answer."""
        try:
            identifier = event.identifier
        except Exception as error:  # pynetdicom raises what pydicom raises decoding it
            raise Refused(UNABLE_TO_PROCESS, f"the identifier cannot be decoded ({error})") from None
        model = models.get(str(event.request.AffectedSOPClassUID), "")
        level = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
        if level not in catalog_dicom.LEVELS or (model == "study" and level == "PATIENT"):
            raise Refused(IDENTIFIER_MISMATCH, f"query level {level or '(none)'} is not one of the "
                                               f"{model or 'query'} root model")
        keys: dict[str, str] = {}
        for element in identifier:
            if element.keyword and element.VR != "SQ" and element.keyword != "QueryRetrieveLevel":
                keys[element.keyword] = _text(element.value)
        return model, level, keys

    def _find(self, event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        calling, address = self._peer_of(event)
        try:
            model, level, keys = self._query(event, FIND_MODELS)
        except Refused as refused:
            self.audit(calling, address, "dicom_find", {}, f"refused 0x{refused.status:04X}: {refused.why}")
            yield refused.status, None
            return
        detail = {"model": model, "level": level, "keys": {k: v for k, v in keys.items() if v}}
        try:
            self.receiver.indexed()  # what was answered stored is found (its rows are written by a thread)
            with self.catalog() as catalog:
                answers = catalog_dicom.find(catalog, level, keys, store=self.receiver.store_id)
        except ValueError as error:
            self.audit(calling, address, "dicom_find", detail, f"refused 0x{UNABLE_TO_PROCESS:04X}: {error}")
            yield UNABLE_TO_PROCESS, None
            return
        except RtvaultError as error:
            self.audit(calling, address, "dicom_find", detail, f"failed: {error}")
            yield OUT_OF_RESOURCES, None
            return
        with self._count:
            self.summary.finds += 1
        self.audit(calling, address, "dicom_find", {**detail, "answers": len(answers)})
        asked = set(keys) | {"QueryRetrieveLevel"}
        for answer in answers:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            yield 0xFF00, self._identifier(answer, asked)

    def _identifier(self, answer: dict[str, object], asked: set[str]) -> Dataset:
        found = Dataset()
        wide = any(not str(v).isascii() for v in answer.values())
        if "SpecificCharacterSet" in asked or wide:
            found.SpecificCharacterSet = "ISO_IR 192"
        for keyword in sorted(asked - {"SpecificCharacterSet"}):
            value = answer.get(keyword, "")
            if keyword == "RetrieveAETitle":
                value = self.ae_title
            if isinstance(value, list):
                value = list(value) if value else ""
            try:
                setattr(found, keyword, "" if value is None else value)
            except (ValueError, TypeError, OverflowError):
                setattr(found, keyword, "")
        return found

    def _retrieval(self, event: evt.Event,
                   models: dict[str, str]) -> tuple[dict[str, Any], list[catalog_dicom.Retrievable]]:
        """What a C-MOVE or C-GET retrieves, and its audit detail; Refused with the status to answer."""
        model, level, keys = self._query(event, models)
        detail: dict[str, Any] = {"model": model, "level": level, "keys": {k: v for k, v in keys.items() if v}}
        if not detail["keys"]:
            raise Refused(IDENTIFIER_MISMATCH, "a retrieve names what it retrieves: no key given")
        try:
            with self.catalog() as catalog:
                return detail, catalog_dicom.held(catalog, level, keys, store=self.receiver.store_id)
        except ValueError as error:
            raise Refused(UNABLE_TO_PROCESS, str(error)) from None
        except RtvaultError as error:
            raise Refused(OUT_OF_RESOURCES, f"the catalog cannot be read ({error})") from None

    def _read(self, item: catalog_dicom.Retrievable) -> Dataset | str:
        try:
            return pydicom.dcmread(io.BytesIO(self.receiver.read(item.hash)))
        except (RtvaultError, OSError, ValueError, EOFError, pydicom.errors.InvalidDicomError) as error:
            self.say(f"problem: received object {item.sop_instance} ({item.hash}) cannot be read ({error}); "
                     "`rtvault verify` and `rtvault repair` check and heal the store")
            return NOT_SENT

    def _move(self, event: evt.Event) -> Iterator[Any]:
        calling, address = self._peer_of(event)
        destination = str(event.move_destination or "").strip()
        peer = self._destination(destination)
        try:
            detail, found = self._retrieval(event, MOVE_MODELS)
        except Refused as refused:
            self.audit(calling, address, "dicom_move", {"destination": destination},
                       f"refused 0x{refused.status:04X}: {refused.why}")
            if peer is None:
                yield None, None
            else:  # pynetdicom answers a failure only after the destination and a count
                yield peer.host, peer.port, self._options(peer, [])
                yield 1
                yield refused.status, None
            return
        detail.update(destination=destination, count=len(found))
        if peer is None:
            self.audit(calling, address, "dicom_move", detail, f"refused 0x{MOVE_UNKNOWN_DESTINATION:04X}: no "
                                                               "[dicom.peers] has this AE title with a host and port")
            yield None, None
            return
        yield peer.host, peer.port, self._options(peer, found)
        if self._too_many(calling, address, "dicom_move", detail, found):
            yield len(found)
            return
        try:
            yield len(found)
        except GeneratorExit:  # pynetdicom drops the handler when it cannot associate with the destination
            if found:
                self.audit(calling, address, "dicom_move", {**detail, "sent": 0},
                           f"failed 0xA801: {destination} at {peer.host}:{peer.port} did not accept the association "
                           "(not listening, or refusing this node's AE title)")
            else:
                self.audit(calling, address, "dicom_move", {**detail, "sent": 0})
            raise
        sent = yield from self._send(event, found)
        with self._count:
            self.summary.moved += sent
        self.audit(calling, address, "dicom_move", {**detail, "sent": sent},
                   "ok" if sent == len(found) else "partial")

    def _too_many(self, calling: str, address: str, action: str, detail: dict[str, Any],
                  found: list[catalog_dicom.Retrievable]) -> bool:
        """More instances than a retrieve's counts can say (US: 65,535): pynetdicom answers 0xC516 and drops the
        handler; said here, since nothing after would be."""
        if len(found) <= MAX_SUBOPERATIONS:
            return False
        self.audit(calling, address, action, detail, f"refused 0xC516: {len(found)} instances, more than one "
                                                     f"retrieve can count ({MAX_SUBOPERATIONS}): retrieve by study "
                                                     "or series")
        return True

    def _options(self, peer: DicomPeer, found: list[catalog_dicom.Retrievable]) -> dict[str, Any]:
        """The sub-association of a C-MOVE: each instance's class in its own transfer syntax first (sent as
        stored), TCP_NODELAY, TLS when the peer has it."""
        contexts = []
        for sop_class, syntax in sorted({(h.sop_class, h.transfer_syntax) for h in found}):
            # its own transfer syntax alone (pynetdicom sends in the exact one when accepted), then a fallback
            contexts.append(build_context(sop_class, [syntax or _UNCOMPRESSED[0]]))
        for sop_class in sorted({h.sop_class for h in found}):
            contexts.append(build_context(sop_class, list(_UNCOMPRESSED[:2])))
        if not contexts:
            contexts = [build_context(Verification)]
        contexts = contexts[:128]
        options: dict[str, Any] = {"contexts": contexts, "evt_handlers": [(evt.EVT_CONN_OPEN, _nodelay_on_open)],
                                   "max_pdu": self.max_pdu}
        if peer.tls:
            options["tls_args"] = client_tls(self.config, peer.host)
        return options

    def _get(self, event: evt.Event) -> Iterator[Any]:
        calling, address = self._peer_of(event)
        try:
            detail, found = self._retrieval(event, GET_MODELS)
        except Refused as refused:
            self.audit(calling, address, "dicom_get", {}, f"refused 0x{refused.status:04X}: {refused.why}")
            yield 1
            yield refused.status, None
            return
        detail["count"] = len(found)
        if self._too_many(calling, address, "dicom_get", detail, found):
            yield len(found)
            return
        if not found:
            self.audit(calling, address, "dicom_get", {**detail, "sent": 0})
            yield 0
            return
        yield len(found)
        sent = yield from self._send(event, found)
        with self._count:
            self.summary.got += sent
        self.audit(calling, address, "dicom_get", {**detail, "sent": sent}, "ok" if sent == len(found) else "partial")

    def _send(self, event: evt.Event, found: list[catalog_dicom.Retrievable]) -> Iterator[Any]:
        sent = 0
        for item in found:
            if event.is_cancelled:
                yield 0xFE00, None
                return sent
            dataset = self._read(item)
            if isinstance(dataset, Dataset):
                sent += 1
            yield 0xFF00, dataset
        return sent

    def _destination(self, ae_title: str) -> DicomPeer | None:
        peer = self._peers.get(ae_title)
        if peer is None or not peer.host or not peer.port:
            return None
        return peer
