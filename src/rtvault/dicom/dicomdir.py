"""The DICOM File-set of an export (docs/design.md, "DICOM export"): every object written through pydicom's
`FileSet`, which lays them out as media require (`PT000000/ST000000/SE000000/IM000000`: upper-case components
of at most eight characters) and writes the `DICOMDIR` that indexes them. The File-set UID is derived (`Ids`),
its instances are added in a fixed order, so the same export gives the same names and bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.fileset import FileSet

FILESET_ID = "RTVAULT"


@dataclass(frozen=True)
class Written:
    """One file of the File-set: its modality and its path relative to the export's directory."""

    modality: str
    path: str


class DicomFileSet:
    """A File-set being filled: `add` stages each dataset (to a temporary file, so a CT need not stay in memory),
    `write` lays them out under a directory with their DICOMDIR."""

    def __init__(self, uid: str) -> None:
        self._fileset = FileSet()
        self._fileset.UID = uid
        self._fileset.ID = FILESET_ID
        self._modalities: dict[str, str] = {}

    def add(self, datasets: Iterable[Dataset]) -> int:
        """Stage datasets in order; returns how many."""
        count = 0
        for ds in datasets:
            self._fileset.add(ds)
            self._modalities[ds.SOPInstanceUID] = ds.Modality
            count += 1
        return count

    def write(self, directory: Path) -> list[Written]:
        """Write the staged objects and `DICOMDIR` under `directory`; what was written, DICOMDIR last."""
        self._fileset.write(directory)
        written = [Written(self._modalities[i.SOPInstanceUID], Path(*Path(i.FileID).parts).as_posix())
                   for i in self._fileset]
        return [*written, Written("DICOMDIR", "DICOMDIR")]
