"""Per-patient metadata: identity, image sets, plans, size, file count, last modification."""

from __future__ import annotations

import errno
import os
import re
from datetime import UTC, datetime
from pathlib import Path

from rtvault.errors import Problem
from rtvault.pinnacle.dates import DateProblem, normalise_date, normalise_datetime
from rtvault.pinnacle.dialects import parse_header
from rtvault.pinnacle.grammar import PObject, parse_bytes, read_regular
from rtvault.pinnacle.model import ImageSetInfo, PatientRecord, PlanInfo
from rtvault.pinnacle.physics import PLAN_MACHINES, plan_machine_names
from rtvault.pinnacle.treatment_fields import integer, text
from rtvault.utc import iso

PHYSICIAN_KEYS = {
    "primary": "PrimaryPhysician",
    "attending": "AttendingPhysician",
    "referring": "ReferringPhysician",
    "oncologist": "Oncologist",
    "radiologist": "Radiologist",
}
_IMAGESET_HEADER = re.compile(r"(ImageSet_(\d+))\.header\Z")
_PLAN_DIR = re.compile(r"Plan_(\d+)\Z")
# An ImageName is joined to the patient directory: only a plain, short file name may be (never ../ or /abs).
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\Z")


def iso_mtime(timestamp: float) -> str:
    return iso(datetime.fromtimestamp(timestamp, UTC))


def _read(path: Path, name: str, warnings: list[Problem]) -> bytes | None:
    try:
        return read_regular(path)
    except OSError as error:
        why = "a symbolic link: not followed" if error.errno == errno.ELOOP else (error.strerror or str(error))
        warnings.append(Problem(name, f"cannot read: {why}"))
        return None


def _walk_sizes(directory: Path, rel: str, record: PatientRecord) -> dict[str, int]:
    """Total size, file count and newest mtime of a patient directory; never follows symlinks."""
    sizes: dict[str, int] = {}
    newest = 0.0

    def on_error(error: OSError) -> None:
        record.warnings.append(Problem(rel, f"cannot list {error.filename}: {error.strerror}"))

    for dirpath, _dirs, files in os.walk(directory, onerror=on_error):
        for name in files:
            full = os.path.join(dirpath, name)
            try:
                st = os.lstat(full)
            except OSError as error:
                record.warnings.append(Problem(rel, f"cannot stat {name}: {error.strerror}"))
                continue
            sizes[os.path.relpath(full, directory)] = st.st_size
            newest = max(newest, st.st_mtime)
    record.size_bytes = sum(sizes.values())
    record.file_count = len(sizes)
    record.last_modified = iso_mtime(newest) if sizes else None
    return sizes


def _date_field(value: str, what: str, name: str, warnings: list[Problem], with_time: bool = False) -> str | None:
    try:
        return normalise_datetime(value) if with_time else normalise_date(value)
    except DateProblem as problem:
        warnings.append(Problem(name, f"{what}: {problem}"))
        return None


def _identity(record: PatientRecord, patient: PObject, name: str) -> None:
    record.patient_id = integer(patient, "PatientID")
    record.last_name = text(patient, "LastName")
    record.first_name = text(patient, "FirstName")
    record.middle_name = text(patient, "MiddleName")
    record.mrn = text(patient, "MedicalRecordNumber")
    record.birth_date = _date_field(text(patient, "DateOfBirth"), "DateOfBirth", name, record.warnings)
    record.gender = text(patient, "Gender")
    record.radiation_oncologist = text(patient, "RadiationOncologist")
    record.physicians = {role: v for role, key in PHYSICIAN_KEYS.items() if (v := text(patient, key))}
    record.diagnosis = text(patient, "Diagnosis")
    record.comment = text(patient, "Comment")


def _list_items(patient: PObject, list_key: str) -> list[PObject]:
    found = patient.child(list_key)
    return [v for v in found.items_list() if isinstance(v, PObject)] if found else []


def _header_dims(directory: Path, image_name: str, rel: str, warnings: list[Problem]):
    path = directory / f"{image_name}.header"
    if not _SAFE_NAME.match(image_name) or not os.path.lexists(path):
        return None, None
    data = _read(path, f"{rel}/{path.name}", warnings)
    if data is None:
        return None, None
    parsed = parse_header(data, f"{rel}/{path.name}")
    warnings.extend(parsed.problems)
    dims = {axis: integer(parsed.root, f"{axis}_dim") for axis in "xyz"}
    pix = {axis: parsed.root.get(f"{axis}_pixdim") for axis in "xyz"}
    dimensions = {k: v for k, v in dims.items() if v is not None} if any(dims.values()) else None
    voxel = {k: float(v) for k, v in pix.items() if isinstance(v, int | float)} or None
    return dimensions, voxel


def _image_name(item: PObject, index: int, record: PatientRecord) -> str:
    name = text(item, "ImageName")
    image_id = integer(item, "ImageSetID")
    fallback = f"ImageSet_{image_id}" if image_id is not None else f"(unnamed image set #{index})"
    if not name:
        return fallback
    if not _SAFE_NAME.match(name):
        record.warnings.append(Problem(f"{record.path}/Patient", f"unusable ImageName {name[:60]!r}: not a file name"))
        return fallback
    return name


def _image_sets(record: PatientRecord, patient: PObject, directory: Path, sizes: dict[str, int]) -> None:
    items = _list_items(patient, "ImageSetList")
    listed = {_image_name(item, index, record): item for index, item in enumerate(items)}
    on_disk = {m.group(1): int(m.group(2)) for f in sizes if (m := _IMAGESET_HEADER.match(f))}
    for name in sorted(set(listed) | set(on_disk), key=lambda n: (len(n), n)):
        item = listed.get(name)
        if item is None:
            record.warnings.append(Problem(f"{record.path}/Patient", f"{name} is on disk but not in ImageSetList"))
        dimensions, voxel = _header_dims(directory, name, record.path, record.warnings)
        scan = _date_field(text(item, "ScanTimeFromScanner"), f"{name} scan time",
                           f"{record.path}/Patient", record.warnings, with_time=True)
        record.image_sets.append(ImageSetInfo(
            id=integer(item, "ImageSetID") if item else on_disk.get(name),
            name=name,
            modality=text(item, "Modality"),
            series_description=text(item, "SeriesDescription"),
            scan_date=scan,
            number_of_images=integer(item, "NumberOfImages"),
            dimensions=dimensions,
            voxel_size_cm=voxel,
            bytes=sum(size for f, size in sizes.items() if f.startswith(f"{name}.")),
        ))


def _plans(record: PatientRecord, patient: PObject, directory: Path) -> None:
    listed = _list_items(patient, "PlanList")
    seen: set[int] = set()
    for item in listed:
        plan_id = integer(item, "PlanID")
        if plan_id is not None:
            seen.add(plan_id)
        record.plans.append(PlanInfo(
            id=plan_id,
            name=text(item, "PlanName"),
            physicist=text(item, "Physicist"),
            dosimetrist=text(item, "Dosimetrist"),
            locked=integer(item, "PlanIsLocked") == 1,
            directory_present=plan_id is not None and (directory / f"Plan_{plan_id}").is_dir(),
        ))
    try:
        extra = sorted(int(m.group(1)) for d in directory.iterdir() if (m := _PLAN_DIR.match(d.name)) and d.is_dir())
    except OSError:
        extra = []
    for plan_id in (p for p in extra if p not in seen):
        record.warnings.append(Problem(f"{record.path}/Patient", f"Plan_{plan_id} is on disk but not in PlanList"))
        record.plans.append(PlanInfo(plan_id, "", "", "", False, True))


def _machines(record: PatientRecord, directory: Path) -> None:
    """The machines its plans name (each plan's plan.Pinnacle.Machines), sorted."""
    names: set[str] = set()
    for plan in record.plans:
        path = directory / f"Plan_{plan.id}" / PLAN_MACHINES
        if not plan.directory_present or not os.path.lexists(path):
            continue
        name = f"{record.path}/Plan_{plan.id}/{PLAN_MACHINES}"
        data = _read(path, name, record.warnings)
        if data is not None:
            found, warnings = plan_machine_names(data, name)
            names.update(found)
            record.warnings.extend(warnings)
    record.machines = sorted(names)


def read_patient(directory: Path, rel: str) -> PatientRecord:
    """Everything the reader can learn about one `Patient_N` directory; problems become warnings."""
    record = PatientRecord(path=rel)
    sizes = _walk_sizes(directory, rel, record)
    patient_file = directory / "Patient"
    name = f"{rel}/Patient"
    data = _read(patient_file, name, record.warnings) if os.path.lexists(patient_file) else None
    if data is None and not os.path.lexists(patient_file):
        record.warnings.append(Problem(name, "missing: identity unknown, files are still listed"))
    patient = PObject()
    if data is not None:
        parsed = parse_bytes(data, name)
        record.warnings.extend(parsed.problems)
        patient = parsed.root
        _identity(record, patient, name)
    _image_sets(record, patient, directory, sizes)
    _plans(record, patient, directory)
    _machines(record, directory)
    return record


def record_from_patient_file(data: bytes | None, rel: str) -> PatientRecord:
    """Identity and plans from the bytes of a `Patient` file alone (inside an archive: no directory to look at)."""
    record = PatientRecord(path=rel)
    name = f"{rel}/Patient"
    if data is None:
        record.warnings.append(Problem(name, "missing: identity unknown"))
        return record
    parsed = parse_bytes(data, name)
    record.warnings.extend(parsed.problems)
    _identity(record, parsed.root, name)
    for item in _list_items(parsed.root, "PlanList"):
        record.plans.append(PlanInfo(integer(item, "PlanID"), text(item, "PlanName"), text(item, "Physicist"),
                                     text(item, "Dosimetrist"), integer(item, "PlanIsLocked") == 1, True))
    for index, item in enumerate(_list_items(parsed.root, "ImageSetList")):
        record.image_sets.append(ImageSetInfo(
            integer(item, "ImageSetID"), _image_name(item, index, record), text(item, "Modality"),
            text(item, "SeriesDescription"), None, integer(item, "NumberOfImages"), None, None, 0))
    return record
