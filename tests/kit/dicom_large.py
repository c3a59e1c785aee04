"""A DICOM object of any size for the node's memory bound (tests/dicom_node/test_node_large.py,
bench/dicom_large.py): a Multi-frame Grayscale Word Secondary Capture of synthetic noise written without holding
its pixel data in memory, the digest of a file's data set read in blocks, and a process's peak resident memory."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

SC_WORD = "1.2.840.10008.5.1.4.1.1.7.3"  # Multi-frame Grayscale Word Secondary Capture Image Storage
ROWS = COLUMNS = 512
BLOCK = 16 << 20  # the noise repeats every 16 MiB: incompressible to the store, written in blocks


def write_large(path: Path, size: int, patient_id: str = "LARGE-0001") -> str:
    """A ~`size`-byte SC object (whole 512 × 512 16-bit frames) at `path`; its SOP Instance UID."""
    frames = max(1, size // (ROWS * COLUMNS * 2))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SC_WORD
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID, dataset.SOPInstanceUID = SC_WORD, meta.MediaStorageSOPInstanceUID
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = generate_uid(), generate_uid()
    dataset.PatientID, dataset.PatientName, dataset.PatientBirthDate = patient_id, "LARGE^SYNTHETIC", "19700101"
    dataset.Modality, dataset.ConversionType, dataset.SeriesNumber, dataset.InstanceNumber = "OT", "WSD", 1, 1
    dataset.StudyDate = dataset.ContentDate = "20261207"
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.Rows, dataset.Columns, dataset.NumberOfFrames = ROWS, COLUMNS, frames
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 12, 11, 0
    dataset.save_as(path, enforce_file_format=True)
    length = frames * ROWS * COLUMNS * 2
    noise = os.urandom(BLOCK)
    with open(path, "ab") as file:  # (7FE0,0010) OW, explicit VR little endian: written in blocks
        file.write(b"\xe0\x7f\x10\x00OW\x00\x00" + length.to_bytes(4, "little"))
        left = length
        while left > 0:
            left -= file.write(noise[:min(left, BLOCK)])
    return str(dataset.SOPInstanceUID)


def data_set_digest(path: Path) -> str:
    """SHA-256 of a Part 10 file's data set (what travels on the network, and must come back identical)."""
    hasher = hashlib.sha256()
    with open(path, "rb") as file:
        head = file.read(144)
        assert head[128:132] == b"DICM" and head[132:136] == b"\x02\x00\x00\x00"
        file.seek(144 + int.from_bytes(head[140:144], "little"))
        while block := file.read(1 << 20):
            hasher.update(block)
    return hasher.hexdigest()


def peak_rss(pid: int) -> int:
    """A live process's peak resident memory so far (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for process {pid}")
