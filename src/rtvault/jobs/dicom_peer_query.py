"""`rtvault dicom find PEER` and `rtvault dicom move PEER --to PEER2`: a peer queried (C-FIND) at the patient,
study, series or image level, and asked to send what matches to another peer (C-MOVE, the destination named by
its `[dicom.peers.NAME]` AE title, which the peer must know).

Patient level uses the Patient Root model, the others the Study Root model (what every archive supports).
A failure status is PeerError (exit 11) naming its meaning; a move that completes some sub-operations and fails
others is a partial result (exit 9).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pynetdicom.presentation import build_context
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
)
from pynetdicom.status import QR_FIND_SERVICE_CLASS_STATUS, QR_MOVE_SERVICE_CLASS_STATUS

from rtvault.config import Config
from rtvault.errors import InputError, PartialResult, PeerError
from rtvault.jobs.dicom_peers import Peer, aborted, associated, peer_named, status_text
from rtvault.report import OK, Line, Report, Verdict

LEVELS = ("patient", "study", "series", "image")
# The attributes each level returns (and what they mean to a person), its own unique key first.
RETURNED = {
    "patient": ("PatientID", "PatientName", "PatientBirthDate", "PatientSex"),
    "study": ("StudyInstanceUID", "PatientID", "PatientName", "StudyDate", "StudyDescription", "ModalitiesInStudy",
              "AccessionNumber"),
    "series": ("SeriesInstanceUID", "StudyInstanceUID", "PatientID", "PatientName", "Modality", "SeriesNumber",
               "SeriesDescription"),
    "image": ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "PatientID", "PatientName", "SOPClassUID",
              "InstanceNumber"),
}
MAX_MATCHES = 10_000  # a find naming nothing on a large archive: the rest is cancelled and said


@dataclass(frozen=True)
class Criteria:
    """What a find or a move asks for; empty values match anything."""

    patient_id: str = ""
    name: str = ""  # PatientName, with the wildcards * and ? of DICOM
    study_uid: str = ""
    series_uid: str = ""
    modality: str = ""


def identifier(level: str, criteria: Criteria) -> Dataset:
    """The C-FIND identifier: every attribute the level returns, empty unless a criterion fills it."""
    ds = Dataset()
    ds.QueryRetrieveLevel = "IMAGE" if level == "image" else level.upper()
    for keyword in RETURNED[level]:
        setattr(ds, keyword, "")
    values = {"PatientID": criteria.patient_id, "PatientName": criteria.name, "StudyInstanceUID": criteria.study_uid,
              "SeriesInstanceUID": criteria.series_uid,
              "ModalitiesInStudy" if level == "study" else "Modality": criteria.modality}
    for keyword, value in values.items():
        if value and (keyword in RETURNED[level] or keyword.endswith("InstanceUID")):
            setattr(ds, keyword, value)
    return ds


@dataclass
class Found(Report):
    """`rtvault dicom find`: the matches, each as its attributes by keyword."""

    peer: str
    level: str
    matches: list[dict[str, str]] = field(default_factory=list)
    truncated: bool = False

    def to_json(self) -> dict[str, object]:
        return {"peer": self.peer, "level": self.level, "count": len(self.matches), "truncated": self.truncated,
                "matches": self.matches}

    def lines(self) -> Iterable[Line]:
        for match in self.matches:
            yield Line("  ".join(f"{k}={v}" for k, v in match.items() if v))
        more = f" (the first {MAX_MATCHES}: narrow the query)" if self.truncated else ""
        yield Line(f"{len(self.matches)} {self.level} match(es) on {self.peer}{more}")


def find(config: Config, name: str, level: str, criteria: Criteria) -> Found:
    """A C-FIND at `level`; PeerError when the peer cannot be asked or answers a failure."""
    if level not in LEVELS:
        raise InputError(f"unknown level {level!r}: give one of {', '.join(LEVELS)}")
    peer = peer_named(config, name)
    model = PatientRootQueryRetrieveInformationModelFind if level == "patient" else \
        StudyRootQueryRetrieveInformationModelFind
    found = Found(peer.name, level)
    with associated(config, peer, [build_context(model)]) as assoc:
        for status, answer in assoc.send_c_find(identifier(level, criteria), model):
            if "Status" not in status:
                raise PeerError(aborted(peer, "answering a C-FIND"))
            code = int(status.Status)
            if code in (0xFF00, 0xFF01) and answer is not None:
                if len(found.matches) == MAX_MATCHES:
                    found.truncated = True
                    break  # releasing the association ends the find
                found.matches.append({k: _text(answer.get(k, "")) for k in RETURNED[level]})
            elif code != 0:
                raise PeerError(f"peer {peer.where} answered the C-FIND with status "
                                f"{status_text(code, QR_FIND_SERVICE_CLASS_STATUS)}{_comment(status)}")
    return found


def _text(value: object) -> str:
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)  # type: ignore[union-attr]
    return str(value)


def _comment(status: Dataset) -> str:
    return f": {status.ErrorComment}" if status.get("ErrorComment") else ""


@dataclass
class Moved(Report):
    """`rtvault dicom move`: how many objects the peer sent to the destination, and how many failed."""

    peer: str
    to: str
    level: str
    completed: int = 0
    failed: int = 0
    warning: int = 0
    status: str = ""

    def to_json(self) -> dict[str, object]:
        return {"peer": self.peer, "to": self.to, "level": self.level, "completed": self.completed,
                "failed": self.failed, "warning": self.warning, "status": self.status}

    def lines(self) -> Iterable[Line]:
        yield Line(f"{self.peer} sent {self.completed} object(s) to {self.to} ({self.failed} failed, {self.warning} "
                   f"with a warning): {self.status}")

    def verdict(self) -> Verdict:
        if not self.failed:
            return OK
        return Verdict.failed(PartialResult(f"{self.failed} object(s) could not be sent by {self.peer} to {self.to}: "
                                            f"see the logs of both peers"))


def move(config: Config, name: str, to: str, criteria: Criteria) -> Moved:
    """Ask peer `name` to send what `criteria` name (a patient, a study or a series) to peer `to`."""
    peer, destination = peer_named(config, name), peer_named(config, to)
    level = "series" if criteria.series_uid else "study" if criteria.study_uid else "patient"
    if level == "patient" and not criteria.patient_id:
        raise InputError("say what to move: give --patient-id, --study-uid or --series-uid")
    model = PatientRootQueryRetrieveInformationModelMove if level == "patient" else \
        StudyRootQueryRetrieveInformationModelMove
    query = Dataset()
    query.QueryRetrieveLevel = level.upper()
    for keyword, value in (("PatientID", criteria.patient_id), ("StudyInstanceUID", criteria.study_uid),
                           ("SeriesInstanceUID", criteria.series_uid)):
        if value:
            setattr(query, keyword, value)
    moved = Moved(peer.name, destination.name, level)
    with associated(config, peer, [build_context(model)]) as assoc:
        for status, _ in assoc.send_c_move(query, destination.ae_title, model):
            _count(peer, destination, moved, status)
    return moved


def _count(peer: Peer, destination: Peer, moved: Moved, status: Dataset) -> None:
    if "Status" not in status:
        raise PeerError(aborted(peer, f"sending to {destination.name}"))
    code = int(status.Status)
    moved.completed = int(status.get("NumberOfCompletedSuboperations", moved.completed) or 0)
    moved.failed = int(status.get("NumberOfFailedSuboperations", moved.failed) or 0)
    moved.warning = int(status.get("NumberOfWarningSuboperations", moved.warning) or 0)
    moved.status = status_text(code, QR_MOVE_SERVICE_CLASS_STATUS)
    if code == 0xA801:
        raise PeerError(f"peer {peer.where} does not know the move destination {destination.ae_title}: add "
                        f"{destination.name} ({destination.ae_title} at {destination.host}:{destination.port}) to "
                        "the peer's known modalities")
    category = QR_MOVE_SERVICE_CLASS_STATUS.get(code, ("",))[0]
    if category == "Failure" and not moved.completed:
        raise PeerError(f"peer {peer.where} could not send to {destination.name}: status {moved.status}"
                        f"{_comment(status)}")
