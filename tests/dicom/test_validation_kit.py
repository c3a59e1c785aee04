"""The DICOM validation kit itself (kit.dicom): dciodvfy finds the errors of a damaged object and none in a valid
one, and the session's Orthanc accepts a valid object, lists it and refuses what is not DICOM."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pydicom
import pytest
from pydicom.data import get_testdata_file

from kit.dicom import OrthancError, OrthancServer, dciodvfy_errors


def _ct_small() -> Path:
    return Path(get_testdata_file("CT_small.dcm"))  # type: ignore[arg-type]


def test_a_valid_ct_has_no_dciodvfy_error() -> None:
    assert dciodvfy_errors(_ct_small()) == []


def test_dciodvfy_errors_are_the_errors_not_the_warnings(tmp_path: Path) -> None:
    dataset = pydicom.dcmread(_ct_small())
    del dataset.Modality  # a required attribute missing: an error
    dataset.PatientPosition = "SIDEWAYS"  # an unknown defined term: only a warning
    damaged = tmp_path / "damaged.dcm"
    dataset.save_as(damaged)
    errors = dciodvfy_errors(damaged)
    assert errors and all(line.startswith("Error") for line in errors)
    assert any("Modality" in line for line in errors)
    assert not any("Patient Position" in line for line in errors)


@pytest.mark.parametrize("content", [b"", b"not a DICOM file at all\n", b"\0" * 200])
def test_what_is_not_dicom_is_an_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "hostile.dcm"
    path.write_bytes(content)
    assert dciodvfy_errors(path)


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    assert dciodvfy_errors(tmp_path / "absent.dcm")


@pytest.mark.slow
def test_orthanc_accepts_and_lists_a_valid_ct(orthanc: OrthancServer) -> None:
    orthanc.clear()
    stored = orthanc.upload(_ct_small())
    assert stored.status == "Success"
    assert orthanc.upload(_ct_small()).status == "AlreadyStored"
    held = orthanc.instances()
    original = pydicom.dcmread(_ct_small())
    assert [(tags["SOPInstanceUID"], tags["Modality"]) for tags in held] == [(original.SOPInstanceUID, "CT")]


@pytest.mark.slow
def test_orthanc_refuses_what_is_not_dicom(orthanc: OrthancServer, tmp_path: Path) -> None:
    orthanc.clear()
    path = tmp_path / "not.dcm"
    path.write_bytes(b"not a DICOM file at all\n")
    with pytest.raises(OrthancError, match="refused"):
        orthanc.upload(path)
    assert orthanc.instances() == []


def _address_other_than_loopback() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: the kernel only picks the source address
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


@pytest.mark.slow
def test_orthanc_refuses_a_client_that_is_not_on_loopback(orthanc: OrthancServer) -> None:
    address = _address_other_than_loopback()
    if address is None:
        pytest.skip("this machine has no network address other than loopback")
    answer = httpx.get(f"http://{address}:{orthanc.http_port}/instances", timeout=10)
    assert answer.status_code in (401, 403)
