"""The DICOM File-set of an export (docs/design.md, "DICOM export"): every object written through pydicom's
`FileSet`, which lays them out as media require (`PT000000/ST000000/SE000000/IM000000`: upper-case components
of at most eight characters) and writes the `DICOMDIR` that indexes them. The File-set UID is derived (`Ids`),
its instances are added in a fixed order, so the same export gives the same names and bytes.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.fileset import FileSet

FILESET_ID = "RTVAULT"
# Type 1 attributes a DICOMDIR record needs that a received object may lack: given in its record, never in its file
RECORD_FILL = {"PatientID": "UNKNOWN", "Modality": "OT", "StudyDate": "19000101", "StudyTime": "000000", "StudyID": "1",
               "SeriesNumber": 1, "InstanceNumber": 1, "DoseSummationType": "PLAN", "StructureSetLabel": "RTSTRUCT",
               "RTPlanLabel": "RTPLAN", "ContentDate": "19000101", "ContentTime": "000000"}


_ERRNO = re.compile(r"\[Errno (\d+)\]")


def disk_error(error: BaseException) -> OSError | None:
    """The operating system's error behind `error` when writing a staged or laid-out object failed (a full disk),
    else None (a file pydicom cannot read or write as DICOM). pydicom re-raises an OSError met while writing an
    element without its errno, the errno's text in its message: found back."""
    if not isinstance(error, OSError):
        return None
    if error.errno is not None:
        return error
    found = _ERRNO.search(str(error))
    return OSError(int(found.group(1)), os.strerror(int(found.group(1)))) if found else None


@dataclass(frozen=True)
class Written:
    """One file of the File-set: its modality and its path relative to the export's directory (and its SOP
    Instance UID; empty for the DICOMDIR)."""

    modality: str
    path: str
    sop_instance: str = ""


class DicomFileSet:
    """A File-set being filled: `add` stages each dataset (to a temporary file, so a CT need not stay in memory),
    `add_file` a file kept byte for byte, `write` lays them out under a directory with their DICOMDIR."""

    def __init__(self, uid: str, stage: Path | None = None) -> None:
        """`stage`: the folder to stage the objects in (a hidden folder of its own is made there), on the
        destination's file system; else pydicom's, in the system's temporary area, which may be a small tmpfs."""
        self._fileset = FileSet()
        self._fileset.UID = uid
        self._fileset.ID = FILESET_ID
        self._modalities: dict[str, str] = {}
        if stage is not None:
            self.close()
            folder = TemporaryDirectory(prefix=".rtvault-staging-", dir=stage)
            self._fileset._stage.update(t=folder, path=Path(folder.name))  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self._modalities)

    def add(self, datasets: Iterable[Dataset]) -> int:
        """Stage datasets in order; returns how many."""
        count = 0
        for ds in datasets:
            self._fileset.add(ds)
            self._modalities[ds.SOPInstanceUID] = ds.Modality
            count += 1
        return count

    def staged(self, modality: str) -> list[Dataset]:
        """The datasets staged so far of one modality (read back from their staged files), in the order added."""
        return [instance.load() for instance in self._fileset
                if self._modalities.get(instance.SOPInstanceUID) == modality]

    def add_file(self, data: bytes) -> str:
        """Stage a DICOM Part 10 file to be written byte for byte (a received object), its record made from its
        own attributes (those a record requires and it lacks given in the record only); returns its modality.
        ValueError (or pydicom's error) when no record can be made for it."""
        ds = dcmread(io.BytesIO(data))
        if ds.SOPInstanceUID in self._modalities:
            raise ValueError(f"another object of the export has its SOP instance UID {ds.SOPInstanceUID}")
        for keyword, value in RECORD_FILL.items():
            if keyword not in ds or ds[keyword].VM == 0:
                setattr(ds, keyword, value)
        instance = self._fileset.add(ds)
        Path(instance.path).write_bytes(data)  # the staged file, copied into place as it is: the bytes stored
        self._modalities[ds.SOPInstanceUID] = str(ds.Modality)
        return str(ds.Modality)

    def write(self, directory: Path) -> list[Written]:
        """Write the staged objects and `DICOMDIR` under `directory`; what was written, DICOMDIR last. The staged
        copies go then, written or not (the File-set is written once)."""
        try:
            self._fileset.write(directory)
            written = [Written(self._modalities[i.SOPInstanceUID], Path(*Path(i.FileID).parts).as_posix(),
                               str(i.SOPInstanceUID)) for i in self._fileset]
        finally:
            self.close()
        return [*written, Written("DICOMDIR", "DICOMDIR")]

    def close(self) -> None:
        """Remove the staged copies now (pydicom keeps them in a temporary folder of its own until the File-set is
        garbage collected: a server would leave them behind for a while, an export of a big CT series hold them
        on the temporary area after it is done)."""
        stage = getattr(self._fileset, "_stage", {}).get("t")
        if stage is not None:
            stage.cleanup()
