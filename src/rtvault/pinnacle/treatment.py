"""A Pinnacle treatment read from a patient's files: `read_treatment(source)` → `Treatment` (types in
`treatment_types.py`: patient, image sets, ROIs, points, trials, beams, control points, dose grids, machines).

Read-only and Latin-1 through the grammar parser and its dialects; never raises on bad content: what cannot be
read is a `Problem` in `Treatment.problems`, and the rest is still modelled. Units and coordinates: docs/design.md,
"Pinnacle treatment model and coordinates", and `coordinates.py` (Pinnacle cm → DICOM mm).
"""

from __future__ import annotations

import re
from collections.abc import Collection

from rtvault.errors import Problem
from rtvault.pinnacle.dates import DateProblem, normalise_date
from rtvault.pinnacle.grammar import PObject, parse_bytes
from rtvault.pinnacle.treatment_fields import integer, objects, read_parsed, text
from rtvault.pinnacle.treatment_images import read_image_set
from rtvault.pinnacle.treatment_plan import PlanEntry, read_plan
from rtvault.pinnacle.treatment_source import DirectorySource, PatientFiles
from rtvault.pinnacle.treatment_types import (
    Beam,
    ControlPoint,
    CoordinateFrame,
    Curve,
    DoseGrid,
    ImageSet,
    ImageSlice,
    Jaws,
    PatientIdentity,
    PatientPosition,
    Plan,
    Poi,
    Prescription,
    Roi,
    Treatment,
    Trial,
)

__all__ = [
    "Beam", "ControlPoint", "CoordinateFrame", "Curve", "DirectorySource", "DoseGrid", "ImageSet", "ImageSlice",
    "Jaws", "PatientFiles", "PatientIdentity", "PatientPosition", "Plan", "Poi", "Prescription", "Roi", "Treatment",
    "Trial", "read_treatment",
]

_HEADER = re.compile(r"ImageSet_(\d+)\.header\Z")
_PLAN_DIR = re.compile(r"Plan_(\d+)/")


def read_treatment(source: PatientFiles, *, plan_ids: Collection[int] | None = None) -> Treatment:
    """Read a patient's treatment from its files (names relative to the patient directory: `Patient`,
    `ImageSet_0.header`, `Plan_0/plan.Trial`...). `plan_ids` limits the plans read (all when None). Never
    raises on bad content: each problem is in the result."""
    problems: list[Problem] = []
    try:
        names = set(source.names())
    except OSError as error:
        problems.append(Problem(".", f"cannot list the patient's files ({error.strerror or error}): nothing read"))
        names = set()
    patient = read_parsed(source, names, "Patient", problems, parse_bytes) or PObject()
    image_items = {i: item for item in objects(patient.child("ImageSetList"))
                   if (i := integer(item, "ImageSetID")) is not None}
    image_ids = sorted(set(image_items) | {int(m.group(1)) for n in names if (m := _HEADER.match(n))})
    image_sets = tuple(read_image_set(source, names, i, image_items.get(i), problems) for i in image_ids)
    plans = tuple(read_plan(source, names, entry, image_sets, problems)
                  for entry in _plan_entries(patient, names, problems)
                  if plan_ids is None or entry.id in plan_ids)
    return Treatment(_identity(patient, problems), image_sets, plans, tuple(problems), source)


def _identity(patient: PObject, problems: list[Problem]) -> PatientIdentity:
    try:
        birth = normalise_date(text(patient, "DateOfBirth"))
    except DateProblem as problem:
        problems.append(Problem("Patient", f"DateOfBirth: {problem}"))
        birth = None
    return PatientIdentity(
        patient_id=integer(patient, "PatientID"), last_name=text(patient, "LastName"),
        first_name=text(patient, "FirstName"), middle_name=text(patient, "MiddleName"),
        mrn=text(patient, "MedicalRecordNumber"), birth_date=birth, gender=text(patient, "Gender"),
        radiation_oncologist=text(patient, "RadiationOncologist"),
        referring_physician=text(patient, "ReferringPhysician"),
    )


def _plan_entries(patient: PObject, names: set[str], problems: list[Problem]) -> list[PlanEntry]:
    """The plans the Patient file lists, then those only on disk (a `Plan_K/` with files), by id."""
    listed: dict[int, PlanEntry] = {}
    for item in objects(patient.child("PlanList")):
        plan_id = integer(item, "PlanID")
        if plan_id is not None:
            listed.setdefault(plan_id, PlanEntry(plan_id, text(item, "PlanName"),
                                                 integer(item, "PrimaryCTImageSetID"),
                                                 text(item, "PinnacleVersionDescription")))
    on_disk = {int(m.group(1)) for n in names if (m := _PLAN_DIR.match(n))}
    for plan_id in sorted(on_disk - set(listed)):
        problems.append(Problem("Patient", f"Plan_{plan_id} is on disk but not in PlanList: read without its name"))
        listed[plan_id] = PlanEntry(plan_id, "", None, "")
    return [listed[k] for k in sorted(listed) if k in on_disk or _missing(k, problems)]


def _missing(plan_id: int, problems: list[Problem]) -> bool:
    problems.append(Problem(f"Plan_{plan_id}", "listed in PlanList but has no files: left out"))
    return False
