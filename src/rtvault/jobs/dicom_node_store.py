"""The DICOM node's Storage service (docs/design.md, "The DICOM node", "Services"): C-STORE of
`received.STORAGE_CLASSES` in every transfer syntax pynetdicom accepts, the data set kept as it arrived, through
`jobs/dicom_receive.Receiver`: a refusal answers its DIMSE status, a store that cannot write answers 0xA700 (out of
resources), a duplicate answers success; each C-STORE waits until its object is durable, which slows a peer that
sends faster than the disk writes (never dropped). The data set arrives in a file (`jobs/dicom_node_net.py`), is
described without its pixel data and copied to the spool in blocks: memory does not grow with the object's size.
A mixin of `jobs/dicom_node.Node`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset
from pynetdicom import evt

from rtvault.dicom.received import (
    CANNOT_UNDERSTAND,
    MISMATCH,
    OUT_OF_RESOURCES,
    Refused,
    Streamed,
    describe,
    part10,
)
from rtvault.dicom.received import arrived as received_file
from rtvault.dicom.received import in_memory as held_part10
from rtvault.errors import StoreError

if TYPE_CHECKING:
    from rtvault.jobs.dicom_node import NodeSummary
    from rtvault.jobs.dicom_receive import Receiver


class Storage:
    """C-STORE of `Node` (see the module's docstring)."""

    ae_title: str
    receiver: Receiver
    summary: NodeSummary
    _count: Any

    if TYPE_CHECKING:
        def _peer_of(self, event: evt.Event) -> tuple[str, str]: ...
        def audit(self, calling: str, address: str, action: str, detail: dict[str, Any],
                  result: str = "ok") -> None: ...

    def _store(self, event: evt.Event) -> Dataset:
        calling, address = self._peer_of(event)
        request = event.request
        sop_class = str(request.AffectedSOPClassUID or "")
        sop_instance = str(request.AffectedSOPInstanceUID or "")
        syntax = str(event.context.transfer_syntax)
        detail: dict[str, Any] = {"sop_instance": sop_instance, "sop_class": sop_class}
        answer = Dataset()
        arrived: Path | None = getattr(request, "_dataset_path", None)  # the data set's file (dicom_node_net)
        try:
            data = self._received(request, arrived, sop_class, sop_instance, syntax)
            tags = describe(data, expected_class=sop_class)
            if tags["SOPInstanceUID"] != sop_instance:
                raise Refused(MISMATCH, f"the data set's SOP instance {tags['SOPInstanceUID']} is not the one "
                                        f"announced ({sop_instance})")
            stored = self.receiver.put(data, tags, calling_ae=calling, called_ae=self.ae_title, origin="network",
                                       source=address)
            answer.Status = 0x0000
            detail["hash"] = stored.hash
            result = "duplicate" if stored.duplicate else "stored"
            with self._count:
                if stored.duplicate:
                    self.summary.duplicates += 1
                else:
                    self.summary.stored += 1
        except Refused as refused:
            answer.Status = refused.status
            answer.ErrorComment = refused.why[:64]
            result = f"refused 0x{refused.status:04X}: {refused.why}"
        except StoreError as error:
            answer.Status = OUT_OF_RESOURCES
            answer.ErrorComment = "out of resources: send again later"
            result = f"failed 0x{OUT_OF_RESOURCES:04X}: {error}"
        finally:
            if isinstance(arrived, Path):  # spooled, or refused: its file is removed at once, whatever happened
                with contextlib.suppress(OSError):
                    arrived.unlink()
        if answer.Status != 0x0000:
            with self._count:
                self.summary.failed += 1
        self.audit(calling, address, "dicom_store", detail, result)
        # pynetdicom's idle timer runs from the last PDU received: a large object taking long to store must not
        # have its association aborted as idle as soon as it is answered
        event.assoc.dul._idle_timer.restart()
        return answer


    @staticmethod
    def _received(request: Any, arrived: Path | None, sop_class: str, sop_instance: str,
                  syntax: str) -> bytes | Streamed:
        """The object a C-STORE carries, from the file its data set arrived in (read whole when small, else
        streamed), else (a data set pynetdicom kept in memory) its Part 10 bytes."""
        if isinstance(arrived, Path):
            file = getattr(request, "_dataset_file", None)
            failed = getattr(file, "failed", None)
            if failed is not None:  # a full disk: the peer is asked to send again later
                raise StoreError(f"the data set could not be written to {arrived.parent} as it arrived "
                                 f"({failed.strerror or failed})")
            held = getattr(file, "held", None)
            if held is not None:  # it stayed in memory (dicom_node_net.Arriving)
                return held_part10(held, sop_class, sop_instance, syntax)
            try:
                return received_file(arrived, sop_class, sop_instance, syntax)
            except OSError as error:
                raise StoreError(f"the data set that arrived in {arrived} cannot be read ({error})") from None
        raw = request.DataSet.getvalue() if request.DataSet is not None else b""
        try:
            return part10(raw, sop_class, sop_instance, syntax)
        except (ValueError, TypeError, OverflowError) as error:
            raise Refused(CANNOT_UNDERSTAND, f"the request's UIDs cannot be written ({error})") from None
