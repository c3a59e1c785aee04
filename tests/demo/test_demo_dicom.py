"""`rtvault demo dicom`: synthetic DICOM-RT objects (CT, RTSTRUCT, RTPLAN, RTDOSE, a DRR per beam and a treatment
record per plan), each valid for dciodvfy, whose PatientID is the MRN of the patient `demo generate` makes with the
same seed, the same every time, and that a real PACS and rtvault's own node take."""

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
        assert {"CT", "RTSTRUCT", "RTPLAN", "RTDOSE", "RTIMAGE", "RTRECORD", "DICOMDIR"} <= set(patient["written"])
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
        _rt_images_and_records_follow_their_plans(modalities)
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
    assert {m["Modality"] for m in series["matches"]} == {"CT", "RTSTRUCT", "RTPLAN", "RTDOSE", "RTIMAGE", "RTRECORD"}


def _rt_images_and_records_follow_their_plans(modalities: dict[str, list[Path]]) -> None:
    """A DRR per beam of each plan, naming it, at the beam's angles; one session delivering the plan's meterset."""
    plans = {str(p.SOPInstanceUID): p for p in map(pydicom.dcmread, modalities["RTPLAN"])}
    images = [pydicom.dcmread(p) for p in modalities["RTIMAGE"]]
    records = [pydicom.dcmread(p) for p in modalities["RTRECORD"]]
    assert len(images) == sum(len(p.BeamSequence) for p in plans.values())
    assert len(records) == len(plans)
    for image in images:
        plan = plans[image.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID]
        beam = next(b for b in plan.BeamSequence if b.BeamNumber == image.ReferencedBeamNumber)
        assert image.RTImageLabel == f"{beam.BeamName} DRR" and image.RTImagePlane == "NORMAL"
        assert list(image.ImageType) == ["DERIVED", "SECONDARY", "DRR"]
        assert float(image.GantryAngle) == float(beam.ControlPointSequence[0].GantryAngle)
        assert float(image.RTImageSID) == 1500.0 and float(image.RadiationMachineSAD) == float(beam.SourceAxisDistance)
        assert image.StudyInstanceUID == plan.StudyInstanceUID and image.PatientID == plan.PatientID
        assert image.pixel_array.shape == (128, 128) and image.pixel_array.max() > image.pixel_array.min()
    for record in records:
        plan = plans[record.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID]
        assert record.TreatmentDate == plan.RTPlanDate and record.TreatmentTime
        planned = {r.ReferencedBeamNumber: float(r.BeamMeterset) for r in plan.FractionGroupSequence[0]
                   .ReferencedBeamSequence}
        delivered = {b.ReferencedBeamNumber: float(b.DeliveredPrimaryMeterset)
                     for b in record.TreatmentSessionBeamSequence}
        assert delivered == pytest.approx(planned)
        assert {b.TreatmentTerminationStatus for b in record.TreatmentSessionBeamSequence} == {"NORMAL"}


def test_rtvault_node_stores_and_indexes_every_demo_object(tmp_path: Path) -> None:
    from kit.dicom_node import make_site, running
    from rtvault.configured import open_catalog_for
    from rtvault.jobs.dicom_peer_send import send

    report = rtvault_json(None, "demo", "dicom", "--to", tmp_path / "dicom", "--patients", "1", "--seed", "4")
    [patient] = report["patients"]
    site = make_site(tmp_path / "site", accept_unknown=True)
    site.peers = {"node": {"ae_title": "RTVAULT", "host": "127.0.0.1", "port": site.port}}
    site.write()
    with running(site):
        sent = send(site.config, "node", [tmp_path / "dicom"]).to_json()
    total = sum(n for m, n in patient["written"].items() if m != "DICOMDIR")
    assert (sent["sent"], sent["failed"]) == (total, 0)
    with open_catalog_for(site.config) as catalog:
        rows = catalog.execute("SELECT modality, COUNT(*), MIN(patient_id), MIN(study_date), MIN(sop_class) "
                               "FROM dicom_instances GROUP BY modality")
    held = {modality: (count, mrn, date, sop_class) for modality, count, mrn, date, sop_class in rows}
    assert {m: c for m, (c, *_) in held.items()} == {m: n for m, n in patient["written"].items() if m != "DICOMDIR"}
    assert held["RTIMAGE"][1:] == (patient["mrn"], held["RTPLAN"][2], "1.2.840.10008.5.1.4.1.1.481.1")
    assert held["RTRECORD"][1:] == (patient["mrn"], held["RTPLAN"][2], "1.2.840.10008.5.1.4.1.1.481.4")
