"""`rtvault demo dicom`: synthetic DICOM-RT objects (never real patient data), for testing a DICOM peer or
rtvault's own node: per synthetic patient a CT series, an RTSTRUCT, an RTPLAN and RTDOSEs, and per plan a DRR
(RT Image) of each beam and an RT Beams Treatment Record of one session (`dicom_records.py`), each File-set with
its DICOMDIR under `<to>/<MRN>/`.

They are what `rtvault export dicom` writes of the patients `rtvault demo generate` makes with the same seed (the
same exporter, read from a temporary synthetic database): their PatientID is the demo patient's MRN, so they match
that Pinnacle patient; the same seed gives the same files. UIDs are under 2.25 (the UUID root).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rtvault.demo.dicom_records import rt_images, treatment_record
from rtvault.demo.generate import generate_database
from rtvault.demo.spec import PatientSpec
from rtvault.dicom.dicomdir import Written
from rtvault.dicom.uids import DEFAULT_ROOT
from rtvault.events import NoProgress, Progress
from rtvault.jobs.dicom_export import DicomExport, check_destination, dicom_fileset, write_whole
from rtvault.jobs.dicom_sources import StoredVersion
from rtvault.jobs.treatment_files import StoredFiles
from rtvault.pinnacle.treatment import read_treatment
from rtvault.pinnacle.treatment_source import DirectorySource
from rtvault.report import Line, Report

IMAGE_MB = 0.05  # a CT of a few small slices per image set: enough for contours and doses, quick to send
_SAFE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass
class DemoDicom(Report):
    """What `rtvault demo dicom` wrote: per patient its MRN, name, folder and files by modality."""

    to: str
    seed: int
    patients: list[dict[str, object]] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"to": self.to, "seed": self.seed, "patients": self.patients}

    def lines(self) -> Iterable[Line]:
        for patient in self.patients:
            counts = ", ".join(f"{n} {m}" for m, n in patient["written"].items())  # type: ignore[attr-defined]
            yield Line(f"{patient['mrn']} ({patient['name']}): {counts} in {patient['folder']}")
        yield Line(f"{len(self.patients)} synthetic patient(s) written as DICOM-RT to {self.to} (seed {self.seed})")


def generate_dicom(to: Path, patients: int, seed: int, progress: Progress | None = None) -> DemoDicom:
    """Write the DICOM-RT of `patients` synthetic patients under the new or empty directory `to`."""
    check_destination(to)
    progress = progress or NoProgress()
    report = DemoDicom(str(to), seed)
    with tempfile.TemporaryDirectory(prefix="rtvault-demo-dicom-") as temp:
        database = generate_database(Path(temp) / "db", patients, seed, IMAGE_MB)

        def fill(directory: Path) -> None:
            directory.mkdir()
            progress.begin("Writing DICOM-RT", len(database.patients))
            try:
                for spec in database.patients:
                    report.patients.append(_write_patient(database.out / spec.path, spec, seed, directory))
                    progress.advance()
            finally:
                progress.end()

        write_whole(to, fill, doing="write the demo DICOM into")
    return report


def _write_patient(source: Path, spec: PatientSpec, seed: int, directory: Path) -> dict[str, object]:
    files = _directory_files(source)
    version = StoredVersion(files, spec.path, "demo", f"seed {seed}", f"demo seed {seed}", _newest(source))
    treatment = read_treatment(files)
    export = DicomExport(spec.path, {"kind": "demo", "id": str(seed)}, "")
    fileset = dicom_fileset(DEFAULT_ROOT, version, treatment, list(treatment.plans), export, directory)
    for plan in fileset.staged("RTPLAN"):  # what the treatment room sends back: a DRR per beam, a session's record
        fileset.add(rt_images(plan))
        fileset.add([treatment_record(plan)])
    mrn = spec.identity.mrn
    folder = mrn if _SAFE.match(mrn) else f"Patient_{spec.number}"
    written: list[Written] = fileset.write(directory / folder)
    export.written = written
    return {"mrn": mrn, "name": f"{spec.identity.last_name}^{spec.identity.first_name}", "folder": folder,
            "written": export.counts(), "files": [f"{folder}/{w.path}" for w in written], "missing": export.missing}


def _directory_files(root: Path) -> StoredFiles:
    """A patient directory's files as the exporter reads a stored version's."""
    source = DirectorySource(root)
    sizes = {name: source.size(name) or 0 for name in source.names()}
    return StoredFiles(sizes, lambda name: iter([source.read(name)]), str(root))


def _newest(root: Path) -> str | None:
    newest = max((entry.stat().st_mtime for entry in root.rglob("*") if entry.is_file()), default=None)
    return None if newest is None else datetime.fromtimestamp(newest, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

