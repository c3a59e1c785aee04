"""The C-FIND and retrieve queries of the DICOM node (catalog/dicom.py `find`, `held`) on SQLite and on PostgreSQL
(a French ICU collation): wildcards, UID lists, date ranges, one answer per SOP instance (the newest received),
hostile values."""

from __future__ import annotations

import pytest

from rtvault.catalog import dicom, dicom_patients
from rtvault.catalog.schema import open_catalog
from rtvault.store.receipts import ReceivedInstance

CT = "1.2.840.10008.5.1.4.1.1.2"


def instance(n: int, received: str = "2026-01-01T00:00:00Z", **tags: object) -> ReceivedInstance:
    base = {"SOPClassUID": CT, "SOPInstanceUID": f"1.2.3.{n}", "StudyInstanceUID": "1.2.9.1",
            "SeriesInstanceUID": "1.2.9.1.1", "PatientID": "PAT-A", "PatientName": "DUPONT^Jean",
            "StudyDate": "20240105", "Modality": "CT", "InstanceNumber": n, "TransferSyntaxUID": "1.2.840.10008.1.2.1"}
    return ReceivedInstance(f"{n:064x}", 10, received, "SCU", tags=base | tags)


@pytest.fixture
def catalog(catalog_url: str):
    with open_catalog(catalog_url) as db:
        dicom.add(db, "store-1", "r1", "site", [
            instance(1), instance(2), instance(3, SeriesInstanceUID="1.2.9.1.2", Modality="RTPLAN",
                                                 RTPlanLabel="Prostate"),
            instance(4, PatientID="PAT_B", PatientName="MARTIN^Léa", StudyInstanceUID="1.2.9.2",
                     SeriesInstanceUID="1.2.9.2.1", StudyDate="20250310", AccessionNumber="ACC%1"),
            # the same SOP instance received again, other bytes, later: it is the one answered
            ReceivedInstance("f" * 64, 11, "2026-02-01T00:00:00Z", "SCU",
                             tags=instance(2).tags | {"InstanceNumber": 22}),
        ])
        dicom.add(db, "store-2", "r9", "site", [instance(9, PatientID="ELSEWHERE")])
        yield db


def keys(answers: list[dict], *names: str) -> list[tuple]:
    return [tuple(a[n] for n in names) for a in answers]


def test_levels_and_counts(catalog) -> None:
    patients = dicom.find(catalog, "PATIENT", {"PatientID": "", "PatientName": ""}, store="store-1")
    assert keys(patients, "PatientID", "NumberOfPatientRelatedStudies", "NumberOfPatientRelatedInstances") == \
        [("PAT-A", 1, 3), ("PAT_B", 1, 1)]
    studies = dicom.find(catalog, "STUDY", {"PatientID": "PAT-A"}, store="store-1")
    assert keys(studies, "StudyInstanceUID", "ModalitiesInStudy", "NumberOfStudyRelatedSeries") == \
        [("1.2.9.1", ["CT", "RTPLAN"], 2)]
    images = dicom.find(catalog, "IMAGE", {"SeriesInstanceUID": "1.2.9.1.1"}, store="store-1")
    assert keys(images, "SOPInstanceUID", "InstanceNumber") == [("1.2.3.1", 1), ("1.2.3.2", 22)]  # newest
    assert [h.hash for h in dicom.held(catalog, "SERIES", {"SeriesInstanceUID": "1.2.9.1.1"}, store="store-1")] \
        == [f"{1:064x}", "f" * 64]
    assert dicom.find(catalog, "PATIENT", {}, store=None)[-1]["PatientID"] == "PAT_B"
    assert [a["PatientID"] for a in dicom.find(catalog, "PATIENT", {}, store=None)] == ["ELSEWHERE", "PAT-A", "PAT_B"]


@pytest.mark.parametrize(("criteria", "found"), [
    ({"PatientName": "dup*"}, ["PAT-A"]),
    ({"PatientName": "MARTIN^L?a"}, ["PAT_B"]),
    ({"PatientName": "martin^léa"}, ["PAT_B"]),  # a name without case
    ({"PatientID": "PAT?A"}, ["PAT-A"]),
    ({"PatientID": "PAT_*"}, ["PAT_B"]),  # _ is a character, not a wildcard
    ({"PatientID": "PAT%"}, []),  # % too
    ({"AccessionNumber": "ACC%1"}, ["PAT_B"]),
    ({"StudyDate": "20250101-"}, ["PAT_B"]),
    ({"StudyDate": "-20241231"}, ["PAT-A"]),
    ({"StudyDate": "20240101-20251231"}, ["PAT-A", "PAT_B"]),
    ({"StudyDate": "20240105"}, ["PAT-A"]),
    ({"StudyInstanceUID": "1.2.9.2\\1.2.9.1"}, ["PAT-A", "PAT_B"]),
    ({"Modality": "RTPLAN"}, ["PAT-A"]),
    ({"SOPInstanceUID": "1.2.3.4"}, ["PAT_B"]),
    ({"PatientID": "'; DROP TABLE dicom_instances; --"}, []),
    ({"UnknownKeyword": "x", "PatientID": "*"}, ["PAT-A", "PAT_B"]),
])
def test_matching(catalog, criteria: dict, found: list[str]) -> None:
    assert [a["PatientID"] for a in dicom.find(catalog, "PATIENT", criteria, store="store-1")] == found


def test_an_unknown_level_is_refused(catalog) -> None:
    with pytest.raises(ValueError):
        dicom.find(catalog, "FRAME", {})


def test_a_hostile_uid_list_is_refused_before_sql(catalog) -> None:
    with pytest.raises(ValueError, match="at most 1000"):
        dicom.find(catalog, "IMAGE", {"SOPInstanceUID": "\\".join(f"1.2.{n}" for n in range(40_000))})


@pytest.mark.parametrize(("criteria", "found"), [
    ({"PatientID": "pat?a"}, []),  # wildcards keep the case of every value but a name's
    ({"PatientID": "pat-a"}, []),
    ({"PatientName": "LÉONIE^*"}, ["PAT-É"]),  # a name without case, non-ASCII letters too
    ({"PatientName": "léonie^éva"}, ["PAT-É"]),
    ({"PatientName": "*ÉVA"}, ["PAT-É"]),
    ({"PatientName": "a\\b*"}, ["PAT-\\"]),  # a backslash is a character, not LIKE's escape
    ({"PatientID": "PAT-\\"}, ["PAT-\\"]),
    ({"PatientID": "PAT-\\*"}, ["PAT-\\"]),
])
def test_case_and_backslashes_match_alike_on_both_databases(catalog, criteria: dict, found: list[str]) -> None:
    dicom.add(catalog, "store-3", "r3", "site", [
        instance(5, PatientID="PAT-É", PatientName="Léonie^Éva"), instance(12),
        instance(6, PatientID="PAT-\\", PatientName="A\\B^C", StudyInstanceUID="1.2.9.6")])
    assert [a["PatientID"] for a in dicom.find(catalog, "PATIENT", criteria, store="store-3")] == found


def test_ranges_and_order_are_byte_order_whatever_the_collation(catalog) -> None:
    dicom.add(catalog, "store-3", "r3", "site", [
        instance(7, PatientID="b-7", StudyInstanceUID="1.2.10", StudyTime="101500.5", PatientBirthDate="19600101"),
        instance(8, PatientID="B_8", StudyInstanceUID="1.2.9", StudyTime="0930", PatientBirthDate="19600202"),
        instance(9, PatientID="a 9", StudyInstanceUID="1.2.9.0", StudyTime="", InstanceNumber=None)])
    # a French collation would put "a 9" < "b-7" < "B_8" and "1.2.10" after "1.2.9": bytes put capitals first
    assert [a["PatientID"] for a in dicom.find(catalog, "PATIENT", {}, store="store-3")] == ["B_8", "a 9", "b-7"]
    assert [a["StudyInstanceUID"] for a in dicom.find(catalog, "STUDY", {}, store="store-3")] == \
        ["1.2.10", "1.2.9", "1.2.9.0"]
    assert [a["PatientID"] for a in dicom.find(catalog, "STUDY", {"StudyTime": "1000-1015"}, store="store-3")] \
        == ["b-7"]  # 101500.5 is within 1015: the end of a range covers its fractions
    assert [a["PatientID"] for a in dicom.find(catalog, "STUDY", {"StudyTime": "-0959"}, store="store-3")] \
        == ["B_8"]  # an empty time is in no range
    assert [a["PatientID"] for a in dicom.find(catalog, "PATIENT", {"PatientBirthDate": "19591231-19600131"},
                                               store="store-3")] == ["b-7"]


def test_numbers_beyond_their_range_are_indexed_and_match_nothing(catalog) -> None:
    dicom.add(catalog, "store-3", "r3", "site", [
        instance(10, InstanceNumber="99999999999999999999999", SeriesNumber=2 ** 31),
        instance(11, InstanceNumber=-(2 ** 31), SeriesNumber=" 7 ")])
    images = dicom.find(catalog, "IMAGE", {}, store="store-3")
    assert keys(images, "SOPInstanceUID", "InstanceNumber", "SeriesNumber") == [("1.2.3.10", "", ""),
                                                                                ("1.2.3.11", -(2 ** 31), 7)]
    assert dicom.find(catalog, "IMAGE", {"InstanceNumber": "99999999999999999999999"}, store="store-3") == []
    assert [h.sop_instance for h in dicom.held(catalog, "SERIES", {"SeriesInstanceUID": "1.2.9.1.1"},
                                               store="store-3")] == ["1.2.3.11", "1.2.3.10"]  # no number: last


def test_a_patients_objects_by_patient_id_catalog_key_or_mrn(catalog) -> None:
    by_id = dicom.of_patients(catalog, "store-1", ["PAT-A"])
    assert [(h.sop_instance, h.modality) for h in by_id] == [("1.2.3.1", "CT"), ("1.2.3.2", "CT"),
                                                             ("1.2.3.3", "RTPLAN")]
    assert by_id[1].hash == f"{2:064x}"  # one per SOP instance: the first in instance order
    [martin] = dicom.of_patients(catalog, "store-1", [dicom_patients.dicom_key("site", "", "PAT_B")])
    assert dicom.of_patients(catalog, "store-1", ["PAT_B", "", "PAT_B"]) == [martin]  # its MRN
    assert dicom.of_patients(catalog, "store-2", ["PAT-A"]) == [] == dicom.of_patients(catalog, "store-1", [""])


def test_nul_and_lone_surrogates_sent_by_a_peer_are_indexed_without_them(catalog) -> None:
    dicom.add(catalog, "store-3", "r3", "site", [
        instance(13, PatientID="PAT\0-Z", PatientName="DU\0PONT^Jean", StudyDescription="ab\udcffc",
                 RTPlanLabel="plan\0", ROINames=["PTV\0", "rein \ud800"])])
    [image] = dicom.find(catalog, "IMAGE", {"PatientID": "PAT-Z", "PatientName": "dupont^jean"}, store="store-3")
    assert (image["StudyDescription"], image["RTPlanLabel"]) == ("ab?c", "plan")
    assert catalog.one("SELECT roi_names FROM dicom_instances WHERE sop_instance = '1.2.3.13'") == (
        '["PTV\\u0000", "rein ?"]',)


def test_old_format_dates_from_old_media_are_indexed_as_dates(catalog) -> None:
    """ACR-NEMA's `YYYY.MM.DD` (old CDs still carry it) compares as a date in a range query, as a current
    `YYYYMMDD` does; a value that is no date of either form is kept as sent."""
    dicom.add(catalog, "store-4", "r4", "site", [
        instance(20, PatientID="OLD", PatientBirthDate="1960.02.02", StudyDate="1998.12.31 ", StudyInstanceUID="1.20"),
        instance(21, PatientID="NEW", PatientBirthDate="19600315", StudyDate="19990105", StudyInstanceUID="1.21"),
        instance(22, PatientID="ODD", PatientBirthDate="1960-02-02", StudyDate="unknown", StudyInstanceUID="1.22")])
    found = dicom.find(catalog, "PATIENT", {"PatientBirthDate": "19600101-19600331"}, store="store-4")
    assert [a["PatientID"] for a in found] == ["NEW", "OLD"]
    studies = dicom.find(catalog, "STUDY", {"StudyDate": "19981201-19990131"}, store="store-4")
    assert sorted((a["PatientID"], a["StudyDate"]) for a in studies) == [("NEW", "19990105"), ("OLD", "19981231")]
    assert catalog.one("SELECT birth_date, study_date FROM dicom_instances WHERE sop_instance = '1.2.3.22'") == (
        "1960-02-02", "unknown")
