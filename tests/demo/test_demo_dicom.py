"""`rtvault demo dicom`: synthetic DICOM-RT objects, each valid for dciodvfy, whose PatientID is the MRN of the
patient `demo generate` makes with the same seed, the same every time, and that a real PACS takes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pydicom
import pytest

from kit.cli import rtvault, rtvault_json
from kit.dicom import OrthancServer, dciodvfy_errors
from kit.dicom_peers import declare_modality, peers_config
from rtvault.demo import generate_database

pytestmark = pytest.mark.slow


def _digests(directory: Path) -> dict[str, str]:
    return {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_demo_dicom_is_valid_synthetic_rt_of_the_demo_patients(tmp_path: Path) -> None:
    report = rtvault_json(None, "demo", "dicom", "--to", tmp_path / "dicom", "--patients", "2", "--seed", "3")
    generated = generate_database(tmp_path / "db", patients=2, seed=3, image_mb=4.0)  # `demo generate`'s default
    assert [p["mrn"] for p in report["patients"]] == [s.identity.mrn for s in generated.patients]
    for patient in report["patients"]:
        assert {"CT", "RTSTRUCT", "RTPLAN", "RTDOSE", "DICOMDIR"} <= set(patient["written"]), patient
        assert patient["missing"] == []
        files = [tmp_path / "dicom" / f for f in patient["files"]]
        assert all(f.is_file() for f in files)
        objects = [f for f in files if f.name != "DICOMDIR"]
        modalities: dict[str, list[Path]] = {}
        for path in objects:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            assert ds.PatientID == patient["mrn"]
            modalities.setdefault(str(ds.Modality), []).append(path)
        checked = [*modalities["CT"][:3], *(p for m, ps in modalities.items() if m != "CT" for p in ps)]
        for path in checked:
            assert dciodvfy_errors(path) == [], path
    again = rtvault_json(None, "demo", "dicom", "--to", tmp_path / "again", "--patients", "2", "--seed", "3")
    assert again["patients"] == report["patients"]
    assert _digests(tmp_path / "again") == _digests(tmp_path / "dicom")
    refused = rtvault(None, "demo", "dicom", "--to", tmp_path / "dicom", expect=4)
    assert "not an empty directory" in refused.stderr


def test_demo_dicom_sent_to_orthanc_is_found_by_its_mrn(tmp_path: Path, orthanc: OrthancServer) -> None:
    orthanc.clear()
    declare_modality(orthanc, "rtvault", "RTVAULT", 104)
    report = rtvault_json(None, "demo", "dicom", "--to", tmp_path / "dicom", "--patients", "1", "--seed", "5")
    config = peers_config(tmp_path / "rtvault.toml", {"orthanc": (orthanc.aet, orthanc.dicom_port)})
    sent = rtvault_json(config, "dicom", "send", "orthanc", tmp_path / "dicom")
    total = sum(n for m, n in report["patients"][0]["written"].items() if m != "DICOMDIR")
    assert sent["sent"] == total and sent["failed"] == 0
    mrn = report["patients"][0]["mrn"]
    series = rtvault_json(config, "dicom", "find", "orthanc", "--level", "series", "--patient-id", mrn)
    assert {m["Modality"] for m in series["matches"]} == {"CT", "RTSTRUCT", "RTPLAN", "RTDOSE"}
