"""Discovery of institutions and patients, and per-patient metadata, on hand-built trees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rtvault.errors import InputError
from rtvault.pinnacle import scan

STAMP = b"\n/* \x8a\x13 */\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("latin-1") + STAMP)
    return path


def patient_file(number: int, last: str, first: str, mrn: str, dob: str = "", plans=(), image_sets=()) -> str:
    plan_items = "".join(
        f'  Plan ={{\n    PlanID = {i};\n    PlanName = "{name}";\n    Physicist = "Ph";\n'
        f'    Dosimetrist = "Do";\n    PlanIsLocked = {i % 2};\n  }};\n'
        for i, name in enumerate(plans)
    )
    image_items = "".join(
        f'  ImageSet ={{\n    ImageSetID = {i};\n    ImageName = "ImageSet_{i}";\n    Modality = "CT";\n'
        f'    SeriesDescription = "{desc}";\n    ScanTimeFromScanner = "2025-03-0{i + 1} 09:30:00";\n  }};\n'
        for i, desc in enumerate(image_sets)
    )
    return (
        f'PatientID = {number};\nPatientPath = "Institution_1/Mount_0/Patient_{number}";\n'
        f'LastName = "{last}";\nFirstName = "{first}";\nMiddleName = "";\n'
        f'MedicalRecordNumber = "{mrn}";\nRadiationOncologist = "Dr MARTIN";\nReferringPhysician = "Dr Roux";\n'
        f'Diagnosis = "C50.9 Sein";\nComment = "";\nGender = "Female";\nDateOfBirth = "{dob}";\n'
        f"ImageSetList ={{\n{image_items}}};\nPlanList ={{\n{plan_items}}};\n"
    )


def institution_file(entries: list[tuple[int, str, str, str]]) -> str:
    lites = "".join(
        f'  PatientLite ={{\n    PatientID = {n};\n    PatientPath = "Institution_1/Mount_0/Patient_{n}";\n'
        f'    MountPoint = "Mount_0";\n    FormattedDescription = "{last}&&{first}&&&&{mrn}&&Dr MARTIN&&'
        f'2025-01-01 10:00:00";\n  }};\n'
        for n, last, first, mrn in entries
    )
    return f'InstitutionID = 1;\nInstitutionPath = "Institution_1";\nPatientLiteList ={{\n{lites}}};\n'


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Institution lists patients 1, 2 and 10; directories exist for 1, 3 and 10."""
    root = tmp_path / "NewPatients"
    inst = root / "Institution_1"
    write(inst / "Institution", institution_file(
        [(1, "LEFÈVRE", "Hélène", "MRN001"), (2, "GONE", "Lost", "MRN002"), (10, "N'DIAYE", "Awa", "MRN010")]))
    p1 = inst / "Mount_0/Patient_1"
    write(p1 / "Patient", patient_file(1, "LEFÈVRE", "Hélène", "MRN001", "1950/03/12",
                                       plans=["SEIN G", "BOOST"], image_sets=["THORAX"]))
    write(p1 / "ImageSet_0.header", "x_dim = 64;\ny_dim = 48;\nz_dim = 10;\nx_pixdim = 0.1;\nmodality : CT\n")
    (p1 / "ImageSet_0.img").write_bytes(b"\x00\x01" * 500)
    (p1 / "Plan_0").mkdir()
    (p1 / "Plan_0/plan.Trial").write_bytes(b"Trial ={ Name = \"T\"; };\n")
    (p1 / "Plan_7").mkdir()  # on disk, not in PlanList
    write(inst / "Mount_0/Patient_3/Patient", patient_file(3, "DUPONT-MOREAU", "Jean-Baptiste", "MRN003"))
    write(inst / "Mount_1/Patient_10/Patient", patient_file(10, "N'DIAYE", "Awa", "MRN010", "03/04/1961"))
    return root


def by_path(result):
    return {p.path: p for p in result.patients}


def test_patients_from_directories_and_institution_file(db):
    result = scan(db)
    assert [p.path for p in result.patients] == [
        "Institution_1/Mount_0/Patient_1", "Institution_1/Mount_0/Patient_3", "Institution_1/Mount_1/Patient_10"]
    patients = by_path(result)
    assert patients["Institution_1/Mount_0/Patient_1"].listed_in_institution
    unlisted = patients["Institution_1/Mount_0/Patient_3"]
    assert not unlisted.listed_in_institution
    assert any("not listed in the Institution file" in w.message for w in unlisted.warnings)
    missing = [w for w in result.warnings if w.file == "Institution_1/Mount_0/Patient_2"]
    assert len(missing) == 1 and "directory is missing" in missing[0].message and "GONE" in missing[0].message


def test_entry_path_on_another_mount_is_matched_by_relative_path(db):
    # The Institution file says Mount_0/Patient_10, the directory is Mount_1/Patient_10: both are reported.
    result = scan(db)
    assert "Institution_1/Mount_1/Patient_10" in by_path(result)
    assert any(w.file == "Institution_1/Mount_0/Patient_10" for w in result.warnings)


def test_identity_and_metadata(db):
    p = by_path(scan(db))["Institution_1/Mount_0/Patient_1"]
    assert (p.last_name, p.first_name, p.mrn, p.patient_id) == ("LEFÈVRE", "Hélène", "MRN001", 1)
    assert p.birth_date == "1950-03-12"
    assert p.gender == "Female"
    assert p.radiation_oncologist == "Dr MARTIN"
    assert p.physicians == {"referring": "Dr Roux"}
    assert p.diagnosis == "C50.9 Sein"
    assert [(pl.id, pl.name, pl.locked, pl.directory_present) for pl in p.plans] == [
        (0, "SEIN G", False, True), (1, "BOOST", True, False), (7, "", False, True)]
    assert any("Plan_7 is on disk but not in PlanList" in w.message for w in p.warnings)
    [image_set] = p.image_sets
    assert image_set.dimensions == {"x": 64, "y": 48, "z": 10}
    assert image_set.series_description == "THORAX"
    assert image_set.scan_date == "2025-03-01T09:30:00"
    assert image_set.bytes == 1000 + (db / p.path / "ImageSet_0.header").stat().st_size


def test_size_count_and_last_modified(db):
    directory = db / "Institution_1/Mount_0/Patient_1"
    os.utime(directory / "ImageSet_0.img", (1_700_000_000, 1_700_000_000))
    for f in directory.rglob("*"):
        if f.is_file() and f.name != "ImageSet_0.img":
            os.utime(f, (1_600_000_000, 1_600_000_000))
    p = by_path(scan(db))["Institution_1/Mount_0/Patient_1"]
    files = [f for f in directory.rglob("*") if f.is_file()]
    assert p.file_count == len(files) == 4
    assert p.size_bytes == sum(f.stat().st_size for f in files)
    assert p.last_modified == "2023-11-14T22:13:20Z"


def test_ambiguous_birth_date_is_null_with_a_warning(db):
    p = by_path(scan(db))["Institution_1/Mount_1/Patient_10"]
    assert p.birth_date is None
    assert any(w.file.endswith("Patient_10/Patient") and "ambiguous" in w.message for w in p.warnings)


def test_missing_patient_file_keeps_identity_from_institution(db):
    (db / "Institution_1/Mount_0/Patient_1/Patient").unlink()
    p = by_path(scan(db))["Institution_1/Mount_0/Patient_1"]
    assert (p.last_name, p.first_name, p.mrn) == ("LEFÈVRE", "Hélène", "MRN001")
    assert any("missing" in w.message for w in p.warnings)


def test_institution_and_patient_directories_give_the_same_paths(db):
    inst = scan(db / "Institution_1")
    assert [p.path for p in inst.patients] == [p.path for p in scan(db).patients]
    one = scan(db / "Institution_1/Mount_0/Patient_3")
    assert [p.path for p in one.patients] == ["Institution_1/Mount_0/Patient_3"]
    assert one.patients[0].last_name == "DUPONT-MOREAU"


def test_root_level_institution_file_as_in_an_export(tmp_path):
    write(tmp_path / "Institution", institution_file([(4, "ÉLISE", "Zoé", "M4")]))
    write(tmp_path / "Institution_1/Mount_0/Patient_4/Patient", patient_file(4, "ÉLISE", "Zoé", "M4"))
    result = scan(tmp_path)
    assert [p.listed_in_institution for p in result.patients] == [True]
    assert result.warnings == []


def test_bare_patient_directories_of_old_archives(tmp_path):
    write(tmp_path / "Patient_12/Patient", patient_file(12, "OLD", "Solaris", "M12"))
    result = scan(tmp_path)
    assert [(p.path, p.last_name) for p in result.patients] == [("Patient_12", "OLD")]


def test_institution_without_institution_file_is_reported(tmp_path):
    write(tmp_path / "Institution_2/Mount_0/Patient_1/Patient", patient_file(1, "A", "B", "C"))
    result = scan(tmp_path)
    assert len(result.patients) == 1
    assert any(w.file == "Institution_2" and "no Institution file" in w.message for w in result.warnings)


@pytest.mark.parametrize("make", ["missing", "file", "empty"])
def test_bad_paths_are_input_errors(tmp_path, make):
    target = tmp_path / "x"
    if make == "file":
        target.write_text("not a database")
    elif make == "empty":
        target.mkdir()
    with pytest.raises(InputError) as raised:
        scan(target)
    assert str(target) in str(raised.value)


def test_fixture_patient(pinnacle_sample):
    result = scan(pinnacle_sample)
    assert result.warnings == []
    [p] = result.patients
    assert (p.path, p.last_name, p.first_name, p.middle_name, p.mrn) == (
        "Institution_1/Mount_0/Patient_1", "LAST", "FIRST", "M", "000000")
    assert p.birth_date == "2020-01-01"
    assert [(pl.id, pl.name) for pl in p.plans] == [(0, "BRAIN"), (1, "CopyOf_1_BRAIN")]
    assert p.image_sets[0].dimensions == {"x": 512, "y": 512, "z": 101}
    assert p.image_sets[0].modality == "CT"


def test_a_patient_file_with_a_utf8_byte_order_mark_keeps_its_last_name(db):
    patient = db / "Institution_1/Mount_0/Patient_3/Patient"
    data = b"\xef\xbb\xbf" + patient_file(3, "DUPONT-MOREAU", "Jean-Baptiste", "MRN003").encode("latin-1") + STAMP
    patient.write_bytes(data)
    found = by_path(scan(db))["Institution_1/Mount_0/Patient_3"]
    assert (found.patient_id, found.last_name, found.first_name, found.mrn) == (
        3, "DUPONT-MOREAU", "Jean-Baptiste", "MRN003")
    assert any("UTF-8 byte order mark" in w.message for w in found.warnings), found.warnings
    assert patient.read_bytes() == data  # only read
