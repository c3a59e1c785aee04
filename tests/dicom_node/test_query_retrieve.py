"""Query/Retrieve with dcmtk: findscu at each level (Patient Root and Study Root), movescu to a dcmtk storescp
(the files it receives carry the data sets stored, byte for byte), getscu, an unknown move destination."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from kit.dicom_node import (
    ARCHIVE,
    SCU,
    answers,
    call,
    ct_series,
    data_set,
    held_now,
    make_site,
    running,
    sample,
    storescp,
)
from rtvault.configured import open_catalog_for


@pytest.fixture
def loaded(tmp_path: Path):
    """A node holding two patients: a CT series of 3 slices and an RT plan (patient A), a CT of 2 (patient B)."""
    site = make_site(tmp_path)
    first = ct_series(tmp_path / "a", 3, PatientID="PAT-A", PatientName="DUPONT^Jean", StudyDate="20240105",
                      AccessionNumber="ACC1")
    study_a = str(pydicom.dcmread(first[0]).StudyInstanceUID)
    plan = sample("rtplan.dcm", tmp_path / "a", PatientID="PAT-A", PatientName="DUPONT^Jean",
                  StudyInstanceUID=study_a, StudyDate="20240105")
    second = ct_series(tmp_path / "b", 2, PatientID="PAT-B", PatientName="MARTIN^Lea", StudyDate="20250310",
                       AccessionNumber="ACC2")
    with running(site) as node:
        done = call("storescu", site, files=[*first, plan, *second])
        assert done.returncode == 0, done.stderr
        yield site, node, {"a": first, "plan": plan, "b": second, "study_a": study_a}


def find(site, *keys: str, model: str = "-P") -> list[dict[str, str]]:
    done = call("findscu", site, "-v", model, *[arg for key in keys for arg in ("-k", key)])
    assert done.returncode == 0, done.stderr
    return answers(done)


def test_find_at_each_level(loaded) -> None:
    site, _node, made = loaded
    patients = find(site, "QueryRetrieveLevel=PATIENT", "PatientID", "PatientName=DUP*",
                    "NumberOfPatientRelatedInstances")
    assert [(a["PatientID"], a["PatientName"], a["NumberOfPatientRelatedInstances"]) for a in patients] == \
        [("PAT-A", "DUPONT^Jean", "4")]
    assert find(site, "QueryRetrieveLevel=PATIENT", "PatientID", "PatientName=dupon?^jean") != []  # ? and case
    studies = find(site, "QueryRetrieveLevel=STUDY", "StudyInstanceUID", "StudyDate=20250101-", "PatientID",
                   "ModalitiesInStudy", model="-S")
    assert [(a["PatientID"], a["ModalitiesInStudy"]) for a in studies] == [("PAT-B", "CT")]
    both = find(site, "QueryRetrieveLevel=STUDY", "StudyInstanceUID", "AccessionNumber", "StudyDate=-20251231",
                model="-S")
    assert sorted(a["AccessionNumber"] for a in both) == ["ACC1", "ACC2"]
    series = find(site, "QueryRetrieveLevel=SERIES", f"StudyInstanceUID={made['study_a']}", "SeriesInstanceUID",
                  "Modality", "NumberOfSeriesRelatedInstances")
    assert sorted((a["Modality"], a["NumberOfSeriesRelatedInstances"]) for a in series) == \
        [("CT", "3"), ("RTPLAN", "1")]
    ct_series_uid = str(pydicom.dcmread(made["a"][0]).SeriesInstanceUID)
    images = find(site, "QueryRetrieveLevel=IMAGE", f"SeriesInstanceUID={ct_series_uid}", "SOPInstanceUID",
                  "InstanceNumber", model="-S")
    assert sorted(a["InstanceNumber"] for a in images) == ["1", "2", "3"]
    one = str(pydicom.dcmread(made["b"][1]).SOPInstanceUID)
    assert [a["SOPInstanceUID"] for a in find(site, "QueryRetrieveLevel=IMAGE", f"SOPInstanceUID={one}")] == [one]
    assert find(site, "QueryRetrieveLevel=PATIENT", "PatientID=NOBODY") == []
    # the Study Root model has no PATIENT level: refused with 0xA900, audited
    done = call("findscu", site, "-v", "-S", "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID")
    assert "DataSetDoesNotMatchSOPClass" in done.stdout + done.stderr
    with open_catalog_for(site.config) as catalog:
        finds = catalog.execute("SELECT username, detail, result FROM audit WHERE action = 'dicom_find'")
    assert all(user == SCU for user, _, _ in finds) and any('"level":"SERIES"' in d for _, d, _ in finds)


def test_move_to_a_storescp_byte_for_byte(loaded, tmp_path: Path) -> None:
    site, node, made = loaded
    with storescp(site.archive_port, tmp_path / "received"):
        done = call("movescu", site, "-v", "-S", "-aem", ARCHIVE, "-k", "QueryRetrieveLevel=STUDY",
                    "-k", f"StudyInstanceUID={made['study_a']}")
        assert done.returncode == 0, done.stderr
    received = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in (tmp_path / "received").iterdir()}
    sent = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in [*made["a"], made["plan"]]}
    assert set(received) == set(sent)
    stored = held_now(site, node)
    for uid in sent:
        assert data_set(received[uid]) == data_set(stored[uid])  # as stored, in its own transfer syntax
    for path in made["a"]:  # CT sent in its own syntax: the very bytes of the file
        assert data_set(received[str(pydicom.dcmread(path).SOPInstanceUID)]) == data_set(path)
    assert node.summary.moved == 4
    unknown = call("movescu", site, "-v", "-S", "-aem", "NOWHERE", "-k", "QueryRetrieveLevel=STUDY",
                   "-k", f"StudyInstanceUID={made['study_a']}")
    assert "Refused: MoveDestinationUnknown" in unknown.stdout + unknown.stderr  # 0xA801
    with open_catalog_for(site.config) as catalog:
        moves = catalog.execute("SELECT detail, result FROM audit WHERE action = 'dicom_move' ORDER BY id")
    assert '"count":4' in moves[0][0] and moves[0][1] == "ok"
    assert moves[1][1].startswith("refused 0xA801")


def test_get_back_on_the_same_association(loaded, tmp_path: Path) -> None:
    site, node, made = loaded
    out = tmp_path / "got"
    out.mkdir()
    series_b = str(pydicom.dcmread(made["b"][0]).SeriesInstanceUID)
    done = call("getscu", site, "-v", "-P", "-od", str(out), "+B", "-k", "QueryRetrieveLevel=SERIES",
                "-k", "PatientID=PAT-B", "-k", f"SeriesInstanceUID={series_b}")
    assert done.returncode == 0, done.stderr
    got = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in out.iterdir()}
    sent = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in made["b"]}
    assert set(got) == set(sent)
    for uid, path in sent.items():
        assert data_set(got[uid]) == data_set(path)
    assert node.summary.got == 2
