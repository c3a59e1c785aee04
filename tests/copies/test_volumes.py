"""Removable disks with the real `rtvault volume` commands, real files and the real par2: every archive copied
once and byte for byte, readable by tar and sha256sum; damage within the recovery data repaired, an archive
file lost entirely set aside and copied again; an unplugged disk reported; its copies in the catalog, kept by
a rebuild."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from kit.copies import Copies
from rtvault.archive import records
from rtvault.archive.ingest import ingest_file
from rtvault.catalog.patients import patient_detail
from rtvault.configured import open_catalog_for
from rtvault.jobs.archives import export
from rtvault.jobs.catalog import refresh

LABEL = "usb-a"


@pytest.fixture
def two_archives(copies: Copies, tmp_path: Path) -> Copies:
    """The primary with its gzip archive (a deleted patient's) and an old plain tar ingested (kept as is)."""
    first = copies.patient_paths()[0]
    exported = export(copies.primary, first, tmp_path / "old-dvd-patient.tar")
    ingest_file(copies.primary, Path(str(exported["out"])))
    refresh(copies.config)
    return copies


def _archive_folder(disk: Path, archive_id: str) -> Path:
    return disk / "archives" / archive_id


def _archive_file(disk: Path, archive_id: str) -> Path:
    folder = _archive_folder(disk, archive_id)
    return folder / next(line.split("  ", 1)[1] for line in (folder / "SHA256SUMS").read_text().splitlines()
                         if line.startswith(archive_id))


def _synced(copies: Copies, disk: Path) -> dict:
    disk.mkdir()
    copies.cli("volume", "init", str(disk), "--label", LABEL)
    return copies.cli_json("volume", "sync", LABEL)


def test_sync_copies_each_archive_once_readable_without_rtvault(two_archives: Copies, tmp_path: Path) -> None:
    disk, store = tmp_path / "disk", two_archives.primary
    (disk / "lost+found").mkdir(parents=True)  # a fresh ext4 file system is still "empty"
    made = two_archives.cli_json("volume", "init", str(disk), "--label", LABEL)
    assert made["label"] == LABEL and made["archives"] == 0 and (disk / "rtvault-volume.json").is_file()
    readme = (disk / "README.txt").read_text(encoding="utf-8")
    assert "par2 repair recovery.par2" in readme and "FRANÇAIS" in readme and "ENGLISH" in readme

    first = two_archives.cli_json("volume", "sync", LABEL)
    ids = records.all_ids(store)
    assert len(ids) == 2 and sorted(c["archive"] for c in first["copied"]) == ids and first["problems"] == []
    for archive_id in ids:
        copied = _archive_file(disk, archive_id)
        assert copied.read_bytes() == (two_archives.primary_path / records.tar_key(archive_id)).read_bytes()
        assert hashlib.sha256(copied.read_bytes()).hexdigest() == archive_id
        folder = _archive_folder(disk, archive_id)
        subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=folder, check=True)
        listed = subprocess.run(["tar", "-tf", copied.name], cwd=folder, check=True, capture_output=True,
                                text=True).stdout.splitlines()
        for patient in records.load(store, archive_id).patients:
            assert any(name.startswith(patient.prefix + "/") for name in listed), patient.path
        assert sorted(p.name for p in folder.glob("*.par2"))[0] == "recovery.par2"
        assert len(list(folder.glob("recovery.vol*.par2"))) == 1  # -n1: one recovery file

    second = two_archives.cli_json("volume", "sync", LABEL)
    assert second["copied"] == [] and second["already"] == 2
    listed = two_archives.cli_json("volume", "list")
    assert [(v["label"], v["archives"], v["mounted"]) for v in listed] == [(LABEL, 2, True)]
    again = two_archives.cli("volume", "init", str(tmp_path / "db"), "--label", "other", expect=4)
    assert "not empty" in again.stderr


def test_verify_repairs_within_the_recovery_data_and_sets_aside_the_rest(two_archives: Copies,
                                                                        tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    _synced(two_archives, disk)
    gzip_id, tar_id = (next(r.id for r in records.all_records(two_archives.primary) if r.compression == kind)
                       for kind in ("gzip", "none"))
    damaged = _archive_file(disk, gzip_id)
    data = bytearray(damaged.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])
    damaged.write_bytes(bytes(data))
    (_archive_folder(disk, tar_id) / "index.json").unlink()  # a small file lost entirely: within the 10 %

    report = two_archives.cli_json("volume", "verify", LABEL)
    assert {a["archive"]: a["outcome"] for a in report["archives"]} == {gzip_id: "repaired", tar_id: "repaired"}
    assert hashlib.sha256(damaged.read_bytes()).hexdigest() == gzip_id
    assert not list(_archive_folder(disk, gzip_id).glob("*.1"))  # par2's copy of the damaged file is gone
    assert two_archives.cli_json("volume", "list")[0]["last_verified"]

    # The archive file itself lost: 100 % of its blocks, beyond 10 % redundancy; set aside, copied again.
    _archive_file(disk, tar_id).unlink()
    lost = two_archives.cli_json("volume", "verify", LABEL, expect=7)
    outcome = {a["archive"]: a for a in lost["archives"]}[tar_id]
    assert outcome["outcome"] == "unrepairable" and "damaged/" in outcome["detail"]
    assert not _archive_folder(disk, tar_id).exists() and len(list((disk / "damaged").iterdir())) == 1
    assert [c["archive"] for c in two_archives.cli_json("volume", "sync", LABEL)["copied"]] == [tar_id]
    healed = two_archives.cli_json("volume", "verify", LABEL)
    assert healed["ok"] == 2 and healed["healthy"]


def test_a_disk_not_mounted_is_reported(two_archives: Copies, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    _synced(two_archives, disk)
    moved = tmp_path / "elsewhere"
    disk.rename(moved)  # unplugged, or mounted at another place
    listed = two_archives.cli_json("volume", "list")
    assert listed[0]["mounted"] is False and listed[0]["archives"] == 2
    for command in ("sync", "verify"):
        done = two_archives.cli("volume", command, LABEL, expect=8)
        assert f"volume {LABEL} is not mounted" in done.stderr and "--path" in done.stderr
    assert two_archives.cli_json("volume", "verify", LABEL, "--path", str(moved))["ok"] == 2
    assert two_archives.cli_json("volume", "list")[0]["path"] == str(moved.resolve())
    unknown = two_archives.cli("volume", "sync", "nope", expect=4)
    assert "no volume labelled 'nope'" in unknown.stderr


def test_the_catalog_shows_the_disk_as_a_copy_and_a_rebuild_keeps_it(two_archives: Copies,
                                                                       tmp_path: Path) -> None:
    _synced(two_archives, tmp_path / "disk")
    found = two_archives.cli_json("search", "--archive", LABEL)["patients"]
    assert found, "the archived patients are found by the volume's label"

    def volume_copies() -> dict[str, int]:
        with open_catalog_for(two_archives.config) as db:
            details = [patient_detail(db, p["key"]) for p in found]
        return {d["path"]: d["copies"] for d in details if any(  # the copies of each newest version on the disk
            loc["store"] == f"volume:{LABEL}" and loc["volume"] == LABEL for loc in d["versions"][0]["locations"])}

    before = volume_copies()
    deleted = next(p["path"] for p in found if p["status"] == "archived")
    assert before[deleted] == 2  # the primary's archive and the disk
    two_archives.cli("catalog", "rebuild")
    assert volume_copies() == before
    assert len(two_archives.cli_json("search", "--archive", LABEL)["patients"]) == len(found)


def test_a_verified_disk_counts_as_a_copy_of_its_archives_in_status(copies: Copies, tmp_path: Path) -> None:
    archives = {a["id"] for a in copies.cli_json("archive", "list")["archives"]}
    copies.cli("verify", "--store", "primary", "--all")
    before = copies.cli_json("status", expect=None)
    assert {s["key"] for s in before["too_few_copies"] if s["kind"] == "archive"} == archives  # primary only

    _synced(copies, tmp_path / "disk")
    copies.cli("volume", "verify", LABEL)
    after = copies.cli_json("status", expect=None)
    assert not [s for s in after["too_few_copies"] if s["kind"] == "archive"]
    assert not [s for s in after["too_few_verified"] if s["kind"] == "archive"]  # primary and disk, both verified
    assert [s for s in after["too_few_copies"] if s["kind"] == "patient"]  # snapshots are still on one store only
