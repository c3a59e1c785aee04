"""The C-FIND and retrieve queries of the DICOM node (catalog/dicom.py `find`, `held`) on a real SQLite catalog:
wildcards, UID lists, date ranges, one answer per SOP instance (the newest received), hostile values."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtvault.catalog import dicom
from rtvault.catalog.schema import open_catalog
from rtvault.store.receipts import ReceivedInstance

CT = "1.2.840.10008.5.1.4.1.1.2"


def instance(n: int, received: str = "2026-01-01T00:00:00Z", **tags: object) -> ReceivedInstance:
    base = {"SOPClassUID": CT, "SOPInstanceUID": f"1.2.3.{n}", "StudyInstanceUID": "1.2.9.1",
            "SeriesInstanceUID": "1.2.9.1.1", "PatientID": "PAT-A", "PatientName": "DUPONT^Jean",
            "StudyDate": "20240105", "Modality": "CT", "InstanceNumber": n, "TransferSyntaxUID": "1.2.840.10008.1.2.1"}
    return ReceivedInstance(f"{n:064x}", 10, received, "SCU", tags=base | tags)


@pytest.fixture
def catalog(tmp_path: Path):
    with open_catalog(f"sqlite:///{tmp_path / 'catalog.sqlite'}") as db:
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
