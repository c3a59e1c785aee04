"""`rtvault dicom send PEER PATH...`: DICOM files (or folders of them) sent to a peer by C-STORE, byte for byte (each
file's data set is sent as it lies on disk, in its own transfer syntax: nothing is decoded or converted), and
each object's status said.

The objects of one (SOP class, transfer syntax) share a presentation context; up to 128 of them go in one
association. What the peer refuses (a SOP class or transfer syntax it does not accept, a failure status) is named
with the object and its reason, and the rest is sent: exit 9. An association that cannot be made, or that the peer
aborts, is `PeerError` (exit 11) when nothing was stored.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError
from pynetdicom import _config as pynetdicom_config
from pynetdicom.association import Association
from pynetdicom.presentation import build_context
from pynetdicom.status import STORAGE_SERVICE_CLASS_STATUS

from rtvault.config import Config
from rtvault.dicom.received import Refused, dataset_of, part10
from rtvault.errors import InputError, PartialResult, PeerError
from rtvault.jobs.dicom_peers import MAX_CONTEXTS, Peer, aborted, associated, class_name, peer_named, status_text
from rtvault.report import OK, Line, Report, Verdict, err


@dataclass(frozen=True)
class Outgoing:
    """One file to send: its SOP class and instance, its transfer syntax, and the Part 10 file pynetdicom reads."""

    path: str  # as the user named it
    sop_class: str
    sop_instance: str
    transfer_syntax: str
    part10: Path  # the file itself, or a Part 10 copy of a bare data set


@dataclass
class ObjectSent:
    """What became of one file: `status` the peer's DIMSE status (None when it was not sent), `ok` stored."""

    path: str
    sop_instance: str
    ok: bool
    message: str
    status: int | None = None
    aborted: bool = False  # not stored because the association failed or the peer aborted it

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "sop_instance_uid": self.sop_instance, "ok": self.ok, "status":
                None if self.status is None else f"0x{self.status:04X}", "message": self.message}


@dataclass
class Sent(Report):
    """`rtvault dicom send`: each object and what the peer answered."""

    peer: str
    objects: list[ObjectSent] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        stored = sum(o.ok for o in self.objects)
        return {"peer": self.peer, "sent": stored, "failed": len(self.objects) - stored,
                "objects": [o.to_json() for o in self.objects]}

    def lines(self) -> Iterable[Line]:
        for item in self.objects:
            yield Line(f"{item.path}: {item.message}") if item.ok else err(f"{item.path}: {item.message}")
        stored = sum(o.ok for o in self.objects)
        yield Line(f"{stored} of {len(self.objects)} object(s) stored by {self.peer}")

    def verdict(self) -> Verdict:
        failed = [o for o in self.objects if not o.ok]
        if not failed:
            return OK
        if len(failed) == len(self.objects) and all(o.aborted for o in failed):
            return Verdict.failed(PeerError(f"nothing was stored: {failed[0].message.removeprefix('not stored: ')}"))
        return Verdict.failed(PartialResult(f"{len(failed)} of {len(self.objects)} object(s) were not stored by "
                                            f"{self.peer} (each is named above with why)"))


def send(config: Config, name: str, paths: Iterable[Path]) -> Sent:
    """Send the DICOM files of `paths` (files, or folders searched recursively; DICOMDIR files left out)."""
    peer = peer_named(config, name)
    report = Sent(peer.name)
    with tempfile.TemporaryDirectory(prefix="rtvault-send-") as temp:
        outgoing = []
        for path in dicom_files(paths):
            try:
                outgoing.append(outgoing_file(path, Path(temp)))
            except Refused as error:
                report.objects.append(ObjectSent(str(path), "", False, f"not sent: {error.why}"))
        for batch in _batches(outgoing):
            report.objects += send_batch(config, peer, batch, nothing_yet=not any(o.ok for o in report.objects))
    if not report.objects:
        raise InputError("no file to send under " + ", ".join(str(p) for p in paths) + ": name DICOM files or "
                         "folders holding some")
    return report


def dicom_files(paths: Iterable[Path]) -> Iterator[Path]:
    """The files named, and those under the folders named, in path order; InputError for a path that is neither."""
    for path in paths:
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.name.upper() != "DICOMDIR")
        else:
            raise InputError(f"{path} is not a file or a folder: name DICOM files or folders holding some")


def outgoing_file(path: Path, temp: Path) -> Outgoing:
    """What to send of one file; Refused when it is not a DICOM object that names its SOP class and instance."""
    try:
        data = path.read_bytes()
        meta = pydicom.dcmread(path, stop_before_pixels=True, force=True,
                               specific_tags=["SOPClassUID", "SOPInstanceUID"])
    except OSError as error:
        raise Refused(0, f"cannot read it ({error.strerror or error})") from None
    except (InvalidDicomError, ValueError, TypeError, KeyError, EOFError, AttributeError) as error:
        raise Refused(0, f"not a DICOM file ({type(error).__name__})") from None
    sop_class, sop_instance = str(meta.get("SOPClassUID", "")), str(meta.get("SOPInstanceUID", ""))
    if not sop_class or not sop_instance:
        raise Refused(0, "not a DICOM object (no SOP class or instance UID)")
    dataset, syntax = dataset_of(data)
    file_meta = getattr(meta, "file_meta", None)
    if data[128:132] == b"DICM" and file_meta is not None and (
            str(file_meta.get("MediaStorageSOPClassUID", "")), str(file_meta.get("MediaStorageSOPInstanceUID", ""))
    ) == (sop_class, sop_instance):
        return Outgoing(str(path), sop_class, sop_instance, syntax, path)
    # pynetdicom sends from a Part 10 file, announcing the UIDs of its meta: a bare data set, or a file whose meta
    # names other UIDs than its data set (the peer would refuse it, 0xA900), is sent from a copy with right meta
    copy = temp / f"{len(os.listdir(temp))}.dcm"
    copy.write_bytes(part10(dataset, sop_class, sop_instance, syntax))
    return Outgoing(str(path), sop_class, sop_instance, syntax, copy)


def _batches(outgoing: list[Outgoing]) -> Iterator[list[Outgoing]]:
    """Runs of objects needing at most MAX_CONTEXTS presentation contexts, in order."""
    batch: list[Outgoing] = []
    kinds: set[tuple[str, str]] = set()
    for item in outgoing:
        kind = (item.sop_class, item.transfer_syntax)
        if kind not in kinds and len(kinds) == MAX_CONTEXTS:
            yield batch
            batch, kinds = [], set()
        batch.append(item)
        kinds.add(kind)
    if batch:
        yield batch


def send_batch(config: Config, peer: Peer, batch: list[Outgoing], *, nothing_yet: bool) -> list[ObjectSent]:
    """Send one batch in one association; PeerError when it cannot be made and nothing was stored before."""
    contexts = {(o.sop_class, o.transfer_syntax) for o in batch}
    try:
        with associated(config, peer, [build_context(c, [t]) for c, t in sorted(contexts)]) as assoc:
            return list(_store_each(peer, assoc, batch))
    except PeerError as error:
        if nothing_yet:
            raise
        return [ObjectSent(o.path, o.sop_instance, False, f"not sent: {error}", aborted=True) for o in batch]


def _store_each(peer: Peer, assoc: Association, batch: list[Outgoing]) -> Iterator[ObjectSent]:
    accepted = {(str(c.abstract_syntax), str(c.transfer_syntax[0])) for c in assoc.accepted_contexts}
    for index, item in enumerate(batch):
        if (item.sop_class, item.transfer_syntax) not in accepted:
            yield ObjectSent(item.path, item.sop_instance, False,
                             f"not sent: peer {peer.name} does not accept {class_name(item.sop_class)} in "
                             f"{class_name(item.transfer_syntax)}: allow that SOP class and transfer syntax on the "
                             "peer")
            continue
        if not assoc.is_established:
            yield from _not_sent(batch[index:], aborted(peer, "receiving earlier objects"))
            return
        sent = _store(peer, assoc, item, index)
        yield sent
        if sent.aborted:  # no answer: the association is gone, even if pynetdicom has not noticed yet
            yield from _not_sent(batch[index + 1:], aborted(peer, "receiving earlier objects"))
            return


def _store(peer: Peer, assoc: Association, item: Outgoing, index: int) -> ObjectSent:
    chunked = pynetdicom_config.STORE_SEND_CHUNKED_DATASET
    pynetdicom_config.STORE_SEND_CHUNKED_DATASET = True  # the data set read from the file as it is, not re-encoded
    try:
        status = assoc.send_c_store(item.part10, msg_id=index % 65535 + 1)
    finally:
        pynetdicom_config.STORE_SEND_CHUNKED_DATASET = chunked
    if "Status" not in status:
        return ObjectSent(item.path, item.sop_instance, False, f"not stored: {aborted(peer, 'receiving it')}",
                          aborted=True)
    code = int(status.Status)
    meaning = status_text(code, STORAGE_SERVICE_CLASS_STATUS)
    category = STORAGE_SERVICE_CLASS_STATUS.get(code, ("",))[0]
    if code == 0:
        return ObjectSent(item.path, item.sop_instance, True, f"stored ({class_name(item.sop_class)})", code)
    if category == "Warning":
        return ObjectSent(item.path, item.sop_instance, True, f"stored with warning {meaning}", code)
    comment = f": {status.ErrorComment}" if status.get("ErrorComment") else ""
    return ObjectSent(item.path, item.sop_instance, False, f"refused by the peer with status {meaning}{comment}",
                      code)


def _not_sent(items: list[Outgoing], why: str) -> Iterator[ObjectSent]:
    for item in items:
        yield ObjectSent(item.path, item.sop_instance, False, f"not sent: {why}", aborted=True)
