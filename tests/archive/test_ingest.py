"""`rtvault archive ingest`: old archives as Pinnacle, DVD copies and tape dumps left them, found, stored byte for
byte, indexed per patient and restorable; what is not an archive refused clearly without losing the rest; physics
archives recognised as such. The inbox and what is not a regular file: test_ingest_inbox.py."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import shutil
import tarfile
from pathlib import Path

import pytest

from kit.archive import (
    SHARED_SAMPLE,
    filtered_header,
    identity_of,
    listed_paths,
    old_tar,
    pinnacle_tar,
)
from kit.cli import first_json
from kit.files import regular_files
from kit.vault import Vault
from rtvault.jobs.archives import restore_from_archive

SUMMARY_KEYS = {"id", "file", "patients", "damaged", "problems"}
IDENTITY_KEYS = {"path", "patient_id", "last_name", "first_name", "middle_name", "mrn", "birth_date", "gender"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_identity(found: dict, vault: Vault, path: str) -> None:
    assert found.keys() >= IDENTITY_KEYS, found.keys()
    expected = identity_of(vault.root / path)
    assert {key: found[key] for key in expected} == expected


def assert_restores(vault: Vault, archive_id: str, key: str, source: Path, tmp: Path, base: str) -> None:
    """The patient KEY of the archive, restored in-process, is byte-identical (modes, mtimes) to `source`."""
    destination = tmp / f"restored-{archive_id[:8]}-{base.replace('/', '_')}"
    restore_from_archive(vault.store, key, destination, archive_id=archive_id)
    assert regular_files(destination / base) == regular_files(source)


@pytest.mark.parametrize("gz", [False, True], ids=["tar", "tar.gz"])
def test_single_and_multi_patient_archives_are_indexed_by_patient(vault: Vault, tmp_path: Path, gz: bool) -> None:
    paths = vault.patient_paths()
    suffix = ".tar.gz" if gz else ".tar"
    single = pinnacle_tar(vault.root, tmp_path / f"single{suffix}", [paths[0]], gz=gz)
    multi = pinnacle_tar(vault.root, tmp_path / f"multi{suffix}", paths[1:3], gz=gz)

    result = vault.ingest(single, multi)
    assert result["errors"] == []
    by_file = {a["file"]: a for a in result["archives"]}
    assert sorted(by_file) == sorted([single.name, multi.name])
    for archive, wanted in ((single, [paths[0]]), (multi, paths[1:3])):
        found = by_file[archive.name]
        assert found.keys() >= SUMMARY_KEYS
        assert found["id"] == sha256(archive)
        assert found["already"] is False
        assert found["damaged"] is False and found["problems"] == []
        assert found["kind"] == "patients"
        assert found["compression"] == ("gzip" if gz else "none")
        assert [p["path"] for p in found["patients"]] == wanted
        for patient, path in zip(found["patients"], wanted, strict=True):
            assert_identity(patient, vault, path)
            assert patient["complete"] is True and patient["lost"] == []
            assert patient["files"] == len(regular_files(vault.root / path))
        # kept byte for byte in the store, where any tar reads it
        assert vault.tar_path(found["id"]).read_bytes() == archive.read_bytes()

    # a user restores the second patient of the multi-patient archive by its MRN
    mrn = str(identity_of(vault.root / paths[2])["mrn"])
    vault.cli("restore", "--patient", mrn, "--to", str(tmp_path / "out"), "--from-archive", by_file[multi.name]["id"])
    assert regular_files(tmp_path / "out" / paths[2]) == regular_files(vault.root / paths[2])
    assert listed_paths((tmp_path / "out" / "Institution").read_bytes()) == [paths[2]]


def test_a_header_listing_an_absent_patient_is_reported(vault: Vault, tmp_path: Path) -> None:
    """The whole Institution file copied in front of one patient: the others it lists are named as absent."""
    paths = vault.patient_paths()
    archive = pinnacle_tar(vault.root, tmp_path / "unfiltered.tar", [paths[0]], filtered=False)
    found = vault.ingest_one(archive)
    assert [p["path"] for p in found["patients"]] == [paths[0]]
    assert found["patients"][0]["complete"] is True
    for absent in paths[1:]:
        assert any(absent in problem and "absent" in problem for problem in found["problems"]), found["problems"]


LONG_NAME = "Plan_0/" + "plan.Trial.binary." + "x" * 110  # a member name longer than a ustar name field


def _python_tar(vault: Vault, out: Path, path: str, tar_format: int) -> Path:
    header = filtered_header((vault.root / path.split("/")[0] / "Institution").read_bytes(), [path])
    staged = out.parent / "Institution"
    staged.write_bytes(header)
    with tarfile.open(out, "w", format=tar_format) as tar:
        tar.add(staged, arcname="Institution")
        tar.add(vault.root / path, arcname=path)
    staged.unlink()
    return out


def test_tar_formats_gnu_ustar_pax_v7_and_python(own_vault: Vault, tmp_path: Path) -> None:
    vault = own_vault
    paths = vault.patient_paths()
    long_patient = paths[1]
    (vault.root / long_patient / LONG_NAME).write_bytes(b"a name of 135 characters")
    archives = {
        "gnu": pinnacle_tar(vault.root, tmp_path / "gnu.tar", [long_patient], fmt="gnu"),
        "pax": pinnacle_tar(vault.root, tmp_path / "pax.tar", [long_patient], fmt="pax"),
        "ustar": pinnacle_tar(vault.root, tmp_path / "ustar.tar", [paths[0]], fmt="ustar"),
        "v7": pinnacle_tar(vault.root, tmp_path / "v7.tar", [paths[0]], fmt="v7"),
        "python-pax": _python_tar(vault, tmp_path / "python-pax.tar", long_patient, tarfile.PAX_FORMAT),
        "python-gnu": _python_tar(vault, tmp_path / "python-gnu.tar", long_patient, tarfile.GNU_FORMAT),
    }
    result = vault.ingest(*archives.values())
    assert result["errors"] == []
    by_file = {a["file"]: a for a in result["archives"]}
    for label, archive in archives.items():
        found = by_file[archive.name]
        path = paths[0] if label in ("ustar", "v7") else long_patient
        assert found["damaged"] is False and found["problems"] == [], (label, found["problems"])
        assert [p["path"] for p in found["patients"]] == [path], label
        assert_identity(found["patients"][0], vault, path)
        assert found["patients"][0]["complete"] is True, label
        assert_restores(vault, found["id"], path, vault.root / path, tmp_path, f"{label}/{path}".split("/", 1)[1])
    restored = tmp_path / f"restored-{by_file['pax.tar']['id'][:8]}-{long_patient.replace('/', '_')}"
    assert LONG_NAME in regular_files(restored / long_patient)


def test_very_old_archive_without_institution_header(vault: Vault, tmp_path: Path) -> None:
    path = vault.patient_paths()[3]
    archive = old_tar(vault.root, tmp_path / "1999-dvd.tar.gz", path)
    found = vault.ingest_one(archive)
    bare = path.rsplit("/", 1)[1]
    assert found["damaged"] is False and found["kind"] == "patients"
    assert [p["path"] for p in found["patients"]] == [bare]
    identity = identity_of(vault.root / path)
    assert {k: found["patients"][0][k] for k in identity} == identity
    assert found["patients"][0]["complete"] is True

    vault.cli("restore", "--patient", str(identity["mrn"]), "--to", str(tmp_path / "out"), "--from-archive")
    assert regular_files(tmp_path / "out" / bare) == regular_files(vault.root / path)
    assert (tmp_path / "out" / "Institution").is_file()
    assert len(listed_paths((tmp_path / "out" / "Institution").read_bytes())) == 1


@pytest.mark.parametrize("prefix", ["NewPatients", "PrimaryPatientData/NewPatients"])
def test_folder_prefix_inside_the_tar(vault: Vault, tmp_path: Path, prefix: str) -> None:
    paths = vault.patient_paths()
    archive = pinnacle_tar(vault.root, tmp_path / "nested.tar.gz", paths[:2], gz=True, prefix=prefix)
    found = vault.ingest_one(archive)
    assert found["damaged"] is False and found["problems"] == []
    assert [p["path"] for p in found["patients"]] == paths[:2]
    for patient, path in zip(found["patients"], paths[:2], strict=True):
        assert_identity(patient, vault, path)
    vault.cli("restore", "--patient", paths[1], "--to", str(tmp_path / "out"), "--from-archive")
    assert regular_files(tmp_path / "out" / paths[1]) == regular_files(vault.root / paths[1])
    assert not (tmp_path / "out" / prefix.split("/")[0]).exists()


def test_a_directory_of_archives_is_searched_recursively(vault: Vault, tmp_path: Path) -> None:
    paths = vault.patient_paths()
    disc = tmp_path / "dvd-2009"
    (disc / "week-12" / "late").mkdir(parents=True)
    pinnacle_tar(vault.root, disc / "a.tar", [paths[0]])
    pinnacle_tar(vault.root, disc / "week-12" / "b.tar.gz", [paths[1]], gz=True)
    old_tar(vault.root, disc / "week-12" / "late" / "c.tgz", paths[2])
    (disc / "README.TXT").write_text("Sauvegarde Pinnacle semaine 12\n", encoding="latin-1")

    done = vault.cli("archive", "ingest", str(disc), "--json", expect=4)
    result = first_json(done.stdout)
    assert sorted(a["file"] for a in result["archives"]) == ["a.tar", "b.tar.gz", "c.tgz"]
    assert [e["file"] for e in result["errors"]] == [str(disc / "README.TXT")]
    assert sorted(p["path"] for a in vault.archives() for p in a["patients"]) == sorted(
        [paths[0], paths[1], paths[2].rsplit("/", 1)[1]])


def test_the_same_file_twice_adds_nothing(vault: Vault, tmp_path: Path) -> None:
    archive = pinnacle_tar(vault.root, tmp_path / "p.tar.gz", vault.patient_paths()[:2], gz=True)
    first = vault.ingest_one(archive)
    assert first["already"] is False
    size = vault.store_bytes()
    files = sorted(p.relative_to(vault.store_path) for p in vault.store_path.rglob("*")
                   if p.is_file() and "journal" not in p.parts)

    renamed = tmp_path / "copie-du-dvd.tar.gz"
    shutil.copy2(archive, renamed)
    again = vault.ingest(archive, renamed)["archives"]
    assert [a["already"] for a in again] == [True, True]
    assert {a["id"] for a in again} == {first["id"]}
    assert vault.store_bytes() == size
    assert sorted(p.relative_to(vault.store_path) for p in vault.store_path.rglob("*")
                  if p.is_file() and "journal" not in p.parts) == files  # the journal records both ingests
    assert [a["id"] for a in vault.archives()] == [first["id"]]


def test_files_that_are_not_archives_are_refused_and_the_others_ingested(vault: Vault, tmp_path: Path) -> None:
    good = pinnacle_tar(vault.root, tmp_path / "good.tar", [vault.patient_paths()[0]])
    bad = {
        "notes.txt": b"Patients archives le 12/03/2009\n",
        "empty.tar": b"",
        "noise.tar": random.Random(5).randbytes(20_000),
        "text.tar.gz": gzip.compress(b"this is not a tar archive\n" * 100),
        "zeros.tar": bytes(10_240),
    }
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
    arguments = [tmp_path / "notes.txt", good, *(tmp_path / name for name in bad if name != "notes.txt")]

    done = vault.cli("archive", "ingest", *map(str, arguments), expect=4)
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    for name in bad:
        mine = [line for line in errors if str(tmp_path / name) in line]
        assert len(mine) == 1, (name, errors)
        assert mine[0].startswith("rtvault: error: ") and "not a tar" in mine[0], mine[0]
    assert [a["file"] for a in vault.archives()] == ["good.tar"]
    assert (vault.store_path / "archives").is_dir()
    assert sorted(vault.store_path.glob("archives/*.json")) == [vault.store_path / "archives" / f"{sha256(good)}.json"]
    assert all(not p.is_file() for p in (vault.store_path / "tmp").rglob("*")), "staged copies left behind"

    missing = vault.cli("archive", "ingest", str(tmp_path / "nowhere.tar"), expect=4)
    assert "nowhere.tar" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1


def test_ingest_json_is_one_document_when_a_file_is_refused(vault: Vault, tmp_path: Path) -> None:
    good = pinnacle_tar(vault.root, tmp_path / "good.tar", [vault.patient_paths()[0]])
    (tmp_path / "notes.txt").write_text("not an archive\n")
    done = vault.cli("archive", "ingest", str(good), str(tmp_path / "notes.txt"), "--json", expect=4)
    result = json.loads(done.stdout)
    assert len(result["archives"]) == 1 and len(result["errors"]) == 1


# --- physics archives --------------------------------------------------------------------------------------------

MACHINE = b"""BackupMachineList ={
  BackupMachine ={
    Name = "Varian 600CD,   ";
    Directory = "Machine.0";
    DirSize = 6.50879;
    WriteDate = "2010-02-06 15:11:34";
  };
};"""


@pytest.fixture
def physics_archive(tmp_path: Path) -> Path:
    """A physics backup: an Institution header naming one machine, then Physics/ReadOnlyMachineDB/Machine.0/."""
    if not (SHARED_SAMPLE / "Physics").is_dir():
        pytest.skip("tests/fixtures/pinnacle is missing from this checkout")
    stage = tmp_path / "physics"
    shutil.copytree(SHARED_SAMPLE / "Physics", stage / "Physics")
    header = filtered_header((SHARED_SAMPLE / "Institution").read_bytes(), [])
    header = header.replace(b"BackupMachineList ={\n};", MACHINE, 1)
    header = header.replace(b"IsPhysicsMachinesBackup = 0", b"IsPhysicsMachinesBackup = 1")
    assert b"Directory = \"Machine.0\"" in header
    (stage / "Institution").write_bytes(header)
    out = tmp_path / "physique-2014.tar"
    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
        tar.add(stage / "Institution", arcname="Institution")
        tar.add(stage / "Physics", arcname="Physics")
    return out


def test_physics_archive_is_recognised(vault: Vault, physics_archive: Path) -> None:
    found = vault.ingest_one(physics_archive)
    assert found["kind"] == "physics"
    assert found["patients"] == []
    assert found["damaged"] is False
    assert any(name.strip(" ,") == "Varian 600CD" for name in found["machines"]), found["machines"]
    line = next(line for line in vault.cli("archive", "list").stdout.splitlines() if physics_archive.name in line)
    assert "physics" in line and "no patient" not in line
    assert vault.cli_json("archive", "expired", "--all")["patients"] == []


def test_physics_archive_lists_each_machine_once(vault: Vault, physics_archive: Path) -> None:
    found = vault.ingest_one(physics_archive)
    assert len(found["machines"]) == 1, found["machines"]


def test_a_patient_file_with_a_byte_order_mark_is_identified_and_kept_byte_for_byte(own_vault: Vault,
                                                                                     tmp_path: Path) -> None:
    vault = own_vault
    path = vault.patient_paths()[0]
    patient = vault.root / path / "Patient"
    expected = identity_of(vault.root / path)
    stat = patient.stat()
    patient.write_bytes(b"\xef\xbb\xbf" + patient.read_bytes())
    os.utime(patient, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    found = vault.ingest_one(pinnacle_tar(vault.root, tmp_path / "bom.tar", [path]))
    assert {key: found["patients"][0][key] for key in expected} == expected
    shown = vault.show(found["id"])
    assert any("byte order mark" in w for w in shown["patients"][0].get("warnings", [])) or any(
        "byte order mark" in p for p in shown["problems"]), shown
    assert_restores(vault, found["id"], path, vault.root / path, tmp_path, path)  # the mark restored too
