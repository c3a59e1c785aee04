"""Playing clinical days on a generated database: admissions, deletions, edits, determinism, errors, CLI."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from rtvault.demo import GeneratedDatabase, evolve_database
from rtvault.errors import InputError

DAY_ONE = date(2026, 1, 6)  # the first working day after day 0 (Monday 2026-01-05)


def _institution_paths(db: Path, parse) -> list[str]:
    root = parse(db / "Institution_1" / "Institution").root
    return [lite.get("PatientPath") for lite in root.child("PatientLiteList").items_list()]


def _mtime_day(path: Path) -> date:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).date()


def test_day_one_admits_deletes_and_edits(copy_db, small_db: GeneratedDatabase, parse, problems_in) -> None:
    db = copy_db()
    before = _institution_paths(db, parse)
    result = evolve_database(db, 1)

    assert len(result.added_patients) == 1 and len(result.deleted_patients) == 1
    admitted, removed = result.added_patients[0], result.deleted_patients[0]
    after = _institution_paths(db, parse)
    assert admitted in after and admitted not in before and (db / admitted / "Patient").is_file()
    assert removed in before and removed not in after and not (db / removed).exists()
    finished = {p.path for p in small_db.patients if p.finished}
    assert removed in finished
    assert len(after) == len(before)

    assert "Institution_1/Institution" in result.edited
    assert any(path.endswith("/plan.Trial") for path in result.edited)
    assert any(re.search(r"/plan\.Trial\.binary\.\d{3}$", path) for path in result.edited)
    transient = re.compile(r"(/\.auto\.plan[^/]*|\.ErrorLog|\.Transcript|~)$")
    assert all(path.startswith(admitted + "/") or transient.search(path) for path in result.added)
    assert any(path.startswith(admitted + "/") for path in result.added)
    assert all(path.startswith(removed + "/") for path in result.deleted) and result.deleted
    for path in result.edited + result.added:
        assert _mtime_day(db / path) == DAY_ONE, path
    assert problems_in(db) == {}


def test_edited_trials_differ_and_doses_stay_plausible(copy_db, small_db: GeneratedDatabase) -> None:
    import numpy as np

    db = copy_db()
    result = evolve_database(db, 1)
    for path in result.edited:
        if path.endswith("plan.Trial") or ".binary." in path:
            assert (db / path).read_bytes() != (small_db.out / path).read_bytes(), path
        if ".binary." in path:
            dose = np.frombuffer((db / path).read_bytes(), dtype=">f4")
            assert np.isfinite(dose).all() and dose.min() >= 0


def test_evolve_is_deterministic(copy_db, state_of) -> None:
    first, second = copy_db("one"), copy_db("two")
    assert state_of(first) == state_of(second)
    results = [evolve_database(first, 1).to_json(), evolve_database(second, 1).to_json()]
    assert results[0] == results[1]
    assert state_of(first) == state_of(second)
    assert evolve_database(first, 2).to_json() == evolve_database(second, 2).to_json()
    assert state_of(first) == state_of(second)


def test_other_days_make_other_choices(copy_db) -> None:
    one, three = evolve_database(copy_db("one"), 1), evolve_database(copy_db("three"), 3)
    assert one.to_json() != three.to_json()


def test_consecutive_days_keep_the_database_readable(copy_db, parse, problems_in) -> None:
    db = copy_db()
    for day in (1, 2, 3):
        evolve_database(db, day)
    patients = sorted(p.relative_to(db).as_posix() for p in (db / "Institution_1" / "Mount_0").glob("Patient_*"))
    assert sorted(_institution_paths(db, parse)) == patients
    assert problems_in(db) == {}
    newest = max(os.stat(p).st_mtime for p in db.rglob("*"))
    assert datetime.fromtimestamp(newest, UTC).date() == date(2026, 1, 8)


def test_scan_after_evolve(copy_db, parse) -> None:
    from rtvault.pinnacle import scan

    db = copy_db()
    evolve_database(db, 1)
    result = scan(db)
    assert sorted(r.path for r in result.patients) == sorted(_institution_paths(db, parse))
    assert result.warnings == []


def test_refuses_what_is_not_a_generated_database(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a generated Pinnacle database"):
        evolve_database(tmp_path, 1)
    (tmp_path / "Institution_1" / "Mount_0").mkdir(parents=True)
    institution = tmp_path / "Institution_1" / "Institution"
    institution.write_bytes(b'Name = "x";\n')
    with pytest.raises(InputError, match="PatientLiteList"):
        evolve_database(tmp_path, 1)
    institution.write_bytes(b'InstitutionID = 1;\nName = "CHU R\xe9el";\nPatientLiteList ={\n};\n')
    with pytest.raises(InputError, match="real database"):
        evolve_database(tmp_path, 1)
    assert institution.read_bytes().startswith(b"InstitutionID = 1;")
    with pytest.raises(InputError, match="not a directory"):
        evolve_database(tmp_path / "missing", 1)


def test_refuses_day_zero(copy_db) -> None:
    with pytest.raises(InputError, match="--day"):
        evolve_database(copy_db(), 0)


def test_cli_evolve_json(copy_db) -> None:
    from rtvault.cli import cli

    db = copy_db()
    result = CliRunner().invoke(cli, ["demo", "evolve", "--db", str(db), "--day", "1", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert set(summary) == {"day", "edited", "added", "deleted"} and summary["day"] == 1
    assert summary["added"] and summary["deleted"] and "Institution_1/Institution" in summary["edited"]


def test_cli_evolve_error_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rtvault.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["demo", "evolve", "--db", str(tmp_path), "--day", "1"])
    assert stopped.value.code == InputError.exit_code
    assert "not a generated Pinnacle database" in capsys.readouterr().err
