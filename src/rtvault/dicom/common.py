"""What every exported DICOM object shares (docs/design.md, "DICOM export"): the SOP Common, Patient, General
Study, General Equipment, Frame of Reference and series modules, DS/IS/date formatting, and the one way a
dataset is written to disk.

An object's writer (`ct.py`, `rtstruct.py`, `rtplan.py`, `rtdose.py`) starts from `new_dataset(export, sop_class,
sop_instance)`, which fills the SOP Common, Patient and General Study modules, adds its own modules with
`equipment`, `frame_of_reference`, `series`, and writes with `write_dataset`. Nothing here reads the clock: every
date comes from the `Export` (the source version's or the scan's), so the same export gives the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from rtvault.dicom.uids import DEFAULT_ROOT, Ids, derive
from rtvault.pinnacle.treatment_types import PatientIdentity

CHARACTER_SET = "ISO_IR 100"  # Latin-1: what Pinnacle's files are written in
IMPLEMENTATION_UID = derive(DEFAULT_ROOT, "rtvault", "implementation")  # the same for every export
IMPLEMENTATION_NAME = "RTVAULT"
STUDY_ID = "RTVAULT"  # one study per export (its UID is the export's)
DS_MAX = 16  # a DS value's length (PS3.5 table 6.2-1)
IS_MIN, IS_MAX = -(2**31), 2**31 - 1

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
RT_STRUCTURE_SET = "1.2.840.10008.5.1.4.1.1.481.3"
RT_PLAN = "1.2.840.10008.5.1.4.1.1.481.5"
RT_DOSE = "1.2.840.10008.5.1.4.1.1.481.2"


@dataclass(frozen=True)
class Export:
    """What every object of one export shares: its UIDs (`ids`: the patient and the source version), who the
    patient is, and the dates written (ISO 8601, never the current time): `study_datetime` (the scan's, else the
    version's) for the study, `content_datetime` (the source version's: its snapshot's or archive's date) for
    the objects rtvault derives."""

    ids: Ids
    identity: PatientIdentity
    study_datetime: str | None
    content_datetime: str | None
    software: str = "rtvault"  # SoftwareVersions of the objects rtvault writes


def format_ds(value: float) -> str:
    """A number as a DICOM Decimal String of at most 16 characters, as precise as fits ("-0" written "0")."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r} cannot be written as a DICOM decimal string")
    if abs(value) < 1e-9:
        return "0"
    for digits in range(12, 0, -1):
        text = format(value, f".{digits}g")
        if len(text) <= DS_MAX:
            return text
    raise ValueError(f"{value!r} does not fit a DICOM decimal string")  # pragma: no cover: 1 digit always fits


def format_ds_list(values: Iterable[float]) -> list[str]:
    """Many numbers as DS values (a multi-valued DS: contour data, positions, spacings)."""
    return [format_ds(float(v)) for v in values]


def format_is(value: int) -> str:
    """An integer as a DICOM Integer String (signed 32 bits)."""
    if not IS_MIN <= value <= IS_MAX:
        raise ValueError(f"{value} does not fit a DICOM integer string")
    return str(int(value))


def dicom_date(iso: str | None) -> str:
    """`2024-03-05` or `2024-03-05T10:20:30Z` as DICOM DA `20240305`; "" when unknown."""
    if not iso or len(iso) < 10:
        return ""
    return iso[:10].replace("-", "")


def dicom_time(iso: str | None) -> str:
    """The time of an ISO 8601 date-time as DICOM TM `102030`; "" when it has none."""
    if not iso or len(iso) < 19 or iso[10] not in "T ":
        return ""
    return iso[11:19].replace(":", "")


def person_name(last: str, first: str = "", middle: str = "") -> str:
    """A DICOM PN `Last^First^Middle`, trailing empty parts left out, `^` and `\\` removed from each part."""
    parts = [p.replace("^", " ").replace("\\", " ").strip() for p in (last, first, middle)]
    while parts and not parts[-1]:
        parts.pop()
    return "^".join(parts)


def patient_sex(gender: str) -> str:
    """Pinnacle's `Gender` as DICOM PatientSex: M, F, O, or "" when unknown."""
    word = gender.strip().lower()
    return {"male": "M", "m": "M", "female": "F", "f": "F", "other": "O", "o": "O"}.get(word, "")


def new_dataset(export: Export, sop_class: str, sop_instance: str) -> Dataset:
    """A dataset with its file meta information, SOP Common, Patient and General Study modules filled."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_UID
    meta.ImplementationVersionName = IMPLEMENTATION_NAME
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = CHARACTER_SET
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    _patient(ds, export)
    _study(ds, export)
    return ds


def _patient(ds: Dataset, export: Export) -> None:
    who = export.identity
    ds.PatientName = person_name(who.last_name, who.first_name, who.middle_name)
    # Type 2 here but Type 1 in a DICOMDIR's PATIENT record: the MRN, else Pinnacle's number, else rtvault's key
    number = str(who.patient_id) if who.patient_id is not None else ""
    ds.PatientID = (who.mrn or number or export.ids.patient)[:64]
    ds.PatientBirthDate = dicom_date(who.birth_date)
    ds.PatientSex = patient_sex(who.gender)


def _study(ds: Dataset, export: Export) -> None:
    ds.StudyInstanceUID = export.ids.study
    # StudyDate, StudyTime and StudyID are Type 1 in a DICOMDIR's STUDY record: never empty when a date is known
    when = export.study_datetime or export.content_datetime
    ds.StudyDate = dicom_date(when)
    ds.StudyTime = dicom_time(when) or ("000000" if ds.StudyDate else "")
    who = export.identity
    ds.ReferringPhysicianName = person_name(who.referring_physician or who.radiation_oncologist)[:64]
    ds.StudyID = STUDY_ID
    ds.AccessionNumber = ""


def equipment(ds: Dataset, manufacturer: str, model: str = "", software: str = "") -> None:
    """The General Equipment module (Manufacturer is Type 2: may be empty)."""
    ds.Manufacturer = manufacturer[:64]
    if model:
        ds.ManufacturerModelName = model[:64]
    if software:
        ds.SoftwareVersions = software[:64]


def frame_of_reference(ds: Dataset, uid: str) -> None:
    """The Frame of Reference module: the image set's frame (`Ids.frame_of_reference(image_set_name)`)."""
    ds.FrameOfReferenceUID = uid
    ds.PositionReferenceIndicator = ""


def series(ds: Dataset, modality: str, uid: str, number: int, description: str = "", *, rt: bool = False) -> None:
    """The General Series module (CT), or with `rt` the RT Series module (RTSTRUCT, RTPLAN, RTDOSE: it also
    carries OperatorsName, Type 2)."""
    ds.Modality = modality
    ds.SeriesInstanceUID = uid
    ds.SeriesNumber = format_is(number)
    if description:
        ds.SeriesDescription = description[:64]
    if rt:
        ds.OperatorsName = ""


def content_date(ds: Dataset, export: Export, *, prefix: str = "") -> None:
    """`<prefix>Date`/`<prefix>Time` (e.g. StructureSetDate, RTPlanDate, ContentDate) from the source version."""
    setattr(ds, f"{prefix or 'Content'}Date", dicom_date(export.content_datetime))
    setattr(ds, f"{prefix or 'Content'}Time", dicom_time(export.content_datetime))


def write_dataset(ds: Dataset, path: Path) -> None:
    """Write a dataset as a DICOM Part 10 file (explicit VR little endian); the same dataset, the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
