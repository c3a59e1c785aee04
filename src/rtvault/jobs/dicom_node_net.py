"""The DICOM node's transport (docs/design.md, "The DICOM node", "Network"): pynetdicom's AE and threaded server
as the node needs them.

- Calling AE titles: an empty list of peers refuses everyone (`_NodeAE`); TLS from `[dicom]` (`server_tls`).
- Each accepted socket has TCP_NODELAY and the network timeout; each PDU must arrive whole within
  `[dicom] network_timeout` seconds (`_DeadlineSocket`): a peer that stalls or dribbles mid-PDU has its
  association ended, its slot freed, and the node says so (`stalled`).
- C-STORE data sets arrive in a file, not in memory (pynetdicom's STORE_RECV_CHUNKED_DATASET): the file lies in
  the store's spool folder (`Receiver.incoming`, the same file system as the spool it is copied to; never /tmp,
  which may be a small tmpfs), named `*.incoming`. The C-STORE handler removes it once the object is spooled or
  refused; `discard_incoming` removes what an association ended mid-object left; the receiver removes any left at
  its start and stop (a node killed).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import ssl
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pynetdicom import AE, dimse_messages
from pynetdicom import _config as pynetdicom_config
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.transport import AssociationSocket, RequestHandler, ThreadedAssociationServer

from rtvault.config import Config
from rtvault.dicom.received import IN_MEMORY
from rtvault.errors import ConfigError
from rtvault.jobs.dicom_node_qr import nodelay
from rtvault.store.spool import INCOMING

RECV_BLOCK = 256 << 10  # bytes asked of the socket at a time while a PDU arrives
_arriving = threading.local()  # the folder a C-STORE data set arriving on this thread is written to


class Arriving:
    """Where a C-STORE data set arrives (what pynetdicom takes for its NamedTemporaryFile: `write`, `file.flush`,
    `name`, `close`): in memory up to `received.IN_MEMORY` bytes (most objects: a CT slice never touches the disk
    twice), then in the file `name`, which is created only then. A write that fails (a full disk) never reaches
    pynetdicom, whose reactor it would kill (the peer seeing an abort): the file is emptied, what follows dropped,
    and the C-STORE handler, seeing `failed`, answers out of resources."""

    def __init__(self, folder: Path) -> None:
        self.failed: OSError | None = None
        self.fd = -1
        self.file = self
        self.folder = folder
        self.name = str(folder / f"cstore-{secrets.token_hex(12)}{INCOMING}")
        self.buffer: bytearray | None = bytearray()  # None once in the file

    @property
    def held(self) -> bytes | None:
        """The whole data set file when it stayed in memory (None: it is in the file `name`, or failed)."""
        return bytes(self.buffer) if self.buffer is not None and self.failed is None else None

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if self.failed is not None:
            return view.nbytes
        if self.buffer is not None and len(self.buffer) + view.nbytes <= IN_MEMORY:
            self.buffer += view
            return view.nbytes
        try:
            if self.buffer is not None:  # too large for memory: to the file from now on
                self.folder.mkdir(parents=True, exist_ok=True)
                self.fd = os.open(self.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                held, self.buffer = self.buffer, None
                self._write(held)
            self._write(view)
        except OSError as error:
            self.failed, self.buffer = error, None
            if self.fd >= 0:
                with contextlib.suppress(OSError):
                    os.ftruncate(self.fd, 0)  # the space it took given back at once
        return view.nbytes

    def _write(self, data: Any) -> None:
        view, done = memoryview(data).cast("B"), 0
        while done < view.nbytes:
            written = os.write(self.fd, view[done:])
            if written <= 0:
                raise OSError(28, "short write (no space left on device?)")
            done += written

    def flush(self) -> None:
        pass

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)

    def discard(self) -> None:
        """Removed while its association ends, maybe from another thread than the one writing it: the name goes at
        once and nothing more is written, but the descriptor is closed only with the object (closing it here
        could let a write that is under way land in a file opened meanwhile under the same number)."""
        if self.failed is None:
            self.failed = OSError("the association ended before the data set was complete")
        self.buffer = None
        with contextlib.suppress(OSError):
            Path(self.name).unlink()

    def __del__(self) -> None:
        self.close()


def _incoming_file(*args: Any, **kwargs: Any) -> Any:
    """pynetdicom's NamedTemporaryFile for a C-STORE data set: an `Arriving` file in the node's incoming folder
    when the association is the node's (see `_IncomingDIMSE`), else pynetdicom's own."""
    folder = getattr(_arriving, "folder", None)
    if folder is not None:
        return Arriving(folder)
    return tempfile.NamedTemporaryFile(*args, **kwargs)


# pynetdicom 3.0 makes the file of an arriving data set with the NamedTemporaryFile its dimse_messages module
# imported: the node gives it its own (pyproject.toml keeps pynetdicom below 3.1; a version that no longer has it
# would leave the node holding data sets in memory again, so it is refused here, at import, in one sentence)
if not hasattr(dimse_messages, "NamedTemporaryFile"):
    raise ImportError("pynetdicom's dimse_messages.NamedTemporaryFile is gone: the DICOM node needs pynetdicom 3.0.x "
                      "(reinstall rtvault, which pins it)")
dimse_messages.NamedTemporaryFile = _incoming_file  # type: ignore[attr-defined,assignment]


def receive_in_files() -> None:
    """C-STORE data sets written to a file as they arrive (the node's process: no object is held in memory)."""
    pynetdicom_config.STORE_RECV_CHUNKED_DATASET = True


class _IncomingDIMSE(DIMSEServiceProvider):
    """The DIMSE provider of the node's associations: a data set arriving goes to the node's incoming folder."""

    def receive_primitive(self, primitive: Any) -> None:
        _arriving.folder = getattr(self.assoc, "rtvault_incoming", None)
        try:
            super().receive_primitive(primitive)
        finally:
            _arriving.folder = None


def discard_incoming(assoc: Any) -> int:
    """Remove the data sets an association leaves arriving or unhandled (it ended mid-object, or before its
    handler ran); how many were removed."""
    files = []
    message = getattr(assoc.dimse, "message", None)
    files.append(getattr(message, "_data_set_file", None))
    for _context, primitive in list(getattr(assoc.dimse.msg_queue, "queue", [])):
        files.append(getattr(primitive, "_dataset_file", None))
    removed = 0
    for file in files:
        if file is None:
            continue
        existed = Path(file.name).exists() or getattr(file, "buffer", None) is not None
        if isinstance(file, Arriving):
            file.discard()
        else:  # pynetdicom's own NamedTemporaryFile (not the node's association)
            with contextlib.suppress(OSError):
                file.close()
            with contextlib.suppress(OSError):
                Path(file.name).unlink()
        removed += existed
    return removed


class _DeadlineSocket(AssociationSocket):
    """pynetdicom's association socket whose every read of a PDU (its head, then its body) ends within the network
    timeout: a peer sending one byte a minute no longer holds its association for ever."""

    def recv(self, nr_bytes: int) -> bytearray:
        timeout = self.assoc.network_timeout
        sock = self.socket
        assert sock is not None
        if timeout is None:
            return super().recv(nr_bytes)
        deadline = time.monotonic() + timeout
        data = bytearray(nr_bytes)  # read into in place: no buffer allocated per recv
        view, got = memoryview(data), 0
        try:
            while got < nr_bytes:
                left = deadline - time.monotonic()
                try:
                    if left <= 0:
                        raise TimeoutError(f"{got} of {nr_bytes} bytes of a PDU in {timeout:g} s")
                    sock.settimeout(left)
                    count = sock.recv_into(view[got:], min(RECV_BLOCK, nr_bytes - got))
                except TimeoutError:
                    self._stalled(got, nr_bytes, timeout)
                    raise
                if not count:
                    break
                got += count
        finally:
            view.release()
        del data[got:]
        return data

    def _stalled(self, got: int, wanted: int, timeout: float) -> None:
        """Said and cleaned at once (pynetdicom says nothing of a connection that never associated), and the socket
        shut down: the peer sees the end at once; pynetdicom then ends the association (before any association
        was negotiated, at its ACSE timeout)."""
        self.assoc.rtvault_stalled = (got, wanted, timeout)  # type: ignore[attr-defined]
        report = getattr(self.assoc, "rtvault_on_stall", None)
        if report is not None:
            report(self.assoc)
        with contextlib.suppress(OSError, AttributeError):
            self.socket.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]


class _Handler(RequestHandler):
    """pynetdicom's request handler, its association given the node's socket and DIMSE provider."""

    def _create_association(self) -> Any:
        assoc = super()._create_association()
        assoc.dul.socket.__class__ = _DeadlineSocket
        assoc.dimse.__class__ = _IncomingDIMSE
        assoc.rtvault_incoming = getattr(self.server, "rtvault_incoming", None)
        assoc.rtvault_on_stall = getattr(self.server, "rtvault_stalled", None)
        return assoc


class _NodeAE(AE):
    """pynetdicom's AE whose calling AE titles may be "none": an empty list there means "anyone" to pynetdicom,
    but to rtvault a node with no peer and without accept_unknown refuses everyone."""

    _allowed: list[str] | None = None

    @property  # type: ignore[override]
    def require_calling_aet(self) -> list[str]:
        if self._allowed is None:
            return []
        return self._allowed or ["\0"]  # no AE title is "\0": everyone refused

    @require_calling_aet.setter
    def require_calling_aet(self, ae_titles: list[str]) -> None:
        self._allowed = None if not ae_titles else list(ae_titles)


class _Server(ThreadedAssociationServer):
    """pynetdicom's threaded server with TCP_NODELAY set on each accepted socket, and the TLS handshake made in
    the association's own thread (a slow or plain-TCP client never holds up the others). Each accepted socket
    gets the network timeout, and each PDU must arrive whole within it (`_DeadlineSocket`): pynetdicom reads a PDU
    to its end in a blocking `recv`, where neither its ARTIM nor its idle timer runs, so a peer that stops in the
    middle of a PDU (a crash, a dropped link, a port scanner) or sends one byte a minute would otherwise hold an
    association slot, and the node's stop, for ever."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, request_handler=_Handler, **kwargs)

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        assert self.socket is not None
        client, address = self.socket.accept()
        nodelay(client)
        client.settimeout(self.ae.network_timeout)
        if self.ssl_context:
            client = self.ssl_context.wrap_socket(client, server_side=True, do_handshake_on_connect=False)
        return client, address

    def handle_error(self, request: Any, client_address: Any) -> None:  # a client gone mid-handshake: no trace
        node = getattr(self, "rtvault_node", None)
        if node is not None:
            node.say(f"connection from {client_address[0]} ended in error (TLS handshake or network)")


def server_tls(config: Config) -> ssl.SSLContext | None:
    """The TLS context of the node, from [dicom] tls_cert_file, tls_key_file and tls_ca_file (None: plain TCP)."""
    dicom = config.dicom
    if not dicom.tls_cert_file and not dicom.tls_key_file:
        return None
    if not dicom.tls_cert_file or not dicom.tls_key_file:
        raise ConfigError(str(config.file), ["[dicom] TLS needs both tls_cert_file and tls_key_file: set both, or "
                                             "neither"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(dicom.tls_cert_file), str(dicom.tls_key_file))
        if dicom.tls_ca_file:
            context.load_verify_locations(str(dicom.tls_ca_file))
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(str(config.file), [f"[dicom] TLS: the certificate, key or CA file cannot be used ({error}): "
                                             "check tls_cert_file, tls_key_file and tls_ca_file"]) from None
    return context


