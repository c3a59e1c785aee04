"""`generate_database`: write a complete synthetic Pinnacle database, deterministically from a seed."""

from __future__ import annotations

import os
import random
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from rtvault.demo import clock, files, scanner
from rtvault.demo.machines import machines_bytes
from rtvault.demo.planner import history_starts, patient_numbers, plan_patient, with_every_feature
from rtvault.demo.roi import roi_bytes
from rtvault.demo.spec import INSTITUTION_DIR, GeneratedDatabase, PatientSpec, PlanSpec
from rtvault.demo.syntax import make_stamp
from rtvault.demo.trial import trial_file
from rtvault.demo.voxels import beam_dose, ct_volume
from rtvault.errors import InputError
from rtvault.events import NoProgress, Progress

MAX_PATIENTS = 100_000
MAX_IMAGE_MB = 2_000.0
_MIB = 1024 * 1024


class Tally:
    """Writes files with their mtime and counts what was written."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = 0
        self.bytes = 0

    def write(self, relative: str, data: bytes, moment: datetime) -> None:
        path = self.root / relative
        path.write_bytes(data)
        clock.set_mtime(path, moment)
        self.files += 1
        self.bytes += len(data)


def patient_seed(seed: int | str, number: int) -> str:
    """The per-patient seed text: a patient's bytes do not depend on the other patients."""
    return f"{seed}:patient:{number}"


def numpy_rng(seed_text: str) -> np.random.Generator:
    return np.random.default_rng(list(seed_text.encode("utf-8")))


def _write_image_sets(tally: Tally, spec: PatientSpec, rng: random.Random, np_rng: np.random.Generator) -> None:
    for image in spec.image_sets:
        base = f"{spec.path}/{image.name}"
        volume = ct_volume(np_rng, spec.site, image)
        tally.write(f"{base}.img", volume, image.scanned)
        later = image.scanned + timedelta(seconds=40)
        if spec.scanner_slices:
            (tally.root / f"{base}.DICOM").mkdir()
            for name, data in scanner.slice_files(spec, image, volume):
                tally.write(f"{base}.DICOM/{name}", data, image.scanned)
        tally.write(f"{base}.header", files.header_bytes(spec, image), later)
        tally.write(f"{base}.ImageInfo", files.image_info_bytes(image, make_stamp(rng)), later)
        tally.write(f"{base}.ImageSet", files.image_set_bytes(spec, image, make_stamp(rng)), later)


def write_plan(tally: Tally, spec: PatientSpec, plan: PlanSpec, rng: random.Random) -> None:
    base = f"{spec.path}/{plan.directory}"
    (tally.root / base).mkdir()
    trial, doses = trial_file(spec, plan)
    when = plan.modified
    tally.write(f"{base}/plan.Pinnacle.Machines", machines_bytes(), plan.created)
    tally.write(f"{base}/plan.PatientSetup", files.patient_setup_bytes(spec, plan), plan.created)
    tally.write(f"{base}/plan.Points", files.points_bytes(spec, plan, make_stamp(rng)), plan.created)
    tally.write(f"{base}/plan.roi", roi_bytes(spec, plan, f"1.3.46.670589.13.{spec.number}"), when)
    for dose in doses:
        tally.write(f"{base}/{dose.file_name}", beam_dose(dose.trial, dose.beam, spec.site.body_radii), when)
    tally.write(f"{base}/plan.Trial", trial, when)
    tally.write(f"{base}/plan.PlanInfo", files.plan_info_bytes(spec, plan, make_stamp(rng)), when)
    _write_transient(tally, base, plan, trial)


def _write_transient(tally: Tally, base: str, plan: PlanSpec, trial: bytes) -> None:
    if plan.autosave:
        tally.write(f"{base}/.auto.plan.Trial", trial, files.later(plan.modified, 2))
    if plan.error_log:
        tally.write(f"{base}/plan.ErrorLog", files.error_log_bytes(plan), files.later(plan.modified, 1))
    if plan.transcript:
        tally.write(
            f"{base}/plan.Transcript", files.transcript_bytes(plan, plan.modified), files.later(plan.modified, 1)
        )


def write_patient(tally: Tally, spec: PatientSpec, seed_text: str) -> None:
    """Write one patient directory; sets `spec.dir_size_mb` from what was written."""
    rng = random.Random(seed_text)
    (tally.root / spec.path).mkdir(parents=True)
    before = tally.bytes
    _write_image_sets(tally, spec, rng, numpy_rng(seed_text))
    for plan in spec.plans:
        write_plan(tally, spec, plan, rng)
    if spec.editor_backup:
        tally.write(f"{spec.path}/Patient~", files.patient_bytes(spec, spec.created, make_stamp(rng)), spec.created)
    spec.dir_size_mb = (tally.bytes - before) / _MIB
    tally.write(f"{spec.path}/Patient", files.patient_bytes(spec, spec.modified, make_stamp(rng)), spec.modified)


def settle_directory_mtimes(root: Path) -> None:
    """Give every directory the mtime of its newest entry, bottom-up, so mtimes never say "now"."""
    for current, dirs, names in os.walk(root, topdown=False):
        times = [os.stat(os.path.join(current, n)).st_mtime_ns for n in [*dirs, *names]]
        if times:
            newest = max(times)
            os.utime(current, ns=(newest, newest))


def write_institution(tally: Tally, entries: list[files.LiteEntry], written: datetime, rng: random.Random) -> None:
    tally.write(f"{INSTITUTION_DIR}/Institution", files.institution_bytes(entries, written, make_stamp(rng)), written)


def _check(out: Path, patients: int, seed: int, image_mb: float) -> None:
    if not 1 <= patients <= MAX_PATIENTS:
        raise InputError(f"--patients must be between 1 and {MAX_PATIENTS}, not {patients}.")
    if seed < 0:
        raise InputError(f"--seed must be zero or positive, not {seed}.")
    if not 0 < image_mb <= MAX_IMAGE_MB:
        raise InputError(f"--image-mb must be above 0 and at most {MAX_IMAGE_MB:g}, not {image_mb:g}.")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a directory.")
    if out.is_dir() and any(out.iterdir()):
        raise InputError(f"{out} already exists and is not empty: choose a new directory.")


def generate_database(
    out: Path, patients: int, seed: int, image_mb: float = 4.0, progress: Progress | None = None
) -> GeneratedDatabase:
    """Write a synthetic Pinnacle database of `patients` patients at `out` (which must be new or empty).

    Same arguments, same bytes and mtimes. Returns the manifest of what was written."""
    _check(out, patients, seed, image_mb)
    progress = progress or NoProgress()
    started = time.perf_counter()
    rng = random.Random(seed)
    tally = Tally(out)
    out.mkdir(parents=True, exist_ok=True)
    specs: list[PatientSpec] = []
    used_mrns: set[str] = set()
    progress.begin("Generating patients", patients)
    try:
        for number, start in zip(patient_numbers(rng, patients), history_starts(rng, patients), strict=True):
            spec = plan_patient(rng, number, start, used_mrns, image_mb, index=len(specs))
            if len(specs) == patients - 1:
                spec = with_every_feature(spec)
            write_patient(tally, spec, patient_seed(seed, number))
            specs.append(spec)
            progress.advance()
    finally:
        progress.end()
    written = clock.at(clock.working_day(0), clock.office_minute(0.97))
    write_institution(tally, [files.lite_entry(s) for s in specs], max(written, *(s.modified for s in specs)), rng)
    settle_directory_mtimes(out)
    return GeneratedDatabase(out, seed, specs, tally.files, tally.bytes, time.perf_counter() - started)
