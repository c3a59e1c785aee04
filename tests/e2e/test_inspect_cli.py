"""`rtvault inspect` run as a user runs it: a separate process, real sample files, real exit codes.

Expected values are read from the fixture files by the tests themselves (simple regular expressions and
os.walk), not through rtvault's reader.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pinnacle"
SAMPLE = FIXTURES / "pinnacle_io-01"
PATIENT_REL = "Institution_1/Mount_0/Patient_1"
PATIENT_FILE_REL = f"{PATIENT_REL}/Patient"
HEADER_REL = f"{PATIENT_REL}/ImageSet_0.header"

REQUIRED_KEYS = {
    "patient_id", "path", "last_name", "first_name", "middle_name", "mrn", "birth_date", "gender",
    "radiation_oncologist", "diagnosis", "comment", "last_modified", "image_sets", "plans", "size_bytes",
    "file_count", "warnings",
}


@pytest.fixture
def sample() -> Path:
    if not (SAMPLE / PATIENT_FILE_REL).is_file():
        pytest.skip("tests/fixtures/pinnacle is missing from this checkout")
    return SAMPLE


@pytest.fixture
def copy(sample: Path, tmp_path: Path) -> Path:
    """A writable copy of the sample tree, in tmp (the fixtures are read-only)."""
    root = tmp_path / "db"
    shutil.copytree(sample, root)
    for directory, _dirs, files in os.walk(root):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)
    return root


def run(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "rtvault", *map(str, args)],
        capture_output=True, timeout=120, cwd=cwd, check=False,
    )


def out(proc: subprocess.CompletedProcess[bytes]) -> str:
    return proc.stdout.decode("utf-8")


def err(proc: subprocess.CompletedProcess[bytes]) -> str:
    return proc.stderr.decode("utf-8")


def assert_no_traceback(proc: subprocess.CompletedProcess[bytes]) -> None:
    assert b"Traceback" not in proc.stdout and b"Traceback" not in proc.stderr, err(proc)


def inspect_json(path: Path, cwd: Path | None = None) -> dict:
    proc = run("inspect", path, "--json", cwd=cwd)
    assert_no_traceback(proc)
    assert proc.returncode == 0, err(proc)
    data = json.loads(out(proc))
    assert set(data) >= {"patients", "warnings"}
    return data


def by_path(data: dict) -> dict[str, dict]:
    return {p["path"]: p for p in data["patients"]}


# ---------------------------------------------------------------------------------------------------------
# What the fixture files say, read independently of rtvault


def _top_level_strings(text: str) -> dict[str, str]:
    return dict(re.findall(r'^(\w+) = "(.*)";$', text, re.M))


def expected_patient(root: Path, rel: str = PATIENT_REL) -> dict:
    directory = root / rel
    text = (directory / "Patient").read_bytes().decode("latin-1")
    strings = _top_level_strings(text)
    plan_list = text[text.index("PlanList ={") :]
    plan_ids = [int(x) for x in re.findall(r"^    PlanID = (\d+);$", plan_list, re.M)]
    plan_names = re.findall(r'^    PlanName = "(.*)";$', plan_list, re.M)
    header = (directory / "ImageSet_0.header").read_bytes().decode("latin-1")
    dims = {axis: int(re.search(rf"^\s*{axis}_dim = (\d+);", header, re.M).group(1)) for axis in "xyz"}

    sizes: dict[str, int] = {}
    newest = 0.0
    for dirpath, _dirs, files in os.walk(directory):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            sizes[os.path.relpath(os.path.join(dirpath, name), directory)] = st.st_size
            newest = max(newest, st.st_mtime)
    return {
        "path": rel,
        "patient_id": int(re.search(r"^PatientID = (\d+);$", text, re.M).group(1)),
        "last_name": strings["LastName"],
        "first_name": strings["FirstName"],
        "middle_name": strings["MiddleName"],
        "mrn": strings["MedicalRecordNumber"],
        "birth_date": strings["DateOfBirth"],  # already ISO in the fixture
        "gender": strings["Gender"],
        "radiation_oncologist": strings["RadiationOncologist"],
        "diagnosis": strings["Diagnosis"],
        "comment": strings["Comment"].strip(),
        "last_modified": datetime.fromtimestamp(newest, UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "plans": [{"id": i, "name": n, "directory_present": (directory / f"Plan_{i}").is_dir()}
                  for i, n in zip(plan_ids, plan_names, strict=True)],
        "dims": dims,
        "image_set_bytes": sum(v for k, v in sizes.items() if k.startswith("ImageSet_0.")),
        "size_bytes": sum(sizes.values()),
        "file_count": len(sizes),
    }


def check_patient(patient: dict, expected: dict) -> None:
    assert set(patient) >= REQUIRED_KEYS, REQUIRED_KEYS - set(patient)
    for key in ("path", "patient_id", "last_name", "first_name", "middle_name", "mrn", "birth_date", "gender",
                "radiation_oncologist", "diagnosis", "comment", "last_modified", "size_bytes", "file_count"):
        assert patient[key] == expected[key], key
    assert isinstance(patient["image_sets"], list) and all(isinstance(i, dict) for i in patient["image_sets"])
    [image_set] = patient["image_sets"]
    assert image_set["name"] == "ImageSet_0"
    assert image_set["id"] == 0
    assert image_set["modality"] == "CT"
    assert image_set["number_of_images"] == expected["dims"]["z"]
    assert image_set["dimensions"] == expected["dims"]
    assert image_set["bytes"] == expected["image_set_bytes"]
    assert isinstance(patient["plans"], list) and all(isinstance(p, dict) for p in patient["plans"])
    assert [{k: p[k] for k in ("id", "name", "directory_present")} for p in patient["plans"]] == expected["plans"]
    assert isinstance(patient["warnings"], list)


def test_expected_values_match_what_the_brief_says(sample):
    """Guards the independent reading above against silently reading nothing."""
    expected = expected_patient(sample)
    assert (expected["last_name"], expected["mrn"]) == ("LAST", "000000")
    assert [p["name"] for p in expected["plans"]] == ["BRAIN", "CopyOf_1_BRAIN"]
    assert expected["dims"] == {"x": 512, "y": 512, "z": 101}
    assert expected["file_count"] == 11 and expected["size_bytes"] > 4_000_000


# ---------------------------------------------------------------------------------------------------------
# The real sample, as a root, an institution and a patient


@pytest.mark.parametrize("target", ["", "Institution_1", PATIENT_REL], ids=["root", "institution", "patient"])
def test_inspect_json_on_the_sample(sample, tmp_path, target):
    data = inspect_json(sample / target if target else sample, cwd=tmp_path)
    [patient] = data["patients"]
    check_patient(patient, expected_patient(sample))
    assert patient["warnings"] == []
    assert data["warnings"] == []


def test_inspect_text_on_the_sample(sample, tmp_path):
    proc = run("inspect", sample, cwd=tmp_path)
    assert_no_traceback(proc)
    assert proc.returncode == 0, err(proc)
    text = out(proc)
    for word in (PATIENT_REL, "LAST", "FIRST", "000000", "2020-01-01", "TEST, MD", "1 patient"):
        assert word in text, word
    assert "warning" not in text


# ---------------------------------------------------------------------------------------------------------
# French names in Latin-1 bytes


def _set_field(path: Path, key: str, value: bytes) -> None:
    data = path.read_bytes()
    new, count = re.subn(rb"^" + key.encode() + rb' = ".*";$', key.encode() + b' = "' + value + b'";', data,
                         count=1, flags=re.M)
    assert count == 1, key
    path.write_bytes(new)


def _add_patient(root: Path, number: int, fields: dict[str, bytes]) -> Path:
    """A second patient directory holding a copy of Patient_1's Patient file with other identity fields."""
    directory = root / f"Institution_1/Mount_0/Patient_{number}"
    directory.mkdir()
    shutil.copy2(root / PATIENT_FILE_REL, directory / "Patient")
    for key, value in fields.items():
        _set_field(directory / "Patient", key, value)
    return directory


def _list_in_institution(root: Path, number: int, description: bytes) -> None:
    path = root / "Institution"
    data = path.read_bytes()
    entry = (b"  PatientLite ={\n    PatientID = %d;\n    PatientPath = \"Institution_1/Mount_0/Patient_%d\";\n"
             b"    MountPoint = \"Mount_0\";\n    FormattedDescription = \"%s\";\n    DirSize = 1.0;\n  };\n"
             % (number, number, description))
    marker = b"PatientLiteList ={\n"
    assert marker in data
    path.write_bytes(data.replace(marker, marker + entry, 1))


def test_french_names_in_latin1_come_out_as_unicode(copy, tmp_path):
    patient_file = copy / PATIENT_FILE_REL
    _set_field(patient_file, "LastName", b"LEF\xc8VRE")
    _set_field(patient_file, "FirstName", b"H\xe9l\xe8ne-Marie")
    _set_field(patient_file, "Comment", b'dit \\"L\xe9a\\" \xe0 l\'accueil')
    _add_patient(copy, 2, {"LastName": b"N'DIAYE", "FirstName": b"Zo\xe9", "MedicalRecordNumber": b"0002"})
    _list_in_institution(copy, 2, b"N'DIAYE&&Zo\xe9&&&&0002&&TEST, MD&&2020-01-01 10:00:00")

    proc = run("inspect", copy, "--json", cwd=tmp_path)
    assert proc.returncode == 0, err(proc)
    assert b"LEF\xc8VRE" not in proc.stdout  # no raw Latin-1 byte leaks into the UTF-8 output
    patients = by_path(json.loads(out(proc)))
    first, second = patients[PATIENT_REL], patients["Institution_1/Mount_0/Patient_2"]
    assert first["last_name"] == "LEFÈVRE"
    assert first["first_name"] == "Hélène-Marie"
    assert first["comment"] == "dit \"Léa\" à l'accueil"
    assert (second["last_name"], second["first_name"], second["mrn"]) == ("N'DIAYE", "Zoé", "0002")
    assert second["warnings"] == [] and first["warnings"] == []

    text_proc = run("inspect", copy, cwd=tmp_path)
    assert text_proc.returncode == 0, err(text_proc)
    text = out(text_proc)
    for word in ("LEFÈVRE", "Hélène-Marie", "N'DIAYE", "Zoé"):
        assert word in text, (word, text)


# ---------------------------------------------------------------------------------------------------------
# Garbled input


def test_garbled_patient_and_header_give_warnings_not_a_crash(copy, tmp_path):
    patient_file = copy / PATIENT_FILE_REL
    data = patient_file.read_bytes()
    cut = data.index(b'PlanName = "CopyOf') + len(b'PlanName = "Cop')  # mid-way, inside a string
    patient_file.write_bytes(data[:cut])
    cut_line = data[:cut].count(b"\n") + 1

    header = copy / HEADER_REL
    lines = header.read_bytes().split(b"\n")
    lines.insert(5, b"@@@ \xff\xfe garbage {{{ ;;;")
    header.write_bytes(b"\n".join(lines))

    proc = run("inspect", copy, "--json", cwd=tmp_path)
    assert_no_traceback(proc)
    assert proc.returncode == 0, err(proc)
    data = json.loads(out(proc))
    [patient] = data["patients"]
    assert (patient["last_name"], patient["first_name"], patient["mrn"]) == ("LAST", "FIRST", "000000")
    assert patient["birth_date"] == "2020-01-01"
    assert patient["plans"][0]["name"] == "BRAIN"
    assert patient["image_sets"][0]["dimensions"] == {"x": 512, "y": 512, "z": 101}

    patient_warnings = [w for w in patient["warnings"] if w["file"] == PATIENT_FILE_REL]
    assert patient_warnings, patient["warnings"]
    assert all(isinstance(w["line"], int) and 1 <= w["line"] <= cut_line + 1 for w in patient_warnings)
    assert any(w["line"] == cut_line for w in patient_warnings), patient_warnings
    header_warnings = [w for w in patient["warnings"] if w["file"] == HEADER_REL]
    assert [w["line"] for w in header_warnings] == [6]
    assert all(w["message"] for w in patient["warnings"])
    # the top-level list repeats every patient warning, so that nothing is missed by a quick look
    assert all(w in data["warnings"] for w in patient["warnings"])

    text_proc = run("inspect", copy, cwd=tmp_path)
    assert_no_traceback(text_proc)
    assert text_proc.returncode == 0, err(text_proc)
    assert f"{PATIENT_FILE_REL}:{cut_line}" in out(text_proc)
    assert f"{HEADER_REL}:6" in out(text_proc)


def test_garbled_image_name_does_not_stop_inspect(copy, tmp_path):
    _add_patient(copy, 2, {"LastName": b"MARTIN"})
    _set_field(copy / "Institution_1/Mount_0/Patient_2/Patient", "    ImageName", b"x" * 300)
    proc = run("inspect", copy, "--json", cwd=tmp_path)
    assert_no_traceback(proc)
    assert proc.returncode == 0, out(proc)
    assert list(by_path(json.loads(out(proc)))) == [PATIENT_REL, "Institution_1/Mount_0/Patient_2"]


# ---------------------------------------------------------------------------------------------------------
# The Institution file and the directories disagree


def test_institution_entry_without_directory_is_a_top_level_warning(copy, tmp_path):
    _list_in_institution(copy, 9, b"ABSENT&&PAUL&&&&999999&&TEST, MD&&2020-01-01 10:00:00")
    data = inspect_json(copy, cwd=tmp_path)
    assert list(by_path(data)) == [PATIENT_REL]
    missing = [w for w in data["warnings"] if "Patient_9" in w["file"] + w["message"]]
    assert len(missing) == 1, data["warnings"]
    assert missing[0]["file"] == "Institution_1/Mount_0/Patient_9"
    assert "999999" in missing[0]["message"] and "ABSENT" in missing[0]["message"]

    proc = run("inspect", copy, cwd=tmp_path)
    assert proc.returncode == 0, err(proc)
    assert "Institution_1/Mount_0/Patient_9" in out(proc)


def test_directory_not_in_institution_file_is_still_a_patient(copy, tmp_path):
    _add_patient(copy, 2, {"LastName": b"MARTIN", "MedicalRecordNumber": b"0042"})
    data = inspect_json(copy, cwd=tmp_path)
    patients = by_path(data)
    assert list(patients) == [PATIENT_REL, "Institution_1/Mount_0/Patient_2"]
    extra = patients["Institution_1/Mount_0/Patient_2"]
    assert set(extra) >= REQUIRED_KEYS
    assert (extra["last_name"], extra["mrn"], extra["file_count"]) == ("MARTIN", "0042", 1)
    assert extra["listed_in_institution"] is False
    assert any(w["file"].startswith("Institution_1/Mount_0/Patient_2") and "not listed" in w["message"]
               for w in extra["warnings"]), extra["warnings"]
    assert patients[PATIENT_REL]["warnings"] == []


# ---------------------------------------------------------------------------------------------------------
# Bad paths: exit code 4, one sentence, no traceback


def _bad_paths(tmp_path: Path) -> dict[str, Path]:
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    regular = tmp_path / "a-file.txt"
    regular.write_text("not a Pinnacle database\n")
    return {"missing": tmp_path / "no" / "such" / "dir", "file": regular, "empty": empty}


@pytest.mark.parametrize("kind", ["missing", "file", "empty"])
def test_bad_path_is_a_one_line_error_with_exit_code_4(tmp_path, kind):
    path = _bad_paths(tmp_path)[kind]
    proc = run("inspect", path, cwd=tmp_path)
    assert_no_traceback(proc)
    assert proc.returncode == 4
    assert out(proc) == ""
    lines = err(proc).splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("rtvault: error: ")
    assert str(path) in lines[0]


@pytest.mark.parametrize("kind", ["missing", "file", "empty"])
def test_bad_path_with_json_prints_an_error_object(tmp_path, kind):
    path = _bad_paths(tmp_path)[kind]
    proc = run("inspect", path, "--json", cwd=tmp_path)
    assert_no_traceback(proc)
    assert proc.returncode == 4
    data = json.loads(out(proc))
    assert set(data) == {"error"}
    assert set(data["error"]) == {"message", "exit_code"}
    assert data["error"]["exit_code"] == 4
    assert str(path) in data["error"]["message"]
    assert [line for line in err(proc).splitlines() if line.strip()] == [f"rtvault: error: {data['error']['message']}"]


# ---------------------------------------------------------------------------------------------------------
# The reader never writes


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under root: files by (mtime_ns, size, sha256), directories by (mtime_ns, listing)."""
    state: dict[str, tuple] = {}
    for dirpath, dirs, files in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        st = os.lstat(dirpath)
        state[rel + "/"] = (st.st_mtime_ns, stat.S_IMODE(st.st_mode), tuple(sorted(dirs + files)))
        for name in files:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            digest = hashlib.sha256(Path(full).read_bytes()).hexdigest()
            state[os.path.join(rel, name)] = (st.st_mtime_ns, st.st_size, stat.S_IMODE(st.st_mode), digest)
    return state


def test_inspect_never_writes_under_the_source(copy, tmp_path):
    # a damaged file must not be "repaired" either
    patient_file = copy / PATIENT_FILE_REL
    patient_file.write_bytes(patient_file.read_bytes()[:1000])
    _add_patient(copy, 2, {"LastName": b"LEF\xc8VRE"})
    before = snapshot(copy)
    assert len(before) > 15

    work = tmp_path / "work"
    work.mkdir()
    for target in (copy, copy / "Institution_1", copy / PATIENT_REL):
        for extra in ((), ("--json",)):
            proc = run("inspect", target, *extra, cwd=work)
            assert_no_traceback(proc)
            assert proc.returncode == 0, err(proc)

    assert snapshot(copy) == before
