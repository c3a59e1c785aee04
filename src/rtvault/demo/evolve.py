"""`evolve_database`: play one clinical day on a generated database.

A day edits a few plans under treatment (plan.Trial, a recomputed dose, plan.PlanInfo, autosave, logs and
the Patient file), admits a new patient, deletes one patient finished long ago, and rewrites the Institution
file; every touched file gets a time of that day. The random choices are seeded by a digest of the
Institution file and the day number, so the same database and day give the same result, and nothing that
is not a Pinnacle file is ever added to the database.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np

from rtvault.demo import clock, files
from rtvault.demo.generate import Tally, settle_directory_mtimes, write_institution, write_patient
from rtvault.demo.physics import evolve_physics, is_physics_tree
from rtvault.demo.planner import ACTIVE_DAYS, plan_patient
from rtvault.demo.spec import INSTITUTION_DIR, MOUNT
from rtvault.demo.syntax import make_stamp, restamp
from rtvault.errors import InputError
from rtvault.events import NoProgress, Progress

_LITE_RE = re.compile(
    r'  PatientLite =\{\n    PatientID = (\d+);\n    PatientPath = "([^"]*)";\n    MountPoint = "[^"]*";\n'
    r'    FormattedDescription = "([^"]*)";\n    DirSize = ([0-9.eE+-]+);\n  \};\n'
)
_WEIGHT_RE = re.compile(r"^(      Weight = )([0-9.eE+-]+);$", re.M)
_MU_RE = re.compile(r"^(        NormalizedDose = )([0-9.eE+-]+);$", re.M)
_PLANS_TO_EDIT = 3
_MIB = 1024 * 1024


@dataclass
class EvolveResult:
    """What one day changed; paths are files relative to the database root."""

    day: int
    edited: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    added_patients: list[str] = field(default_factory=list)
    deleted_patients: list[str] = field(default_factory=list)
    recommissioned: list[str] = field(default_factory=list)  # a physics tree's machines given a new version

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {"day": self.day, "edited": self.edited, "added": self.added,
                                   "deleted": self.deleted}
        if self.recommissioned:  # a physics tree's day
            data["recommissioned"] = self.recommissioned
        return data


@dataclass
class _Day:
    """The state of one evolution: the database, its Institution entries and the day's clock."""

    root: Path
    number: int
    rng: random.Random
    seed_text: str
    entries: list[files.LiteEntry]
    moments: list[datetime] = field(default_factory=list)

    @property
    def today(self) -> date:
        return clock.working_day(self.number)

    def moment(self) -> datetime:
        when = clock.at(self.today, clock.office_minute(self.rng.random()), self.rng.randrange(60))
        self.moments.append(when)
        return when

    def write(self, path: Path, data: bytes, when: datetime) -> None:
        path.write_bytes(data)
        clock.set_mtime(path, when)


def _institution_file(root: Path) -> Path:
    path = root / INSTITUTION_DIR / "Institution"
    if not root.is_dir():
        raise InputError(f"{root} is not a directory.")
    if not path.is_file() or not (root / INSTITUTION_DIR / MOUNT).is_dir():
        raise InputError(
            f"{root} is not a generated Pinnacle database: {INSTITUTION_DIR}/Institution or {MOUNT} is missing."
        )
    return path


def parse_entries(data: bytes, source: Path) -> list[files.LiteEntry]:
    """The PatientLite entries of a generated Institution file; refuses any other Institution file, so that a
    real database is never evolved by mistake."""
    text = data.decode("latin-1")
    if "PatientLiteList ={" not in text:
        raise InputError(f"{source} is not the Institution file of a generated database: it has no PatientLiteList.")
    if f'\nName = "{files.INSTITUTION_NAME}";\n' not in text:
        raise InputError(f"{source} was not written by `rtvault demo generate`: refusing to change a real database.")
    return [
        files.LiteEntry(int(m.group(1)), m.group(2), m.group(3), float(m.group(4))) for m in _LITE_RE.finditer(text)
    ]


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for current, _, names in os.walk(root):
        for name in names:
            stat = os.stat(os.path.join(current, name))
            relative = Path(current, name).relative_to(root).as_posix()
            found[relative] = (stat.st_size, stat.st_mtime_ns)
    return found


def _last_modified(entry: files.LiteEntry) -> str:
    return entry.formatted.rsplit("&&", 1)[-1]


def _has_unlocked_plan(root: Path, entry: files.LiteEntry) -> bool:
    patient = root / entry.path / "Patient"
    return patient.is_file() and b"PlanIsLocked = 0;" in patient.read_bytes()


def _delete_finished(day: _Day) -> files.LiteEntry | None:
    """Delete the patient finished longest ago, if one finished more than ACTIVE_DAYS working days ago."""
    limit = clock.text(clock.at(clock.working_day(day.number - ACTIVE_DAYS), 0))
    finished = [
        e
        for e in day.entries
        if _last_modified(e) < limit and (day.root / e.path).is_dir() and not _has_unlocked_plan(day.root, e)
    ]
    if not finished:
        return None
    victim = min(finished, key=lambda e: (_last_modified(e), e.patient_id))
    shutil.rmtree(day.root / victim.path)
    day.entries.remove(victim)
    return victim


def _unlocked_plans(root: Path, entry: files.LiteEntry) -> list[int]:
    patient = root / entry.path / "Patient"
    if not patient.is_file():
        return []
    text = patient.read_bytes().decode("latin-1")
    blocks = re.findall(r"  Plan =\{\n    PlanID = (\d+);\n(.*?)\n  \};\n", text, re.S)
    return [int(plan_id) for plan_id, body in blocks if "PlanIsLocked = 0;" in body]


def _reweight(trial: str, rng: random.Random) -> str:
    factor = rng.uniform(0.85, 1.15)

    def weight(match: re.Match[str]) -> str:
        return f"{match.group(1)}{round(float(match.group(2)) * rng.uniform(0.9, 1.1), 2):g};"

    def units(match: re.Match[str]) -> str:
        return f"{match.group(1)}{round(float(match.group(2)) * factor, 1):g};"

    return _MU_RE.sub(units, _WEIGHT_RE.sub(weight, trial))


def _stamp_times(text: str, when: datetime) -> str:
    stamp = clock.text(when)
    text = re.sub(r'WriteTimeStamp = "[^"]*";', f'WriteTimeStamp = "{stamp}";', text)
    return re.sub(r'LastModifiedTimeStamp = "[^"]+";', f'LastModifiedTimeStamp = "{stamp}";', text)


def _recompute_dose(day: _Day, plan_dir: Path, when: datetime) -> None:
    doses = sorted(plan_dir.glob("plan.Trial.binary.*"))
    if not doses:
        return
    path = day.rng.choice(doses)
    data = path.read_bytes()
    if len(data) % 4:
        return
    dose = np.frombuffer(data, dtype=">f4") * np.float32(day.rng.uniform(0.9, 1.1))
    day.write(path, dose.astype(">f4").tobytes(), when)


def _append_log(day: _Day, path: Path, line: str, when: datetime) -> None:
    old = path.read_bytes() if path.is_file() else b""
    day.write(path, old + line.encode("latin-1") + b"\n", when)


def _edit_plan(day: _Day, entry: files.LiteEntry, plan_id: int) -> bool:
    """Re-plan one plan; returns whether it was locked (approved) at the end of the session."""
    plan_dir = day.root / entry.path / f"Plan_{plan_id}"
    trial_path = plan_dir / "plan.Trial"
    if not trial_path.is_file():
        return False
    when = day.moment()
    trial = _stamp_times(_reweight(trial_path.read_bytes().decode("latin-1"), day.rng), when).encode("latin-1")
    day.write(trial_path, trial, when)
    _recompute_dose(day, plan_dir, when)
    day.write(plan_dir / ".auto.plan.Trial", trial, files.later(when, 2))
    _append_log(day, plan_dir / "plan.Transcript", f"// {clock.text(when)} ComputeAll = 1;", files.later(when, 1))
    if day.rng.random() < 0.3:
        warning = f"{when:%a %b %d %H:%M:%S %Y}: Warning: beam weights changed, dose recomputed"
        _append_log(day, plan_dir / "plan.ErrorLog", warning, files.later(when, 1))
    lock = day.rng.random() < 0.4
    info_path = plan_dir / "plan.PlanInfo"
    if info_path.is_file():
        info = _stamp_times(info_path.read_bytes().decode("latin-1"), when)
        info = info.replace("PlanIsLocked = 0;", "PlanIsLocked = 1;") if lock else info
        day.write(info_path, restamp(info.encode("latin-1"), make_stamp(day.rng)), files.later(when, 3))
    return lock


def _update_patient_file(day: _Day, entry: files.LiteEntry, edits: dict[int, bool], when: datetime) -> None:
    path = day.root / entry.path / "Patient"
    old = path.read_bytes()
    text = old.decode("latin-1")
    for plan_id, lock in edits.items():
        pattern = re.compile(r"  Plan =\{\n    PlanID = " + str(plan_id) + r";\n.*?\n  \};\n", re.S)

        def edit(match: re.Match[str], lock: bool = lock) -> str:
            block = _stamp_times(match.group(0), when)
            return block.replace("PlanIsLocked = 0;", "PlanIsLocked = 1;") if lock else block

        text = pattern.sub(edit, text, count=1)
    head, _, tail = text.rpartition("\nObjectVersion ={")
    text = f"{head}\nObjectVersion ={{{_stamp_times(tail, when)}" if head else text
    if day.rng.random() < 0.5:
        day.write(path.with_name("Patient~"), old, when)
    day.write(path, restamp(text.encode("latin-1"), make_stamp(day.rng)), files.later(when, 4))


def _dir_size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / _MIB


def _edit_plans(day: _Day) -> None:
    candidates = [(e, plan_id) for e in day.entries for plan_id in _unlocked_plans(day.root, e)]
    chosen = day.rng.sample(candidates, min(_PLANS_TO_EDIT, len(candidates)))
    for entry in dict.fromkeys(e for e, _ in chosen):
        edits = {plan_id: _edit_plan(day, entry, plan_id) for e, plan_id in chosen if e is entry}
        when = files.later(max(day.moments) if day.moments else day.moment(), 5)
        _update_patient_file(day, entry, edits, when)
        fields = entry.formatted.split("&&")[:-1]
        updated = files.LiteEntry(
            entry.patient_id, entry.path, "&&".join([*fields, clock.text(when)]), _dir_size_mb(day.root / entry.path)
        )
        day.entries[day.entries.index(entry)] = updated


def _image_mb(snapshot: dict[str, tuple[int, int]]) -> float:
    sizes = sorted(size for path, (size, _) in snapshot.items() if path.endswith(".img"))
    return sizes[len(sizes) // 2] / 1_000_000 if sizes else 4.0


def _admit_patient(day: _Day, image_mb: float) -> str:
    mount = day.root / INSTITUTION_DIR / MOUNT
    on_disk = [int(p.name.split("_", 1)[1]) for p in mount.glob("Patient_*") if p.name.split("_", 1)[1].isdigit()]
    number = max([*on_disk, *(e.patient_id for e in day.entries), 0]) + 1 + day.rng.randint(0, 2)
    used = {e.formatted.split("&&")[3] for e in day.entries if e.formatted.count("&&") >= 5}
    spec = plan_patient(day.rng, number, day.number, used, max(image_mb, 0.01), today=day.number)
    write_patient(Tally(day.root), spec, f"{day.seed_text}:patient:{number}")
    day.moments.append(spec.modified)
    day.entries.append(files.lite_entry(spec))
    return spec.path


def evolve_database(root: Path, day: int, progress: Progress | None = None) -> EvolveResult:
    """Apply the clinical working day `day` (>= 1) to the generated database at `root`; to a generated physics
    tree (`rtvault demo physics`), recommission one of its machines."""
    if day < 1:
        raise InputError(f"--day must be 1 or more, not {day}.")
    if is_physics_tree(root) and not (root / INSTITUTION_DIR).exists():
        done = evolve_physics(root, day)
        return EvolveResult(day, edited=done.edited, recommissioned=[done.machine])
    institution = _institution_file(root)
    data = institution.read_bytes()
    seed_text = hashlib.sha256(data + b"\0day=" + str(day).encode()).hexdigest()
    state = _Day(root, day, random.Random(seed_text), seed_text, parse_entries(data, institution))
    progress = progress or NoProgress()
    before = _snapshot(root)
    result = EvolveResult(day)
    progress.begin(f"Day {day}", 4)
    try:
        deleted = _delete_finished(state)
        result.deleted_patients = [deleted.path] if deleted else []
        progress.advance()
        _edit_plans(state)
        progress.advance()
        result.added_patients = [_admit_patient(state, _image_mb(before))]
        progress.advance()
        written = files.later(max(state.moments), 10)
        write_institution(Tally(root), state.entries, written, state.rng)
        settle_directory_mtimes(root)
        progress.advance()
    finally:
        progress.end()
    after = _snapshot(root)
    result.edited = sorted(p for p in before.keys() & after.keys() if before[p] != after[p])
    result.added = sorted(after.keys() - before.keys())
    result.deleted = sorted(before.keys() - after.keys())
    return result
