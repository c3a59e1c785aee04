"""What the reader learns about a Pinnacle database: patients, their image sets and plans."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from rtvault.errors import Problem


@dataclass
class ImageSetInfo:
    id: int | None
    name: str
    modality: str
    series_description: str
    scan_date: str | None
    number_of_images: int | None
    dimensions: dict[str, int] | None  # x, y, z voxel counts from ImageSet_N.header
    voxel_size_cm: dict[str, float] | None
    bytes: int


@dataclass
class PlanInfo:
    id: int | None
    name: str
    physicist: str
    dosimetrist: str
    locked: bool
    directory_present: bool


@dataclass
class PatientRecord:
    path: str  # relative to the database root, like Institution_1/Mount_0/Patient_7
    patient_id: int | None = None
    last_name: str = ""
    first_name: str = ""
    middle_name: str = ""
    mrn: str = ""
    birth_date: str | None = None  # ISO 8601 date, or None when empty or unreadable
    gender: str = ""
    radiation_oncologist: str = ""
    physicians: dict[str, str] = field(default_factory=dict)
    diagnosis: str = ""
    comment: str = ""
    last_modified: str | None = None  # newest file mtime, ISO 8601 UTC
    image_sets: list[ImageSetInfo] = field(default_factory=list)
    plans: list[PlanInfo] = field(default_factory=list)
    size_bytes: int = 0
    file_count: int = 0
    listed_in_institution: bool = False
    warnings: list[Problem] = field(default_factory=list)
    machines: list[str] = field(default_factory=list)  # sorted names of the machines its plans name

    def to_json(self) -> dict[str, object]:
        """The record as a tree holds it; `machines` only when some plan names one, so that a record read before
        machines were recorded is written back to the same bytes (a tree's hash is its name)."""
        data = asdict(self)
        data["warnings"] = [w.to_json() for w in self.warnings]
        if not self.machines:
            del data["machines"]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PatientRecord:
        """A record as `to_json` wrote it, by this or an earlier version (a field it lacks takes its default,
        a field this version does not know is left out); ValueError when it is not one."""
        if not isinstance(data, Mapping) or not isinstance(data.get("path"), str):
            raise ValueError("a patient record needs its path")
        known = {f.name for f in fields(cls)} - {"image_sets", "plans", "warnings", "machines"}
        record = cls(**{k: v for k, v in data.items() if k in known})
        record.image_sets = [ImageSetInfo(**{f.name: i.get(f.name) for f in fields(ImageSetInfo)})
                             for i in data.get("image_sets") or []]
        record.plans = [PlanInfo(**{f.name: p.get(f.name) for f in fields(PlanInfo)}) for p in data.get("plans") or []]
        record.warnings = [Problem.from_json(w) for w in data.get("warnings") or []]
        machines = data.get("machines") or []
        if not isinstance(machines, list) or not all(isinstance(m, str) for m in machines):
            raise ValueError("a patient record's machines are a list of names")
        record.machines = list(machines)
        return record


@dataclass
class InstitutionEntry:
    """A PatientLite of an Institution file: what Pinnacle believes the institution holds."""

    patient_id: int | None
    path: str
    last_name: str
    first_name: str
    middle_name: str
    mrn: str
    radiation_oncologist: str
    last_modified: str


@dataclass
class ScanResult:
    root: str
    patients: list[PatientRecord] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "root": self.root,
            "patients": [p.to_json() for p in self.patients],
            "warnings": [w.to_json() for w in self.warnings],
        }
