"""The synthetic Pinnacle database generator: determinism, syntax, realism, reader round trip, CLI."""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import subprocess
import sys
import zlib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rtvault.demo import GeneratedDatabase, generate_database
from rtvault.demo.names import make_identity
from rtvault.demo.planner import patient_numbers
from rtvault.errors import InputError

SUMMARY_KEYS = {"out", "patients", "files", "bytes", "seed", "duration_s"}


def _patient_dirs(db: GeneratedDatabase) -> list[Path]:
    return sorted((db.out / "Institution_1" / "Mount_0").glob("Patient_*"))


# --- determinism -------------------------------------------------------------------------------------------


def test_same_seed_same_bytes_and_mtimes(tmp_path: Path, state_of) -> None:
    first = generate_database(tmp_path / "a", patients=3, seed=11, image_mb=0.1)
    second = generate_database(tmp_path / "b", patients=3, seed=11, image_mb=0.1)
    assert state_of(first.out) == state_of(second.out)
    assert (first.files, first.bytes) == (second.files, second.bytes)


def test_different_seed_different_database(tmp_path: Path, state_of) -> None:
    first = generate_database(tmp_path / "a", patients=3, seed=11, image_mb=0.1)
    other = generate_database(tmp_path / "b", patients=3, seed=12, image_mb=0.1)
    assert state_of(first.out) != state_of(other.out)
    assert [p.identity.mrn for p in first.patients] != [p.identity.mrn for p in other.patients]


def test_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        generate_database(tmp_path, patients=1, seed=1, image_mb=0.1)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize(("patients", "image_mb"), [(0, 1.0), (1, 0.0), (1, -2.0)])
def test_rejects_bad_arguments(tmp_path: Path, patients: int, image_mb: float) -> None:
    with pytest.raises(InputError):
        generate_database(tmp_path / "db", patients=patients, seed=1, image_mb=image_mb)


def test_mtimes_follow_the_clinical_calendar(small_db: GeneratedDatabase) -> None:
    end_of_day_zero = datetime(2026, 1, 5, 23, 59, 59, tzinfo=UTC).timestamp()
    start = datetime(2020, 1, 1, tzinfo=UTC).timestamp()
    mtimes = [p.stat().st_mtime for p in small_db.out.rglob("*")]
    assert mtimes and all(start <= m <= end_of_day_zero for m in mtimes)
    assert all(m == int(m) for m in mtimes)


# --- syntax ------------------------------------------------------------------------------------------------


def test_every_text_file_parses_without_problems(small_db: GeneratedDatabase, problems_in) -> None:
    assert problems_in(small_db.out) == {}


def test_latin1_accents_round_trip(small_db: GeneratedDatabase, parse) -> None:
    institution = small_db.out / "Institution_1" / "Institution"
    assert b"Saint-\xc9tienne" in institution.read_bytes()  # É as one Latin-1 byte, never UTF-8
    assert parse(institution).root.get("City") == "Saint-Étienne"
    for spec in small_db.patients:
        root = parse(small_db.out / spec.path / "Patient").root
        who = spec.identity
        read = [root.get(k) for k in ("LastName", "FirstName", "MiddleName", "RadiationOncologist", "Comment")]
        assert read == [who.last_name, who.first_name, who.middle_name, who.radiation_oncologist, who.comment]
    accented = [p for p in small_db.patients if any(ord(c) > 127 for c in p.identity.volume_name)]
    assert accented, "expected at least one accented name in the sample"


def test_grammar_corner_cases_are_exercised(small_db: GeneratedDatabase, parse) -> None:
    last = small_db.patients[-1]
    patient = (small_db.out / last.path / "Patient").read_bytes()
    assert b'\\"' in patient  # an escaped quote in a comment
    plan = parse(small_db.out / last.path / "Patient").root.child("PlanList").items_list()[-1]
    assert "\n" in plan.get("Comment")  # a string spanning lines
    trial = (small_db.out / last.path / last.plans[-1].directory / "plan.Trial").read_bytes()
    assert b"DoseGrid .VoxelSize .X = " in trial and b"Points[] ={" in trial and b"#1 ={" in trial
    assert re.search(rb"= \\XDR:\d+\\;", trial)


def test_institution_lists_every_patient(small_db: GeneratedDatabase, parse) -> None:
    root = parse(small_db.out / "Institution_1" / "Institution").root
    lites = root.child("PatientLiteList").items_list()
    assert [lite.get("PatientPath") for lite in lites] == [p.path for p in small_db.patients]
    for lite, spec in zip(lites, small_db.patients, strict=True):
        who = spec.identity
        fields = lite.get("FormattedDescription").split("&&")
        assert fields[:5] == [who.last_name, who.first_name, who.middle_name, who.mrn, who.radiation_oncologist]
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", fields[5])
        assert lite.get("PatientID") == spec.patient_id and lite.get("MountPoint") == "Mount_0"
    assert root.child("MountPointList").child("SimpleString").get("String") == "Mount_0"
    assert "BackupMachineList" in root


# --- realism -----------------------------------------------------------------------------------------------


def test_identities_are_french_and_varied() -> None:
    rng, used = random.Random(5), set()
    people = [make_identity(rng, used) for _ in range(400)]
    separators = Counter("empty" if not p.birth_date_text else p.birth_date_text[4] for p in people)  # '-', '/' or ' '
    assert set(separators) == {"-", "/", " ", "empty"}
    assert 0.07 <= separators["empty"] / len(people) <= 0.25
    assert all(p.birth_date is None or 1930 <= int(p.birth_date[:4]) <= 2010 for p in people)
    assert {p.gender for p in people} == {"Male", "Female"}
    assert len({p.mrn for p in people}) == len(people)
    names = " ".join(f"{p.last_name} {p.first_name}" for p in people)
    assert all(mark in names for mark in ("É", "-", "'", "ï")) and re.search(r"\b(de|du|Le|LE) ", names)
    assert sum(p.last_name.isupper() for p in people) > len(people) / 2
    assert all(p.radiation_oncologist.startswith("Dr ") for p in people)
    for p in people:
        p.volume_name.encode("latin-1")


def test_patient_numbers_increase_with_gaps() -> None:
    numbers = patient_numbers(random.Random(3), 60)
    steps = [b - a for a, b in itertools.pairwise(numbers)]
    assert min(steps) >= 1 and max(steps) > 1


def test_image_sets_have_the_requested_size_and_compress_like_ct(small_db: GeneratedDatabase, parse) -> None:
    images = sorted(small_db.out.rglob("ImageSet_*.img"))
    assert images
    for path in images:
        header = parse(path.with_suffix(".header")).root
        x, y, z = (header.get(k) for k in ("x_dim", "y_dim", "z_dim"))
        data = path.read_bytes()
        assert len(data) == x * y * z * header.get("bytes_pix") == x * y * z * 2
        assert 0.75 <= len(data) / (0.2 * 1e6) <= 1.25  # --image-mb 0.2
        ratio = len(data) / len(zlib.compress(data, 6))
        assert 1.5 <= ratio <= 6, f"{path.name}: zlib ratio {ratio:.2f} (random bytes ~1, zeros > 100)"
        voxels = np.frombuffer(data, dtype="<u2" if header.get("byte_order") == 0 else ">u2").reshape(z, y, x)
        assert voxels.max() <= 4095 and abs(float(np.median(voxels[:, y // 2, x // 2 - 2 : x // 2 + 2])) - 1040) < 80


def test_default_sized_image_set(tmp_path: Path) -> None:
    db = generate_database(tmp_path / "db", patients=1, seed=2, image_mb=4)
    for path in db.out.rglob("*.img"):
        assert 3.5e6 <= path.stat().st_size <= 4.5e6
        data = path.read_bytes()
        assert 1.5 <= len(data) / len(zlib.compress(data, 6)) <= 6


def test_machines_file_is_large_and_identical_everywhere(small_db: GeneratedDatabase, tmp_path: Path) -> None:
    paths = sorted(small_db.out.rglob("plan.Pinnacle.Machines"))
    assert len(paths) == sum(len(p.plans) for p in small_db.patients) >= 2
    contents = {p.read_bytes() for p in paths}
    other = generate_database(tmp_path / "other", patients=1, seed=99, image_mb=0.05)
    contents |= {p.read_bytes() for p in other.out.rglob("plan.Pinnacle.Machines")}
    assert len(contents) == 1 and len(contents.pop()) >= 500_000


def test_dose_binaries_are_big_endian_float_doses(small_db: GeneratedDatabase, parse) -> None:
    doses = sorted(small_db.out.rglob("plan.Trial.binary.*"))
    assert doses
    grids = {}
    for path in doses:
        trial_bytes = (path.parent / "plan.Trial").read_bytes()
        index = int(path.name.rsplit(".", 1)[1])
        assert f"DoseVolume = \\XDR:{index}\\;".encode() in trial_bytes
        if path.parent not in grids:
            trial = parse(path.parent / "plan.Trial").root.child("Trial")
            grids[path.parent] = trial.child("DoseGrid").child("Dimension")
        grid = grids[path.parent]
        data = path.read_bytes()
        assert len(data) == 4 * grid.get("X") * grid.get("Y") * grid.get("Z")
        dose = np.frombuffer(data, dtype=">f4")
        assert np.isfinite(dose).all() and dose.min() >= 0 and 0 < dose.max() < 2000
        assert len(data) / len(zlib.compress(data, 6)) > 1.3


def test_transient_files_are_present(small_db: GeneratedDatabase) -> None:
    names = [p.name for p in small_db.out.rglob("*") if p.is_file()]
    assert any(re.fullmatch(r"\.auto\.plan.*", n) for n in names)
    for suffix in (".ErrorLog", ".Transcript", "~"):
        assert any(n.endswith(suffix) for n in names), suffix
    for path in small_db.out.rglob(".auto.plan*"):
        assert re.fullmatch(r"Plan_\d+", path.parent.name)


def test_manifest_matches_the_tree(small_db: GeneratedDatabase) -> None:
    files = [p for p in small_db.out.rglob("*") if p.is_file()]
    assert small_db.files == len(files) and small_db.bytes == sum(p.stat().st_size for p in files)
    assert [d.name for d in _patient_dirs(small_db)] == sorted(f"Patient_{p.number}" for p in small_db.patients)
    for spec in small_db.patients:
        assert 1 <= len(spec.image_sets) <= 3 and 1 <= len(spec.plans) <= 4
        for plan in spec.plans:
            assert (small_db.out / spec.path / plan.directory / "plan.Trial").is_file()


# --- round trip through the reader ---------------------------------------------------------------------------


def test_scan_reads_back_what_was_written(small_db: GeneratedDatabase) -> None:
    from rtvault.pinnacle import scan

    result = scan(small_db.out)
    assert result.warnings == []
    records = {r.path: r for r in result.patients}
    assert sorted(records) == sorted(p.path for p in small_db.patients)
    for spec in small_db.patients:
        record, who = records[spec.path], spec.identity
        assert record.warnings == []
        assert (record.patient_id, record.last_name, record.first_name, record.middle_name) == (
            spec.patient_id, who.last_name, who.first_name, who.middle_name,
        )  # fmt: skip
        assert (record.mrn, record.birth_date, record.gender) == (who.mrn, who.birth_date, who.gender)
        assert (record.radiation_oncologist, record.diagnosis, record.comment) == (
            who.radiation_oncologist, spec.diagnosis, who.comment,
        )  # fmt: skip
        assert [(i.id, i.modality, i.series_description, i.dimensions) for i in record.image_sets] == [
            (i.id, i.modality, i.series_description, i.dimensions) for i in spec.image_sets
        ]
        assert [(p.id, p.name, p.physicist, p.dosimetrist, p.locked) for p in record.plans] == [
            (p.id, p.name, p.physicist, p.dosimetrist, p.locked) for p in spec.plans
        ]
        assert record.file_count > 0 and record.size_bytes > 0


# --- command line --------------------------------------------------------------------------------------------


def test_cli_generate_json(tmp_path: Path) -> None:
    from rtvault.cli import cli

    out = tmp_path / "db"
    args = ["demo", "generate", "--out", str(out), "--patients", "2", "--seed", "4", "--image-mb", "0.05", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert set(summary) == SUMMARY_KEYS
    assert (summary["out"], summary["patients"], summary["seed"]) == (str(out), 2, 4)
    assert summary["files"] == sum(1 for p in out.rglob("*") if p.is_file())
    assert math.isfinite(summary["duration_s"])


def test_cli_generate_text_and_refusal(tmp_path: Path) -> None:
    from rtvault.cli import cli, main

    out = tmp_path / "db"
    result = CliRunner().invoke(cli, ["demo", "generate", "--out", str(out), "--patients", "1", "--seed", "1",
                                      "--image-mb", "0.05"])  # fmt: skip
    assert result.exit_code == 0 and result.output.count("\n") == 1 and "1 patients" in result.output
    with pytest.raises(SystemExit) as stopped:
        main(["demo", "generate", "--out", str(out), "--patients", "1", "--seed", "1"])
    assert stopped.value.code == InputError.exit_code


def test_python_module_generate(tmp_path: Path) -> None:
    out = tmp_path / "db"
    command = [sys.executable, "-m", "rtvault", "demo", "generate", "--out", str(out), "--patients", "2",
               "--seed", "1", "--image-mb", "0.05", "--json"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)) == SUMMARY_KEYS
    assert (out / "Institution_1" / "Institution").is_file()
