"""A Pinnacle treatment read from a patient's files: `read_treatment(source)` → `Treatment` (types in
`treatment_types.py`: patient, image sets, ROIs, points, trials, beams, control points, dose grids, machines).

Read-only and Latin-1 through the grammar parser and its dialects; never raises on bad content: what cannot be
read is a `Problem` in `Treatment.problems`, and the rest is still modelled. Units and coordinates: docs/design.md,
"Pinnacle treatment model and coordinates", and `coordinates.py` (Pinnacle cm → DICOM mm).
"""

from __future__ import annotations

from collections.abc import Collection

from rtvault.errors import Problem
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


def read_treatment(source: PatientFiles, *, plan_ids: Collection[int] | None = None) -> Treatment:
    """Read a patient's treatment from its files (names relative to the patient directory: `Patient`,
    `ImageSet_0.header`, `Plan_0/plan.Trial`...). `plan_ids` limits the plans read (all when None). Never
    raises on bad content: each problem is in the result."""
    identity = PatientIdentity(None, "", "", "", "", None, "", "", "")
    return Treatment(identity, (), (), (Problem("Patient", "not read yet"),), source)
