"""Discovery: which institutions and patients a Pinnacle root holds.

A patient is found twice over: in the `Institution` file's PatientLiteList and as a `Patient_N` directory
on disk. A directory the Institution file does not list is still a patient (with a warning); an
Institution entry with no directory is reported, since that patient's data is gone from the source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from rtvault.errors import InputError, Problem
from rtvault.events import NoProgress, Progress
from rtvault.pinnacle.grammar import PObject, parse_file
from rtvault.pinnacle.model import InstitutionEntry, PatientRecord, ScanResult
from rtvault.pinnacle.patient import integer, read_patient, text

INSTITUTION_DIR = re.compile(r"Institution_(\d+)\Z")
MOUNT_DIR = re.compile(r"Mount_(\d+)\Z")
PATIENT_DIR = re.compile(r"Patient_(\d+)\Z")


@dataclass
class _Plan:
    """What to read: patient directories and Institution entries, keyed by relative path."""

    root: Path
    directories: dict[str, Path] = field(default_factory=dict)
    entries: dict[str, InstitutionEntry] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)


def _number(name: str) -> int:
    digits = re.sub(r"\D", "", name)
    return int(digits) if digits else -1


def _sorted_dirs(parent: Path, pattern: re.Pattern[str]) -> list[Path]:
    try:
        found = [d for d in parent.iterdir() if pattern.match(d.name) and d.is_dir() and not d.is_symlink()]
    except OSError as error:
        raise InputError(f"cannot list {parent}: {error.strerror}") from error
    return sorted(found, key=lambda d: _number(d.name))


def normalise_patient_path(value: str) -> str:
    """`/PrimaryPatientData/NewPatients/Institution_1/Mount_0/Patient_7/` → `Institution_1/Mount_0/Patient_7`."""
    value = value.strip().replace("\\", "/").strip("/")
    start = value.find("Institution_")
    return value[start:] if start > 0 else value


def parse_institution_entries(institution: PObject) -> list[InstitutionEntry]:
    lite_list = institution.child("PatientLiteList")
    entries = []
    for lite in lite_list.items_list() if lite_list else []:
        if not isinstance(lite, PObject):
            continue
        parts = (text(lite, "FormattedDescription").split("&&") + [""] * 6)[:6]
        entries.append(InstitutionEntry(
            patient_id=integer(lite, "PatientID"),
            path=normalise_patient_path(text(lite, "PatientPath")),
            last_name=parts[0], first_name=parts[1], middle_name=parts[2], mrn=parts[3],
            radiation_oncologist=parts[4], last_modified=parts[5],
        ))
    return entries


def _institution_file(root: Path, inst_dir: Path, single: bool) -> Path | None:
    """`Institution_N/Institution`, or a root-level `Institution` naming that institution (export layout)."""
    inside = inst_dir / "Institution"
    if inside.is_file():
        return inside
    beside = root / "Institution"
    if beside.is_file():
        declared = text(parse_file(beside, "Institution").root, "InstitutionPath")
        if declared == inst_dir.name or (not declared and single):
            return beside
    return None


def _add_institution(plan: _Plan, inst_dir: Path, single: bool) -> None:
    info_file = _institution_file(plan.root, inst_dir, single)
    if info_file is None:
        plan.warnings.append(Problem(inst_dir.name, "no Institution file: patients found from directories only"))
    else:
        rel = info_file.relative_to(plan.root).as_posix()
        parsed = parse_file(info_file, rel)
        plan.warnings.extend(parsed.problems)
        for entry in parse_institution_entries(parsed.root):
            if entry.path.startswith(f"{inst_dir.name}/"):
                plan.entries[entry.path] = entry
    for mount in _sorted_dirs(inst_dir, MOUNT_DIR):
        for patient in _sorted_dirs(mount, PATIENT_DIR):
            plan.directories[patient.relative_to(plan.root).as_posix()] = patient


def _plan_for(path: Path) -> _Plan:
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if not path.is_dir():
        raise InputError(f"{path} is not a directory: give a Pinnacle root, an Institution_N or a Patient_N")
    if PATIENT_DIR.match(path.name):
        return _plan_for_patient(path)
    if INSTITUTION_DIR.match(path.name):
        plan = _Plan(path.parent)
        _add_institution(plan, path, single=True)
        return plan
    plan = _Plan(path)
    institutions = _sorted_dirs(path, INSTITUTION_DIR)
    for inst_dir in institutions:
        _add_institution(plan, inst_dir, single=len(institutions) == 1)
    for bare in _sorted_dirs(path, PATIENT_DIR):  # very old layout: Patient_N with no Institution
        plan.directories[bare.name] = bare
    if not institutions and not plan.directories:
        raise InputError(f"{path} holds no Pinnacle database: no Institution_N or Patient_N directory in it")
    return plan


def _plan_for_patient(path: Path) -> _Plan:
    mount, institution = path.parent, path.parent.parent
    if MOUNT_DIR.match(mount.name) and INSTITUTION_DIR.match(institution.name):
        plan = _Plan(institution.parent)
    else:
        plan = _Plan(path.parent)
    plan.directories[path.relative_to(plan.root).as_posix()] = path
    return plan


def _sort_key(rel: str) -> list[int]:
    return [_number(part) for part in rel.split("/")]


def _fill_from_entry(record: PatientRecord, entry: InstitutionEntry) -> None:
    """A patient whose Patient file is missing or unreadable keeps the identity the Institution knows."""
    for attr in ("last_name", "first_name", "middle_name", "mrn", "radiation_oncologist"):
        if not getattr(record, attr):
            setattr(record, attr, getattr(entry, attr))
    if record.patient_id is None:
        record.patient_id = entry.patient_id


def scan(path: Path, progress: Progress | None = None) -> ScanResult:
    """Read a Pinnacle root, an `Institution_N` or a `Patient_N` directory; never writes anything."""
    progress = progress or NoProgress()
    plan = _plan_for(Path(path))
    result = ScanResult(root=str(plan.root), warnings=list(plan.warnings))
    progress.begin("Reading patients", len(plan.directories))
    try:
        for rel in sorted(plan.directories, key=_sort_key):
            record = read_patient(plan.directories[rel], rel)
            entry = plan.entries.get(rel)
            record.listed_in_institution = entry is not None
            if entry is not None:
                _fill_from_entry(record, entry)
            elif INSTITUTION_DIR.match(rel.split("/")[0]) and plan.entries:
                record.warnings.append(Problem(rel, "not listed in the Institution file"))
            result.patients.append(record)
            result.warnings.extend(record.warnings)
            progress.advance()
    finally:
        progress.end()
    result.warnings.extend(_missing_directories(plan))
    return result


def _missing_directories(plan: _Plan) -> list[Problem]:
    problems = []
    for rel, entry in sorted(plan.entries.items(), key=lambda kv: _sort_key(kv[0])):
        if rel not in plan.directories:
            who = ", ".join(x for x in (entry.last_name, entry.first_name) if x) or "unnamed"
            problems.append(Problem(
                rel, f"listed in the Institution file ({who}, MRN {entry.mrn or '?'}) but the directory is missing",
            ))
    return problems
