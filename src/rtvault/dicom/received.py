"""DICOM objects rtvault receives (a C-STORE, `rtvault dicom import`): kept byte for byte as a Part 10 file, and
described by the attributes the catalog indexes. Nothing here writes: `jobs/dicom_receive.py` stores.

A C-STORE carries a data set encoded in the negotiated transfer syntax; `part10` puts rtvault's own File Meta
Information in front of those bytes, unchanged. The meta depends only on the object (its SOP class and instance
and transfer syntax), not on who sent it, so the same object received twice is the same file, stored once.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pydicom
from pydicom import filereader
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from rtvault.store.readers import PositionedReader

# rtvault's implementation class UID: under 2.25 (a UUID, no registration needed), fixed for good
IMPLEMENTATION_CLASS_UID = "2.25.259919181455916223980822234600063642902"
IMPLEMENTATION_VERSION = "RTVAULT_1"

# Storage SOP classes the node accepts (issue: CT, MR, PET, RT objects, records, registration, SC)
STORAGE_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.2": "CT Image",
    "1.2.840.10008.5.1.4.1.1.2.1": "Enhanced CT Image",
    "1.2.840.10008.5.1.4.1.1.4": "MR Image",
    "1.2.840.10008.5.1.4.1.1.4.1": "Enhanced MR Image",
    "1.2.840.10008.5.1.4.1.1.128": "Positron Emission Tomography Image",
    "1.2.840.10008.5.1.4.1.1.130": "Enhanced PET Image",
    "1.2.840.10008.5.1.4.1.1.481.1": "RT Image",
    "1.2.840.10008.5.1.4.1.1.481.2": "RT Dose",
    "1.2.840.10008.5.1.4.1.1.481.3": "RT Structure Set",
    "1.2.840.10008.5.1.4.1.1.481.4": "RT Beams Treatment Record",
    "1.2.840.10008.5.1.4.1.1.481.5": "RT Plan",
    "1.2.840.10008.5.1.4.1.1.481.6": "RT Brachy Treatment Record",
    "1.2.840.10008.5.1.4.1.1.481.7": "RT Treatment Summary Record",
    "1.2.840.10008.5.1.4.1.1.481.8": "RT Ion Plan",
    "1.2.840.10008.5.1.4.1.1.481.9": "RT Ion Beams Treatment Record",
    "1.2.840.10008.5.1.4.1.1.66.1": "Spatial Registration",
    "1.2.840.10008.5.1.4.1.1.66.3": "Deformable Spatial Registration",
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image",
    "1.2.840.10008.5.1.4.1.1.7.1": "Multi-frame Single Bit Secondary Capture Image",
    "1.2.840.10008.5.1.4.1.1.7.2": "Multi-frame Grayscale Byte Secondary Capture Image",
    "1.2.840.10008.5.1.4.1.1.7.3": "Multi-frame Grayscale Word Secondary Capture Image",
    "1.2.840.10008.5.1.4.1.1.7.4": "Multi-frame True Color Secondary Capture Image",
}

# The attributes a receipt records and the catalog indexes
INDEXED = ("SOPClassUID", "SOPInstanceUID", "PatientID", "PatientName", "IssuerOfPatientID", "PatientBirthDate",
           "PatientSex", "StudyInstanceUID", "StudyDate", "StudyTime", "StudyDescription", "StudyID",
           "AccessionNumber", "ReferringPhysicianName", "SeriesInstanceUID", "SeriesNumber", "SeriesDescription",
           "Modality", "InstanceNumber", "SeriesDate", "ContentDate", "InstitutionName", "RTPlanLabel",
           "RTPlanName", "StructureSetLabel", "DoseType", "DoseSummationType", "FrameOfReferenceUID")
_REQUIRED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")

# DIMSE statuses (PS3.4 Annex B, PS3.7 Annex C)
OUT_OF_RESOURCES = 0xA700
MISMATCH = 0xA900  # data set does not match SOP class
CANNOT_UNDERSTAND = 0xC000
NOT_SUPPORTED = 0x0122  # refused: SOP class not supported
DEFERRED = 1 << 20  # `describe` reads no value longer than this (indexed attributes are short)


# What pydicom raises on a damaged or hostile file (it has no error class of its own for most of it)
UNPARSABLE = (InvalidDicomError, ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, EOFError,
              OSError, NotImplementedError, RecursionError, struct.error)


class Refused(Exception):
    """An object rtvault does not store: the DIMSE failure status to answer and why, in one sentence."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status
        self.why = why


def part10(dataset: bytes, sop_class: str, sop_instance: str, transfer_syntax: str) -> bytes:
    """A DICOM Part 10 file: preamble, `DICM`, rtvault's File Meta Information, then `dataset` unchanged."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = UID(transfer_syntax)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    out = io.BytesIO()
    out.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(out, meta, enforce_standard=True)  # type: ignore[arg-type]
    return out.getvalue() + dataset


COPY = 1 << 20  # bytes read at a time from a received object's file


@dataclass(frozen=True)
class Streamed:
    """A received object that lies in a file (a C-STORE's data set as pynetdicom wrote it): its Part 10 bytes are
    `head` (the preamble and rtvault's meta, as `part10` writes them) then the file's bytes from `offset`; read
    in blocks, never whole (an object of any size is received in bounded memory)."""

    head: bytes
    path: Path
    offset: int
    size: int  # of the Part 10 file: len(head) + the data set's bytes
    hash: str  # SHA-256 of the Part 10 file

    def blocks(self) -> Iterator[bytes]:
        yield self.head
        left = self.size - len(self.head)
        with open(self.path, "rb") as file:
            file.seek(self.offset)
            while left > 0:
                block = file.read(min(left, COPY))
                if not block:
                    raise OSError(f"{self.path} ended {left} bytes early")
                left -= len(block)
                yield block

    def open(self) -> BinaryIO:
        """The Part 10 file as a seekable stream (what `describe` reads; not an io.BufferedReader, which pydicom
        would take for the file at `name`)."""
        return _Joined(self)  # type: ignore[return-value]


class _Joined(PositionedReader):
    """`Streamed`'s head and file read as one seekable file."""

    def __init__(self, streamed: Streamed) -> None:
        self.streamed, self.position, self.length = streamed, 0, streamed.size
        self.file = open(streamed.path, "rb")  # noqa: SIM115 (closed with the stream)

    def readinto(self, buffer: Any) -> int:
        head, view = self.streamed.head, memoryview(buffer).cast("B")
        count = max(0, min(len(view), self.streamed.size - self.position))
        if not count:
            return 0
        if self.position < len(head):
            count = min(count, len(head) - self.position)
            view[:count] = head[self.position:self.position + count]
        else:
            self.file.seek(self.streamed.offset + self.position - len(head))
            count = self.file.readinto(view[:count]) or 0
        self.position += count
        return count

    def close(self) -> None:
        self.file.close()
        super().close()


IN_MEMORY = 4 << 20  # a received file up to this size is read whole (most objects: CT/MR slices, plans, structures)


def arrived(path: Path, sop_class: str, sop_instance: str, transfer_syntax: str) -> bytes | Streamed:
    """The received object whose data set lies in `path`: its Part 10 bytes when the file is small (read whole:
    the quickest, in memory bounded by IN_MEMORY), else `streamed`. Refused (0xC000) when the file's meta cannot
    be found or the UIDs cannot be written; OSError when the file cannot be read."""
    with open(path, "rb") as file:
        if os.fstat(file.fileno()).st_size > IN_MEMORY:
            return streamed(path, sop_class, sop_instance, transfer_syntax)
        raw = file.read()
    return in_memory(raw, sop_class, sop_instance, transfer_syntax)


def in_memory(raw: bytes, sop_class: str, sop_instance: str, transfer_syntax: str) -> bytes:
    """The Part 10 bytes of a received file held in memory (pynetdicom's meta replaced by rtvault's)."""
    offset = _meta_end(raw) if raw[128:132] == b"DICM" else 0
    try:
        return part10(raw[offset:], sop_class, sop_instance, transfer_syntax)
    except (ValueError, TypeError, OverflowError) as error:
        raise Refused(CANNOT_UNDERSTAND, f"the request's UIDs cannot be written ({error})") from None


def streamed(path: Path, sop_class: str, sop_instance: str, transfer_syntax: str) -> Streamed:
    """The received object whose data set lies in `path` (after the File Meta Information pynetdicom wrote there,
    replaced by rtvault's: the same object received twice is the same file); its hash read in one pass. Refused
    (0xC000) when the file's meta cannot be found; OSError when the file cannot be read."""
    try:
        head = part10(b"", sop_class, sop_instance, transfer_syntax)
    except (ValueError, TypeError, OverflowError) as error:
        raise Refused(CANNOT_UNDERSTAND, f"the request's UIDs cannot be written ({error})") from None
    with open(path, "rb") as file:
        start = file.read(144)
        offset = _meta_end(start) if start[128:132] == b"DICM" else 0
        hasher, size = hashlib.sha256(head), len(head)
        file.seek(offset)
        while block := file.read(COPY):
            hasher.update(block)
            size += len(block)
    return Streamed(head, path, offset, size, hasher.hexdigest())


def dataset_of(data: bytes) -> tuple[bytes, str]:
    """The data set bytes of a DICOM file and its transfer syntax (what a C-STORE to a peer sends). A file without
    Part 10 meta information (older media) is a bare data set, whose encoding pydicom recognises."""
    if data[128:132] != b"DICM":
        try:
            found = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True,
                                    specific_tags=["SOPInstanceUID"])
        except (InvalidDicomError, ValueError, TypeError, KeyError, OSError, EOFError) as error:
            raise Refused(CANNOT_UNDERSTAND, f"not a DICOM file ({type(error).__name__}: {error})") from None
        implicit = getattr(found, "is_implicit_VR", True)
        little = getattr(found, "is_little_endian", True)
        syntax = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
        return data, str(syntax)
    meta = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).file_meta
    return data[_meta_end(data):], str(meta.TransferSyntaxUID)


def _meta_end(data: bytes) -> int:
    """Where the File Meta Information ends: its group length says how long it is."""
    start = 132 if data[128:132] == b"DICM" else 0
    if data[start:start + 4] != b"\x02\x00\x00\x00":  # (0002,0000) group length, explicit VR LE
        raise Refused(CANNOT_UNDERSTAND, "the file's meta information has no group length")
    length = int.from_bytes(data[start + 8:start + 12], "little")
    return start + 12 + length


def is_uid(value: object) -> bool:
    """Whether `value` is a UID: digits and dots, at most 64 characters (PS3.5 9.1)."""
    return isinstance(value, str) and len(value) <= 64 and _UID.fullmatch(value) is not None


def describe(data: bytes | Streamed, *, expected_class: str | None = None) -> dict[str, Any]:
    """The indexed attributes of a Part 10 file (pixel data not read, nor any value over DEFERRED bytes); Refused
    with the status to answer when it cannot be parsed, lacks a required UID, or is not of the SOP class
    announced."""
    stream: BinaryIO = data.open() if isinstance(data, Streamed) else io.BytesIO(data)
    try:
        with stream:
            stream.seek(128)
            part10_file = stream.read(4) == b"DICM"
            stream.seek(0)
            found = pydicom.dcmread(stream, stop_before_pixels=True, defer_size=DEFERRED, force=not part10_file)
            tags = _tags(found)
            _whole(stream, found, part10_file)
    except Refused:
        raise
    except UNPARSABLE as error:
        raise Refused(CANNOT_UNDERSTAND, f"the data set cannot be parsed ({type(error).__name__}: {error})") from None
    missing = [name for name in _REQUIRED if not tags.get(name)]
    if missing:
        raise Refused(MISMATCH, f"the data set lacks {', '.join(missing)}")
    for name in _REQUIRED:  # a UID is digits and dots (PS3.5 9.1): one holding a control character, a letter or
        value = tags[name]  # several values would name the object wrongly everywhere it is shown or sent on
        if not is_uid(value):
            raise Refused(CANNOT_UNDERSTAND, f"the data set's {name} {value!r} is not a UID (digits and dots, at "
                                             "most 64 characters)")
    if expected_class is not None and tags["SOPClassUID"] != expected_class:
        raise Refused(MISMATCH, f"the data set's SOP class {tags['SOPClassUID']} is not the one announced "
                                f"({expected_class})")
    if tags["SOPClassUID"] not in STORAGE_CLASSES:
        raise Refused(NOT_SUPPORTED, f"SOP class {tags['SOPClassUID']} is not one rtvault stores")
    meta = getattr(found, "file_meta", None)
    tags["TransferSyntaxUID"] = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    return tags


_DEFLATED = "1.2.840.10008.1.2.1.99"
_UNDEFINED = 0xFFFFFFFF
_PIXEL_DATA = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # Pixel Data, Float and Double Float Pixel Data


def _whole(stream: BinaryIO, found: Dataset, part10_file: bool) -> None:
    """Refused (0xC000) when the data set does not hold every byte its elements declare: pydicom reads a value
    cut short, or an encapsulated value without its delimiter, with a warning only, so a truncated object (a
    file cut off on a damaged medium, a sender's bug) would otherwise be stored and answered success. The top
    level is walked with the values skipped (nothing large read into memory)."""
    meta = getattr(found, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if syntax == _DEFLATED:
        return  # the data set is zlib data: pydicom inflated it, its own check
    stream.seek(0)
    start = _meta_end(stream.read(144)) if part10_file else 0
    implicit = getattr(found, "is_implicit_VR", None)
    little = getattr(found, "is_little_endian", None)
    if implicit is None or little is None:  # pydicom 3 keeps them in the dataset's original encoding
        implicit, little = found.original_encoding
    end = stream.seek(0, io.SEEK_END)
    stream.seek(start)
    pixels = False
    for element in filereader.data_element_generator(stream, bool(implicit), bool(little), defer_size=256):
        length = getattr(element, "length", _UNDEFINED)  # a sequence comes read (a DataElement): its items' own
        value_at = getattr(element, "value_tell", 0)
        if length != _UNDEFINED and value_at + length > end:
            raise Refused(CANNOT_UNDERSTAND, f"the data set is truncated: element {element.tag} declares {length} "
                                             f"bytes, {max(end - value_at, 0)} follow it")
        pixels = pixels or element.tag in _PIXEL_DATA
    if "Rows" in found and not pixels:
        raise Refused(CANNOT_UNDERSTAND, "the data set is truncated: an image (Rows) without its pixel data")


def _tags(found: Dataset) -> dict[str, Any]:
    tags: dict[str, Any] = {}
    for name in INDEXED:
        value = found.get(name)
        if value is None or value == "":
            continue
        tags[name] = _text(value)
    rois = found.get("StructureSetROISequence")
    if rois:
        tags["ROINames"] = [_text(item.get("ROIName", "")) for item in rois]
    return tags


def _text(value: Any) -> Any:
    if isinstance(value, int | float):
        return value
    if isinstance(value, pydicom.valuerep.PersonName):
        return str(value)
    if isinstance(value, pydicom.multival.MultiValue):
        return [str(v) for v in value]
    text = str(value)
    return text.replace("\0", "").strip()
