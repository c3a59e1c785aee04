"""Property-based tests of the Pinnacle reader on hostile input: it never raises on arbitrary bytes, caps its
problems and nesting, and a damaged Patient file still gives exactly one patient, with warnings naming that file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kit.pinnacle import FUZZ, MAX_PROBLEMS, PARSERS, check_well_formed
from rtvault.pinnacle.dialects import parse_roi
from rtvault.pinnacle.discover import scan
from rtvault.pinnacle.grammar import PObject, split_stamp

# ---------------------------------------------------------------------------------------------------------
# Arbitrary bytes

PINNACLE_SOUP = st.lists(
    st.one_of(
        st.sampled_from([
            b"Key", b" = ", b"={", b"};", b"}", b"{", b";", b'"', b'\\"', b"\\", b"/*", b"*/", b"//", b"\n",
            b"#0", b"#1 ={", b"Points[] ={", b" .X", b".", b"1.5e3", b"-2", b",", b":", b"roi={", b"points={",
            b"curve={", b"x_dim = 4;", b"name: PTV", b"/* J */\n", b"\xc8\xe9", b"\x00", b"\r\n", b"\t",
        ]),
        st.binary(max_size=6),
    ),
    max_size=80,
).map(b"".join)


@FUZZ
@given(data=st.one_of(st.binary(max_size=3000), PINNACLE_SOUP))
def test_parsers_never_raise_on_arbitrary_bytes(data):
    for dialect, parser in PARSERS.items():
        name = f"Plan_0/arbitrary.{dialect}"
        check_well_formed(parser(data, name), data, name)


@pytest.mark.parametrize("dialect", PARSERS)
def test_problem_flood_is_capped(dialect):
    data = b"@@ ; } x y z \"\n" * 500
    result = PARSERS[dialect](data, "flood")
    check_well_formed(result, data, "flood")
    assert len(result.problems) == MAX_PROBLEMS
    assert result.problems[-1].line is None and "more problems" in result.problems[-1].message


def test_deeply_nested_roi_blocks_are_parsed_without_recursion():
    data = b"roi={\n" * 5000
    result = parse_roi(data, "plan.roi")
    assert isinstance(result.root, PObject)
    assert [p.message for p in result.problems] == [
        "blocks nested deeper than 100 levels: 'roi' ignored",
        "file ends inside an unclosed block (opened at line 5000)",
    ]


@pytest.mark.parametrize("dialect, data", [
    pytest.param("grammar", b"A ={\n" * 3000, id="grammar"),
    pytest.param("roi", b"roi={\n" * 3000, id="roi"),
])
def test_deeply_nested_input_does_not_raise(dialect, data):
    result = PARSERS[dialect](data, "hostile")
    check_well_formed(result, data, "hostile")
    assert any("unclosed" in p.message for p in result.problems)


# ---------------------------------------------------------------------------------------------------------
# Patient level: a damaged Patient file still gives exactly one patient, with warnings naming that file

PATIENT_PATH = "Institution_1/Mount_0/Patient_3"
PATIENT_NAME = f"{PATIENT_PATH}/Patient"
IDENTITY = {"last_name": "LEFÈVRE", "first_name": "Hélène-Marie", "middle_name": "N'DIAYE", "mrn": "0012345",
            "radiation_oncologist": "DR MARTIN"}
PATIENT_TEXT = f"""PatientID = 3;
PatientPath = "{PATIENT_PATH}";
LastName = "LEFÈVRE";
FirstName = "Hélène-Marie";
MiddleName = "N'DIAYE";
MedicalRecordNumber = "0012345";
RadiationOncologist = "DR MARTIN";
Diagnosis = "Tumeur cérébrale";
Comment = "dit \\"Léa\\"
deuxième ligne";
Gender = "Female";
DateOfBirth = "1950-03-12";
ImageSetList ={{
  ImageSet ={{
    ImageSetID = 0;
    ImageName = "ImageSet_0";
    Modality = "CT";
    NumberOfImages = 101;
    ScanTimeFromScanner = "2020-01-01 10:00:00";
    SeriesDescription = "TÊTE";
  }};
}};
PlanList ={{
  Plan ={{
    PlanID = 0;
    PlanName = "CERVEAU";
    PlanIsLocked = 1;
  }};
  Plan ={{
    PlanID = 1;
    PlanName = "SEIN GAUCHE";
  }};
}};
""".encode("latin-1") + b"\n/* \x13~ */\n"
INSTITUTION_TEXT = f"""InstitutionID = 1;
InstitutionPath = "Institution_1";
PatientLiteList ={{
  PatientLite ={{
    PatientID = 3;
    PatientPath = "{PATIENT_PATH}";
    FormattedDescription = "LEFÈVRE&&Hélène-Marie&&N'DIAYE&&0012345&&DR MARTIN&&2020-01-01 10:00:00";
  }};
}};
""".encode("latin-1") + b"\n/* J\x06 */\n"


def _scan_patient_file(data: bytes):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        directory = root / PATIENT_PATH
        directory.mkdir(parents=True)
        (root / "Institution_1" / "Institution").write_bytes(INSTITUTION_TEXT)
        (directory / "Patient").write_bytes(data)
        return scan(root)


def test_intact_synthetic_patient_reads_cleanly():
    result = _scan_patient_file(PATIENT_TEXT)
    [patient] = result.patients
    assert result.warnings == []
    assert {k: getattr(patient, k) for k in IDENTITY} == IDENTITY
    assert patient.patient_id == 3
    assert patient.birth_date == "1950-03-12"
    assert patient.comment == 'dit "Léa"\ndeuxième ligne'
    assert [p.name for p in patient.plans] == ["CERVEAU", "SEIN GAUCHE"]


def _check_one_patient(result, data: bytes) -> object:
    [patient] = result.patients
    assert patient.path == PATIENT_PATH
    assert patient.listed_in_institution
    last_line = data.count(b"\n") + 1
    for warning in [*result.warnings, *patient.warnings]:
        assert warning.file == PATIENT_NAME, warning
        assert warning.line is None or 1 <= warning.line <= last_line + 1
    json.dumps(result.to_json())
    return patient


@settings(max_examples=80, deadline=None)
@given(cut=st.integers(0, len(PATIENT_TEXT)))
def test_truncated_patient_file_keeps_identity(cut):
    data = PATIENT_TEXT[:cut]
    patient = _check_one_patient(_scan_patient_file(data), data)
    # quoted values are never kept half-read, and what the Patient file lost the Institution file supplies
    assert {k: getattr(patient, k) for k in IDENTITY} == IDENTITY
    assert patient.patient_id == 3
    assert patient.birth_date in (None, "1950-03-12")
    assert {p.name for p in patient.plans} <= {"", "CERVEAU", "SEIN GAUCHE"}
    if cut < len(split_stamp(PATIENT_TEXT)[0]) and PATIENT_TEXT[:cut].rstrip()[-1:] not in (b";", b"}", b""):
        assert patient.warnings, f"Patient file cut at byte {cut} read without a warning"


@settings(max_examples=80, deadline=None)
@given(draw=st.data())
def test_garbled_patient_file_gives_one_patient(draw):
    kind = draw.draw(st.sampled_from(["flip", "insert", "delete", "duplicate"]), label="mutation")
    at = draw.draw(st.integers(0, len(PATIENT_TEXT) - 1), label="at")
    if kind == "flip":
        data = PATIENT_TEXT[:at] + bytes([PATIENT_TEXT[at] ^ draw.draw(st.integers(1, 255))]) + PATIENT_TEXT[at + 1 :]
    elif kind == "insert":
        data = PATIENT_TEXT[:at] + draw.draw(st.binary(min_size=1, max_size=30)) + PATIENT_TEXT[at:]
    elif kind == "delete":
        data = PATIENT_TEXT[:at] + PATIENT_TEXT[at + draw.draw(st.integers(1, 50)) :]
    else:
        start = draw.draw(st.integers(0, len(PATIENT_TEXT) - 1))
        data = PATIENT_TEXT[:at] + PATIENT_TEXT[start : start + draw.draw(st.integers(1, 200))] + PATIENT_TEXT[at:]
    patient = _check_one_patient(_scan_patient_file(data), data)
    for key in IDENTITY:
        assert isinstance(getattr(patient, key), str)


def _write_patient(root: Path, rel: str, image_name: bytes) -> None:
    directory = root / rel
    directory.mkdir(parents=True)
    (directory / "Patient").write_bytes(
        b'LastName = "DUPONT";\nImageSetList ={\n  ImageSet ={\n    ImageSetID = 0;\n'
        b'    ImageName = "' + image_name + b'";\n  };\n};\n')


def test_long_image_name_does_not_stop_the_scan(tmp_path):
    _write_patient(tmp_path, "Institution_1/Mount_0/Patient_1", b"ImageSet_0")
    _write_patient(tmp_path, "Institution_1/Mount_0/Patient_2", b"x" * 300)
    result = scan(tmp_path)
    assert [p.path for p in result.patients] == ["Institution_1/Mount_0/Patient_1", "Institution_1/Mount_0/Patient_2"]
    assert result.patients[1].last_name == "DUPONT"


@pytest.mark.parametrize("kind", ["relative", "absolute"])
def test_image_name_cannot_lead_outside_the_patient(tmp_path, kind):
    outside = tmp_path / "Institution_1" / "ImageSet_7.header"
    outside.parent.mkdir()
    outside.write_bytes(b"x_dim = 9;\ny_dim = 9;\nz_dim = 9;\n")
    name = "../../ImageSet_7" if kind == "relative" else str(outside)[: -len(".header")]
    _write_patient(tmp_path, "Institution_1/Mount_0/Patient_1", os.fsencode(name))
    [patient] = scan(tmp_path).patients
    assert [i.dimensions for i in patient.image_sets] == [None]
