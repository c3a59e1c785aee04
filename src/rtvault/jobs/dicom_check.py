"""`rtvault dicom check PEER`: is a peer ready? Three steps, each said ok or failed with why and timed: a C-ECHO,
the C-STORE of one synthetic object (a small Secondary Capture image of the clearly synthetic patient
`RTVAULT-TEST`, `TEST^RTVAULT`, new UIDs each run), and a C-FIND of its study. When the peer cannot be reached at
all, the steps after the echo are not tried (they would fail the same way). Exit 7 when a step failed.

The test object stays on the peer: delete the patient RTVAULT-TEST there when done.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid
from pynetdicom.presentation import build_context
from pynetdicom.status import STORAGE_SERVICE_CLASS_STATUS

from rtvault import __version__
from rtvault.config import Config
from rtvault.errors import CheckFailed, PeerError, PeerTlsFailed, PeerUnreachable
from rtvault.jobs.dicom_peer_query import Criteria, find
from rtvault.jobs.dicom_peers import Peer, aborted, associated, echo_once, peer_named, status_text
from rtvault.report import OK, Line, Report, Verdict, err

TEST_PATIENT_ID = "RTVAULT-TEST"
TEST_PATIENT_NAME = "TEST^RTVAULT"
SIDE = 16  # pixels: the image is a small gradient


@dataclass(frozen=True)
class Step:
    """One step of a check: `step` echo, store or find; ok; what happened; how long it took."""

    step: str
    ok: bool
    message: str
    ms: float

    def to_json(self) -> dict[str, object]:
        return {"step": self.step, "ok": self.ok, "message": self.message, "ms": round(self.ms, 1)}


@dataclass
class Checked(Report):
    """`rtvault dicom check`: each step's outcome."""

    peer: str
    steps: list[Step] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"peer": self.peer, "ok": all(s.ok for s in self.steps), "steps": [s.to_json() for s in self.steps]}

    def lines(self) -> Iterable[Line]:
        for step in self.steps:
            text = f"{step.step:<5}  {'ok' if step.ok else 'FAILED'}  {step.message} ({step.ms:.0f} ms)"
            yield Line(text) if step.ok else err(text)

    def verdict(self) -> Verdict:
        failed = [s.step for s in self.steps if not s.ok]
        if not failed:
            return OK
        return Verdict.failed(CheckFailed(f"peer {self.peer}: {', '.join(failed)} failed (see above)"))


def synthetic_object(ae_title: str, now: datetime) -> Dataset:
    """A Secondary Capture image of the synthetic patient RTVAULT-TEST, with new UIDs."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = TEST_PATIENT_NAME, TEST_PATIENT_ID, "", "O"
    ds.StudyDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.StudyTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = "RTVTEST", "", ""
    ds.StudyDescription = f"rtvault dicom check from {ae_title}: synthetic, no patient"  # LO: 64 at most
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber, ds.Laterality = "OT", 1, 1, ""
    ds.ConversionType, ds.PatientOrientation = "WSD", ""
    ds.Manufacturer, ds.SoftwareVersions = "rtvault", __version__
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = SIDE
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = bytes((row * SIDE + column) % 256 for row in range(SIDE) for column in range(SIDE))
    return ds


def check(config: Config, name: str) -> Checked:
    """Echo, store a test object, find it: each step's outcome (a step's failure is reported, never raised)."""
    peer = peer_named(config, name)
    report = Checked(peer.name)
    obj = synthetic_object(config.dicom.ae_title, datetime.now(UTC))
    echoed, error = _step("echo", lambda: _echo(config, peer))
    report.steps.append(echoed)
    if isinstance(error, PeerUnreachable | PeerTlsFailed):
        why = "not tried: the peer cannot be reached (see echo)" if isinstance(error, PeerUnreachable) else \
            "not tried: no TLS session with the peer (see echo)"
        report.steps += [Step("store", False, why, 0), Step("find", False, why, 0)]
        return report
    report.steps.append(_step("store", lambda: _store(config, peer, obj))[0])
    report.steps.append(_step("find", lambda: _find(config, peer, obj))[0])
    return report


def _step(name: str, run: Callable[[], str]) -> tuple[Step, PeerError | None]:
    """The step run and timed, and the error that failed it (None when it went well)."""
    start = time.monotonic()
    try:
        message, failed = run(), None
    except PeerError as error:
        message, failed = str(error), error
    return Step(name, failed is None, message, (time.monotonic() - start) * 1000), failed


def _echo(config: Config, peer: Peer) -> str:
    echo_once(config, peer)
    return f"{peer.where} answered a C-ECHO from {config.dicom.ae_title}"


def _store(config: Config, peer: Peer, obj: Dataset) -> str:
    context = build_context(obj.SOPClassUID, [ExplicitVRLittleEndian])
    with associated(config, peer, [context]) as assoc:  # PeerError naming the class when the peer refuses it
        status = assoc.send_c_store(obj)
    if "Status" not in status:
        raise PeerError(aborted(peer, "storing the test object"))
    if int(status.Status) != 0 and STORAGE_SERVICE_CLASS_STATUS.get(int(status.Status), ("",))[0] != "Warning":
        raise PeerError(f"peer {peer.name} refused the test object with status "
                        f"{status_text(int(status.Status), STORAGE_SERVICE_CLASS_STATUS)}")
    return (f"stored a synthetic Secondary Capture image of patient {TEST_PATIENT_ID} (study "
            f"{obj.StudyInstanceUID}); delete that patient on the peer when done")


def _find(config: Config, peer: Peer, obj: Dataset) -> str:
    found = find(config, peer.name, "study", Criteria(patient_id=TEST_PATIENT_ID, study_uid=obj.StudyInstanceUID))
    if not found.matches:
        raise PeerError(f"peer {peer.name} finds no study {obj.StudyInstanceUID} of patient {TEST_PATIENT_ID}: "
                        "it may not store what it receives, or not allow rtvault's C-FIND (Orthanc: "
                        "DicomAlwaysAllowFind, or RTVAULT in DicomModalities)")
    return f"found the test study on the peer ({len(found.matches)} match)"
