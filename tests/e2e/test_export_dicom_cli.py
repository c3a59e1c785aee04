"""`rtvault export dicom` as a user runs it: a demo patient backed up, exported from the snapshot and from an
archive, every file through dciodvfy and into a real Orthanc; the real sample (no voxels) exported with what is
missing named and exit 9; a destination that already holds files refused."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from kit.archive import pinnacle_tar
from kit.cli import rtvault, rtvault_json
from kit.dicom import OrthancServer, dciodvfy_errors
from kit.faults import WITHOUT_ROOT_READ, can_drop_read_capabilities, small_disk
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


def test_a_demo_patient_exported_from_snapshot_and_archive_is_valid_and_orthanc_takes_it(
        tmp_path: Path, orthanc: OrthancServer) -> None:
    db = tmp_path / "db"
    generate_database(db, patients=5, seed=3, image_mb=0.3)
    vault = _vault(tmp_path, db)
    path = sorted(p.path for p in vault.store.manifests()[-1].patients)[4]  # the old-version patient
    report = rtvault_json(vault.config_path, "export", "dicom", "--patient", path, "--to", tmp_path / "out")
    assert report["missing"] == [] and report["source"]["kind"] == "snapshot"
    assert {"CT", "RTSTRUCT", "RTPLAN", "RTDOSE", "DICOMDIR"} <= set(report["written"])
    files = [tmp_path / "out" / f["path"] for f in report["files"]]
    assert sorted(files) == sorted(p for p in (tmp_path / "out").rglob("*") if p.is_file())
    for file in files:
        assert dciodvfy_errors(file) == [], file
    orthanc.clear()
    for file in files[:-1]:  # the DICOMDIR is media's index, not an object a PACS stores
        assert orthanc.upload(file).status == "Success", file
    assert len(orthanc.instances()) == len(files) - 1

    tar = pinnacle_tar(db, tmp_path / "patient.tar", [path])
    ingest_file(vault.store, tar)
    archived = rtvault_json(vault.config_path, "export", "dicom", "--patient", path, "--from-archive",
                            "--to", tmp_path / "from-archive")
    assert archived["source"]["kind"] == "archive" and archived["missing"] == []
    assert archived["written"] == report["written"]
    snapshot_uids = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files[:-1]}
    archive_uids = {pydicom.dcmread(tmp_path / "from-archive" / f["path"], stop_before_pixels=True).SOPInstanceUID
                    for f in archived["files"][:-1]}
    assert not snapshot_uids & archive_uids  # two versions, no UID shared


def test_the_real_sample_without_voxels_is_exported_with_what_is_missing_named(
        tmp_path: Path, pinnacle_sample: Path) -> None:
    db = tmp_path / "db"
    shutil.copytree(pinnacle_sample, db)
    vault = _vault(tmp_path, db)
    path = vault.store.manifests()[-1].patients[0].path
    done = rtvault(vault.config_path, "export", "dicom", "--patient", path, "--to", tmp_path / "out", "--json",
                   expect=9)
    report = json.loads(done.stdout)
    assert any("no voxels" in m for m in report["missing"])
    assert report["written"].get("RTSTRUCT", 0) >= 1 and "CT" not in report["written"]
    for file in report["files"]:
        assert dciodvfy_errors(tmp_path / "out" / file["path"]) == [], file

    again = rtvault(vault.config_path, "export", "dicom", "--patient", path, "--to", tmp_path / "out", expect=4)
    assert "not an empty directory" in again.stderr
    wrong = rtvault(vault.config_path, "export", "dicom", "--patient", path, "--plan", "NO SUCH PLAN",
                    "--to", tmp_path / "other", expect=4)
    assert "names no plan" in wrong.stderr
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("options", [("--snapshot", "x", "--from-archive")])
def test_two_sources_at_once_are_refused(tmp_path: Path, options: tuple[str, ...]) -> None:
    db = tmp_path / "db"
    generate_database(db, patients=1, seed=3, image_mb=0.05)
    vault = _vault(tmp_path, db)
    done = rtvault(vault.config_path, "export", "dicom", "--patient", "x", *options, "--to", tmp_path / "o",
                   expect=4)
    assert "give one of them" in done.stderr


def test_a_file_the_backup_could_not_read_is_named_by_the_export(tmp_path: Path) -> None:
    """A beam's dose file the service user could not read when the only snapshot was taken: the export writes
    everything else and names the file (the backup's own words), exit 9."""
    if why := can_drop_read_capabilities():
        pytest.skip(why)
    db = tmp_path / "db"
    generate_database(db, patients=1, seed=3, image_mb=0.2)
    dose = sorted(db.rglob("plan.Trial.binary.*"))[0]
    vault = Vault(db, tmp_path / "store", tmp_path / "rtvault.toml")
    vault.configure()
    Store.init(vault.store_path)
    dose.chmod(0o000)
    try:
        rtvault(vault.config_path, "backup", expect=9, via=WITHOUT_ROOT_READ)
    finally:
        dose.chmod(0o644)
    path = vault.store.manifests()[-1].patients[0].path
    done = rtvault(vault.config_path, "export", "dicom", "--patient", path, "--to", tmp_path / "out", "--json",
                   expect=9)
    report = json.loads(done.stdout)
    unread = dose.relative_to(db / path).as_posix()
    assert f"{unread}: not read by the backup" in report["missing"], report["missing"]
    assert {"CT", "RTSTRUCT", "RTPLAN"} <= set(report["written"])


def test_a_full_destination_is_one_sentence_and_a_small_temporary_area_does_not_matter(tmp_path: Path) -> None:
    """The objects are staged beside the destination, never in the system's temporary area (often a small tmpfs):
    an export into a full disk says so in one sentence naming it (exit 4) and leaves nothing there; with a tiny
    $TMPDIR the export still succeeds."""
    db = tmp_path / "db"
    generate_database(db, patients=1, seed=3, image_mb=0.5)
    vault = _vault(tmp_path, db)
    path = vault.store.manifests()[-1].patients[0].path
    received = tmp_path / "received"
    received.mkdir()
    big = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    big.PixelData = random.Random(5).randbytes(2 << 20)  # incompressible: more than the full disk holds
    big.Rows, big.Columns = 1024, 1024
    big.save_as(received / "ct.dcm")
    rtvault(vault.config_path, "dicom", "import", received)
    with small_disk(tmp_path / "full", "1m") as full:
        for what, key in (("pinnacle", path), ("received", big.PatientID)):
            done = rtvault(vault.config_path, "export", "dicom", "--patient", key, "--what", what,
                           "--to", full / "out", expect=4)
            assert f"cannot stage the DICOM objects in {full}: no space left on the device" in done.stderr, done.stderr
            assert len(done.stderr.strip().splitlines()) == 1 and list(full.iterdir()) == []
    with small_disk(tmp_path / "tmp", "1m") as tiny:
        report = rtvault_json(vault.config_path, "export", "dicom", "--patient", path, "--to", tmp_path / "out",
                              env={"TMPDIR": str(tiny)})
        assert report["written"]["CT"] > 0 and list(tiny.iterdir()) == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rtvault-staging-")]
