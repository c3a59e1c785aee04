"""`rtvault dicom echo|send|find|move|check` against real peers on loopback (Orthanc, dcmtk storescp), as a user
runs them: what works says so, and each usual fault (closed port, wrong AE titles, a SOP class the peer does not
accept, a peer that aborts) is one sentence with its exit code."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from kit.cli import rtvault, rtvault_json
from kit.dicom import OrthancServer
from kit.dicom_peers import closed_port, declare_modality, orthanc_with, peers_config, refusing_scp, storescp

pytestmark = pytest.mark.slow

TEST_FILES = ("CT_small.dcm", "rtplan.dcm", "rtstruct.dcm", "rtdose.dcm")


def _objects(directory: Path) -> list[Path]:
    """pydicom's own test objects, copied under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    copies = [Path(shutil.copy(get_testdata_file(name), directory / name)) for name in TEST_FILES]
    ct = pydicom.dcmread(copies[0])
    del ct[0xFFFCFFFC]  # its Data Set Trailing Padding, which Orthanc drops when it stores an object
    ct.save_as(copies[0])
    return copies


@pytest.fixture
def known_orthanc(orthanc: OrthancServer) -> OrthancServer:
    """The session's Orthanc, empty, knowing rtvault's AE title (C-FIND and C-MOVE need it)."""
    orthanc.clear()
    declare_modality(orthanc, "rtvault", "RTVAULT", 104)
    return orthanc


def test_echo_send_find_and_check_against_orthanc(tmp_path: Path, known_orthanc: OrthancServer) -> None:
    config = peers_config(tmp_path / "rtvault.toml", {"orthanc": (known_orthanc.aet, known_orthanc.dicom_port)})
    echoed = rtvault_json(config, "dicom", "echo", "orthanc")
    assert echoed["ok"] and echoed["peer"] == "orthanc" and echoed["ms"] >= 0

    files = _objects(tmp_path / "objects")
    sent = rtvault_json(config, "dicom", "send", "orthanc", tmp_path / "objects")
    assert sent["sent"] == 4 and sent["failed"] == 0
    assert {o["status"] for o in sent["objects"]} == {"0x0000"}
    held = {i["SOPInstanceUID"] for i in known_orthanc.instances()}
    assert held == {str(pydicom.dcmread(f, force=True).SOPInstanceUID) for f in files}

    ct = pydicom.dcmread(files[0], force=True)
    found = rtvault_json(config, "dicom", "find", "orthanc", "--patient-id", str(ct.PatientID))
    assert found["level"] == "study" and str(ct.StudyInstanceUID) in {m["StudyInstanceUID"] for m in found["matches"]}
    series = rtvault_json(config, "dicom", "find", "orthanc", "--level", "series", "--modality", "RTPLAN")
    assert [m["Modality"] for m in series["matches"]] == ["RTPLAN"]
    text = rtvault(config, "dicom", "find", "orthanc", "--level", "patient", "--name", "*").stdout
    assert "patient match(es) on orthanc" in text

    checked = rtvault_json(config, "dicom", "check", "orthanc")
    assert [(s["step"], s["ok"]) for s in checked["steps"]] == [("echo", True), ("store", True), ("find", True)]
    assert {i["PatientID"] for i in known_orthanc.instances()} >= {"RTVAULT-TEST"}


def test_send_to_storescp_is_byte_identical(tmp_path: Path) -> None:
    files = _objects(tmp_path / "objects")
    with storescp(tmp_path / "scp") as scp:
        config = peers_config(tmp_path / "rtvault.toml", {"scp": (scp.ae_title, scp.port)})
        sent = rtvault_json(config, "dicom", "send", "scp", *files)
        assert sent["sent"] == 4
        received = scp.files()
    original = {pydicom.dcmread(f, force=True).SOPInstanceUID: f.read_bytes() for f in files}
    assert len(received) == 4
    for path in received:
        data = path.read_bytes()
        uid = pydicom.dcmread(path, force=True).SOPInstanceUID
        # storescp writes its own meta; the data set after it is the original's, byte for byte
        assert _data_set(data) == _data_set(original[uid])


def _data_set(data: bytes) -> bytes:
    """The data set of a DICOM file: after its File Meta Information, or the whole of a file without one."""
    if data[128:132] != b"DICM":
        return data
    return data[132 + 12 + int.from_bytes(data[140:144], "little"):]


def test_move_from_orthanc_to_storescp_delivers_identical_objects(tmp_path: Path,
                                                                   known_orthanc: OrthancServer) -> None:
    files = _objects(tmp_path / "objects")
    for path in files:
        known_orthanc.upload(path)
    with storescp(tmp_path / "scp", "MOVESCP") as scp:
        declare_modality(known_orthanc, "movescp", scp.ae_title, scp.port)
        config = peers_config(tmp_path / "rtvault.toml", {"orthanc": (known_orthanc.aet, known_orthanc.dicom_port),
                                                          "storescp": (scp.ae_title, scp.port)})
        ct = pydicom.dcmread(files[0], force=True)
        moved = rtvault_json(config, "dicom", "move", "orthanc", "--to", "storescp", "--study-uid",
                             str(ct.StudyInstanceUID))
        received = scp.files()
    assert moved["completed"] == len(received) >= 1 and moved["failed"] == 0
    originals = {pydicom.dcmread(f, force=True).SOPInstanceUID: f.read_bytes() for f in files}
    for path in received:
        data = path.read_bytes()
        original = originals[pydicom.dcmread(path, force=True).SOPInstanceUID]
        assert _data_set(data) == _data_set(original)


def test_a_closed_port_and_an_unknown_peer_are_one_sentence_each(tmp_path: Path) -> None:
    config = peers_config(tmp_path / "rtvault.toml", {"gone": ("GONE", closed_port())})
    done = rtvault(config, "dicom", "echo", "gone", expect=11)
    assert "refused the connection" in done.stderr and "[dicom.peers.gone] host and port" in done.stderr
    checked = rtvault_json(config, "dicom", "check", "gone", expect=7)
    assert [s["ok"] for s in checked["steps"]] == [False, False, False]
    assert checked["steps"][1]["message"].startswith("not tried")
    unknown = rtvault(config, "dicom", "echo", "pacs", expect=3)
    assert "no DICOM peer named 'pacs'" in unknown.stderr and "gone" in unknown.stderr


def test_orthanc_refusing_our_ae_titles_says_which_to_fix(tmp_path: Path) -> None:
    with orthanc_with(tmp_path / "strict", DicomAlwaysAllowEcho=False, DicomAlwaysAllowStore=False,
                      DicomCheckCalledAet=True) as strict:
        config = peers_config(tmp_path / "rtvault.toml", {"strict": (strict.aet, strict.dicom_port),
                                                          "typo": ("NOTORTHANC", strict.dicom_port)})
        unknown = rtvault(config, "dicom", "echo", "strict", expect=11)
        assert "does not know rtvault's calling AE title RTVAULT" in unknown.stderr
        assert "add RTVAULT to the peer's known modalities" in unknown.stderr
        wrong = rtvault(config, "dicom", "echo", "typo", expect=11)
        assert "called AE title NOTORTHANC" in wrong.stderr and "[dicom.peers.typo] ae_title" in wrong.stderr
        checked = rtvault_json(config, "dicom", "check", "strict", expect=7)
        assert all("calling AE title RTVAULT" in s["message"] for s in checked["steps"])


def test_a_sop_class_the_peer_does_not_accept_is_named(tmp_path: Path, known_orthanc: OrthancServer) -> None:
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ct.SOPClassUID = ct.file_meta.MediaStorageSOPClassUID = "1.2.826.0.1.3680043.2.1143.999.1"  # private
    ct.SOPInstanceUID = ct.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ct.save_as(tmp_path / "private.dcm")
    good = Path(shutil.copy(get_testdata_file("rtplan.dcm"), tmp_path / "rtplan.dcm"))
    config = peers_config(tmp_path / "rtvault.toml", {"orthanc": (known_orthanc.aet, known_orthanc.dicom_port)})
    alone = rtvault(config, "dicom", "send", "orthanc", tmp_path / "private.dcm", expect=11)
    assert "accepts none of the SOP classes proposed (1.2.826.0.1.3680043.2.1143.999.1)" in alone.stderr
    mixed = rtvault_json(config, "dicom", "send", "orthanc", tmp_path / "private.dcm", good, expect=9)
    by_path = {Path(o["path"]).name: o for o in mixed["objects"]}
    assert by_path["rtplan.dcm"]["ok"] and not by_path["private.dcm"]["ok"]
    assert "does not accept 1.2.826.0.1.3680043.2.1143.999.1" in by_path["private.dcm"]["message"]


def test_a_peer_that_aborts_is_said(tmp_path: Path) -> None:
    files = _objects(tmp_path / "objects")
    with storescp(tmp_path / "scp", "ABORTER", "--abort-after") as scp:
        config = peers_config(tmp_path / "rtvault.toml", {"aborter": (scp.ae_title, scp.port)})
        done = rtvault_json(config, "dicom", "send", "aborter", *files, expect=11)
        said = rtvault(config, "dicom", "send", "aborter", files[1], expect=11).stderr
    assert done["sent"] == 0 and "aborted the association" in done["objects"][0]["message"]
    assert all(not o["ok"] for o in done["objects"]) and "receiving earlier objects" in done["objects"][1]["message"]
    assert "nothing was stored: peer aborter (ABORTER at 127.0.0.1:" in said


def test_a_store_failure_status_is_named_with_its_meaning(tmp_path: Path) -> None:
    files = _objects(tmp_path / "objects")
    with refusing_scp(0xA700) as port:
        config = peers_config(tmp_path / "rtvault.toml", {"full": ("FULLSCP", port)})
        done = rtvault_json(config, "dicom", "send", "full", files[0], expect=9)
        said = rtvault(config, "dicom", "send", "full", files[0], expect=9).stderr
    assert done["objects"][0]["status"] == "0xA700" and done["sent"] == 0
    assert "refused by the peer with status 0xA700 (Failure: Refused: Out of Resources)" in said
