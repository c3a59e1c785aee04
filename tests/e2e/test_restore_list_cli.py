"""`rtvault restore` for several patients, as a physicist runs it: a list saved from a French spreadsheet
(Latin-1, semicolons), five patients restored byte-identical with one report (text, JSON and CSV), the rows
naming no one or two patients said with their line and exit 9, a file that is no list refused (exit 4), and
`--patient` repeated. Slow: a backup and a dozen commands in subprocesses."""

from __future__ import annotations

import csv
import io
import json

import pytest

from kit.cli import Operator
from kit.files import files_of, set_field
from rtvault.errors import ExitCode

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def physicist(tmp_path_factory: pytest.TempPathFactory) -> Operator:
    """Six synthetic patients backed up (the catalog refreshed by the backup); the first two share a last name
    and a birth date."""
    operator = Operator(tmp_path_factory.mktemp("restore-list"))
    operator.run("demo", "generate", "--out", "db", "--patients", "6", "--seed", "5", "--image-mb", "0.1")
    for patient in sorted((operator.cwd / "db").glob("Institution_*/Mount_*/Patient_*"))[:2]:
        set_field(patient / "Patient", "LastName", "DUPONT")
        set_field(patient / "Patient", "DateOfBirth", "1957-03-14")
    (operator.cwd / "rtvault.toml").write_text('[source.pinnacle]\nroot = "db"\n\n[stores.primary]\npath = "store"\n'
                                               '\n[catalog]\nurl = "sqlite:///catalog.sqlite"\n', encoding="utf-8")
    operator.run("init")
    operator.run("backup")
    return operator


def _patients(operator: Operator) -> list[dict]:
    """Every patient of the catalog, by path (some synthetic patients have no birth date)."""
    found = operator.json("search", "--status", "active,archived,deleted", "--per-page", "50")["patients"]
    return sorted(found, key=lambda p: p["path"])


def _source(operator: Operator, path: str) -> dict:
    return {rel: value for rel, value in files_of(operator.cwd / "db").items() if rel.startswith(path + "/")}


def test_five_patients_from_a_french_spreadsheet(physicist: Operator) -> None:
    chosen = _patients(physicist)[1:]  # five: the first twin left out
    rows = [f";{p['last_name'].title()};{p['birth_date'][8:]}/{p['birth_date'][5:7]}/{p['birth_date'][:4]}"
            if p["birth_date"] and p["birth_date"] != "1957-03-14" else f"{p['mrn']};;" for p in chosen]
    assert any(row.startswith(";") for row in rows) and any(not row.startswith(";") for row in rows)
    (physicist.cwd / "liste.csv").write_bytes(("N° IPP;Nom;Date de naissance\r\n" + "\r\n".join(rows) + "\r\n\r\n")
                                              .encode("latin-1"))

    report = physicist.json("restore", "--patients-from", "liste.csv", "--to", "restored", "--report", "report.csv")

    assert list(report)[:3] == ["restored", "not_found", "ambiguous"]
    assert not (report["not_found"] or report["ambiguous"] or report["failed"] or report["invalid"])
    assert len(report["restored"]) == 5 and report["list"]["encoding"] == "windows-1252"
    for entry in report["restored"]:
        folder = physicist.cwd / entry["directory"]
        assert folder.parent == physicist.cwd / "restored" and (folder / "Institution").is_file()
        restored = {rel: value for rel, value in files_of(folder).items() if rel != "Institution"}
        assert restored == _source(physicist, entry["path"]) and restored
        assert {"line", "asked", "key", "name", "mrn", "path", "directory", "files", "bytes"} <= set(entry)
    with (physicist.cwd / "report.csv").open(encoding="utf-8-sig", newline="") as sheet:
        rows_read = list(csv.DictReader(sheet, delimiter=";"))
    assert [(r["line"], r["outcome"]) for r in rows_read] == [(str(n), "restored") for n in range(2, 7)]
    assert oct((physicist.cwd / "report.csv").stat().st_mode & 0o777) == oct(0o600)  # it names patients

    # in the journal of actions (and the audit trail it fills): the command, and each patient restored
    trail = [e for e in physicist.json("audit")["entries"] if e["action"] == "restore"]
    assert {e["patient"] for e in trail} >= {entry["key"] for entry in report["restored"]}
    command = next(e for e in trail if not e["patient"])
    assert json.loads(command["detail"])["patients_from"] == "liste.csv" and command["result"] == "ok"
    each = {e["patient"]: json.loads(e["detail"]) for e in trail if e["patient"]}
    assert all(each[entry["key"]]["directory"] == entry["directory"] for entry in report["restored"])

    again = physicist.run("restore", "--patients-from", "liste.csv", "--to", "restored", "--report", "report.csv",
                          expect=ExitCode.INPUT)
    assert "report.csv already exists" in again.stderr


def test_rows_naming_no_one_or_two_patients_exit_9_with_their_line(physicist: Operator) -> None:
    one = _patients(physicist)[3]
    (physicist.cwd / "mixed.csv").write_text(f"mrn,last_name,birth_date\n{one['mrn']},,\n,Dupont,1957-03-14\n"
                                             "0000000001,,\n,Dupont,14/14/1957\n", encoding="utf-8")
    done = physicist.run("restore", "--patients-from", "mixed.csv", "--to", "mixed", expect=ExitCode.PARTIAL)
    assert "restored 1 of 4 patient(s) listed in mixed.csv" in done.stdout
    assert "AMBIGUOUS line 3: Dupont born 1957-03-14: 2 patients have it" in done.stderr
    assert "NOT FOUND line 4: MRN 0000000001" in done.stderr and "UNUSABLE line 5" in done.stderr
    assert "3 of 4 patient(s) not restored" in done.stderr
    report = json.loads(physicist.run("restore", "--patients-from", "mixed.csv", "--to", "mixed2", "--json",
                                      expect=ExitCode.PARTIAL).stdout)
    assert [len(report[k]) for k in ("restored", "not_found", "ambiguous", "invalid")] == [1, 1, 1, 1]
    assert len(report["ambiguous"][0]["candidates"]) == 2


@pytest.mark.parametrize(("content", "said"), [
    (b"Patient;Service\nDupont;RT\n", "no column names the patients: found 'Patient', 'Service'"),
    (b"", "is empty"),
    (bytes(range(256)) * 4, "is not a text file"),
    (b"mrn\n" + b"9" * 100_000 + b"\n", "line 2: 100000 characters long"),
])
def test_a_file_that_is_no_list_is_refused_before_anything_is_restored(physicist: Operator, content: bytes,
                                                                        said: str) -> None:
    (physicist.cwd / "bad.csv").write_bytes(content)
    done = physicist.run("restore", "--patients-from", "bad.csv", "--to", "never", expect=ExitCode.INPUT)
    assert said in done.stderr and not (physicist.cwd / "never").exists()


def test_what_does_not_go_with_a_list_is_refused(physicist: Operator) -> None:
    (physicist.cwd / "one.csv").write_text("mrn\n1\n", encoding="utf-8")
    for extra, said in ((["--snapshot", "latest"], "--snapshot, --at and --force do not go with it"),
                        (["--patient", "1"], "give one of --patient KEY"),
                        (["--from-archive"], "--from-archive and --volume restore one patient")):
        done = physicist.run("restore", "--patients-from", "one.csv", "--to", "x", *extra, expect=ExitCode.INPUT)
        assert said in done.stderr
    missing = physicist.run("restore", "--patients-from", "absent.csv", "--to", "x", expect=ExitCode.INPUT)
    assert "absent.csv does not exist" in missing.stderr


def test_patient_repeated_restores_each_at_its_path_with_one_report(physicist: Operator) -> None:
    first, second = _patients(physicist)[4:6]
    report = physicist.json("restore", "--patient", first["mrn"], "--patient", second["path"], "--to", "several",
                            "--report", "several.csv")
    assert [e["path"] for e in report["restored"]] == [first["path"], second["path"]]
    assert files_of(physicist.cwd / "several") == {**_source(physicist, first["path"]),
                                                   **_source(physicist, second["path"])}
    rows = list(csv.reader(io.StringIO((physicist.cwd / "several.csv").read_text(encoding="utf-8-sig"))))
    assert [row[1] for row in rows[1:]] == ["restored", "restored"]
    one = physicist.json("restore", "--patient", first["mrn"], "--to", "one")  # one patient: the report as before
    assert one["patients"] == [first["path"]] and "restored" not in one
    refused = physicist.run("restore", "--patient", "a", "--patient", "b", "--to", "x", "--from-archive",
                            expect=ExitCode.INPUT)
    assert "restore one patient" in refused.stderr
    twice = physicist.run("restore", "--patient", "a", "--to", "x", "--to", "y", expect=ExitCode.INPUT)
    assert "--to was given 2 times: give it once" in twice.stderr
