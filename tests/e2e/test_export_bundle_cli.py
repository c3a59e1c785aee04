"""`rtvault export bundle` as a user runs it: a demo patient's access bundle from the latest snapshot (its DICOM
files valid, its PDF naming the patient and the prescription, its README dated by the version), the same bundle
again byte for byte, an archived patient's bundle in English, the real sample (no voxels) with what is missing
named and exit 9, and the refusals (a destination holding files, an unknown language)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydicom
import pypdf

from kit.archive import pinnacle_tar
from kit.cli import rtvault, rtvault_json
from kit.dicom import dciodvfy_errors
from kit.vault import Vault
from rtvault.archive.ingest import ingest_file
from rtvault.demo import generate_database
from rtvault.store import Store


def _vault(base: Path, db: Path) -> Vault:
    vault = Vault(db, base / "store", base / "rtvault.toml")
    vault.configure()
    Store.init(vault.store_path)
    rtvault(vault.config_path, "backup")
    return vault


def _pdf_text(path: Path) -> str:
    """The PDF's text, its line breaks (inside table cells too) as spaces."""
    return " ".join(" ".join(page.extract_text() for page in pypdf.PdfReader(path).pages).split())


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _patient(out: Path, report: dict) -> tuple[str, str, float]:
    """The patient's family name, record number and first prescription's dose per fraction, as the RTPLAN says."""
    plan = pydicom.dcmread(out / next(f["path"] for f in report["files"] if f["modality"] == "RTPLAN"))
    return str(plan.PatientName).split("^")[0], str(plan.PatientID), float(
        plan.DoseReferenceSequence[0].TargetPrescriptionDose) / plan.FractionGroupSequence[0].NumberOfFractionsPlanned


def test_a_demo_patients_bundle_holds_valid_dicom_a_summary_and_a_readme_and_is_reproducible(tmp_path: Path) -> None:
    db = tmp_path / "db"
    generate_database(db, patients=3, seed=3, image_mb=0.3)
    vault = _vault(tmp_path, db)
    path = sorted(p.path for p in vault.store.manifests()[-1].patients)[0]
    out = tmp_path / "bundle"
    report = rtvault_json(vault.config_path, "export", "bundle", "--patient", path, "--to", out)
    assert report["missing"] == [] and report["source"]["kind"] == "snapshot" and report["lang"] == "fr"
    assert {"CT", "RTSTRUCT", "RTPLAN", "RTDOSE", "DICOMDIR"} <= set(report["written"])
    assert sorted(_files(out)) == sorted([f["path"] for f in report["files"]] + ["README.txt", "summary.pdf"])
    for file in report["files"]:
        assert file["path"].startswith("DICOM/")
        assert dciodvfy_errors(out / file["path"]) == [], file

    family, mrn, per_fraction_gy = _patient(out, report)
    summary = _pdf_text(out / "summary.pdf")
    assert family.upper() in summary and mrn in summary
    assert f"{per_fraction_gy:g}".replace(".", ",") in summary.replace(".", ",")  # the prescription's dose
    assert "D95" in summary and "Coupe axiale" in summary and "UM par fraction" in summary
    readme = (out / "README.txt").read_text(encoding="utf-8")
    assert family.upper() in readme and "DICOMDIR" in readme and "UID" in readme
    snapshot_date = report["source"]["id"]
    assert snapshot_date and "Version du 20" in readme

    again = tmp_path / "again"
    rtvault(vault.config_path, "export", "bundle", "--patient", path, "--to", again)
    assert _files(again) == _files(out)  # the same version, the same bundle


def test_an_archived_patients_bundle_in_english(tmp_path: Path) -> None:
    db = tmp_path / "db"
    generate_database(db, patients=5, seed=3, image_mb=0.3)
    vault = _vault(tmp_path, db)
    path = sorted(p.path for p in vault.store.manifests()[-1].patients)[4]  # the old-version patient
    ingest_file(vault.store, pinnacle_tar(db, tmp_path / "patient.tar", [path]))
    out = tmp_path / "bundle"
    report = rtvault_json(vault.config_path, "export", "bundle", "--patient", path, "--from-archive", "--lang", "en",
                          "--to", out)
    assert report["source"]["kind"] == "archive" and report["missing"] == []
    family, _mrn, _dose = _patient(out, report)
    summary = _pdf_text(out / "summary.pdf")
    assert family.upper() in summary and "Axial slice" in summary and "MU per fraction" in summary
    readme = (out / "README.txt").read_text(encoding="utf-8")
    assert f"archive {report['source']['id']}" in readme and "Opening the DICOM files" in readme


def test_the_real_sample_without_voxels_and_the_refusals(tmp_path: Path, pinnacle_sample: Path) -> None:
    db = tmp_path / "db"
    shutil.copytree(pinnacle_sample, db)
    vault = _vault(tmp_path, db)
    path = vault.store.manifests()[-1].patients[0].path
    out = tmp_path / "bundle"
    done = rtvault(vault.config_path, "export", "bundle", "--patient", path, "--to", out, "--json", expect=9)
    report = json.loads(done.stdout)
    assert any("no voxels" in m for m in report["missing"])
    assert any("no slices in summary.pdf" in m for m in report["missing"])
    assert (out / "summary.pdf").is_file() and (out / "README.txt").is_file() and (out / "DICOM/DICOMDIR").is_file()
    assert "Non exporté" in _pdf_text(out / "summary.pdf")

    refused = rtvault(vault.config_path, "export", "bundle", "--patient", path, "--to", out, expect=4)
    assert "not an empty directory" in refused.stderr
    (tmp_path / "holds-a-file").mkdir()
    (tmp_path / "holds-a-file" / "notes.txt").write_text("mine")
    refused = rtvault(vault.config_path, "export", "bundle", "--patient", path, "--to", tmp_path / "holds-a-file",
                      expect=4)
    assert "not an empty directory" in refused.stderr
    assert [p.name for p in (tmp_path / "holds-a-file").iterdir()] == ["notes.txt"]
    wrong = rtvault(vault.config_path, "export", "bundle", "--patient", path, "--lang", "de", "--to",
                    tmp_path / "other", expect=2)
    assert "--lang" in wrong.stderr and not (tmp_path / "other").exists()
