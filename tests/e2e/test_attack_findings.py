"""Failures found by fault injection against the partial-backup rule and the store's fault handling, each kept as a
minimal reproduction through the CLI (they failed on the code they were found on)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kit import store as storekit
from kit.cli import run_cli
from kit.config import add_tables
from kit.faults import Site, backed_up_site, can_drop_read_capabilities, make_site
from rtvault.errors import ExitCode


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return backed_up_site(tmp_path / "site", patients=4)


def manifest(site: Site, snapshot: str) -> dict:
    return json.loads((site.store / "snapshots" / f"{snapshot}.json").read_text())


def rel(site: Site, path: Path) -> str:
    return path.relative_to(site.db).as_posix()


def test_a_patient_directory_readable_but_not_searchable_keeps_its_sub_folders(site: Site) -> None:
    patient = next(p for p in site.patients() if any(d.is_dir() for d in p.iterdir()))
    first = site.json("snapshots")["snapshots"][0]["id"]
    entry0 = next(p for p in manifest(site, first)["patients"] if p["path"] == rel(site, patient))
    patient.chmod(0o444)  # the names can be listed, nothing under it can be stat'ed or opened
    try:
        done = site.run("backup", "--json", expect=ExitCode.PARTIAL, unprivileged=True)
    finally:
        patient.chmod(0o755)
    summary = json.loads(done.stdout)
    entry = next(p for p in manifest(site, summary["snapshot"])["patients"] if p["path"] == rel(site, patient))
    assert entry["incomplete"] is True
    # every file of the previous version is carried forward, the plan folders' files included
    assert entry["files"] == entry0["files"], (entry, summary["warnings"])
    assert not any("no earlier copy" in w["message"] for w in summary["warnings"]), summary["warnings"]


def test_patients_under_a_mount_folder_that_cannot_be_searched_are_never_archived_as_deleted(tmp_path: Path) -> None:
    if reason := can_drop_read_capabilities():
        pytest.skip(reason)
    site = make_site(tmp_path / "site", patients=10)
    site.run("backup")
    mount = site.patients()[0].parent
    other = mount.parent / "Mount_1"  # a second mount, so that the source is not empty without the first one
    other.mkdir()
    moved = site.patients()[-1]
    moved.rename(other / moved.name)
    site.run("backup", "--allow-shrink")
    archives_before = len(site.json("archive", "list")["archives"])
    hidden = sorted(p for p in site.patients() if p.parent == other)
    other.chmod(0o444)  # ls works, stat of Patient_* inside fails with EACCES
    try:
        done = site.run("backup", "--json", expect=None, unprivileged=True)
    finally:
        other.chmod(0o755)
    summary = json.loads(done.stdout)
    assert len(site.json("archive", "list")["archives"]) == archives_before, "an unreadable patient was archived"
    assert [rel(site, p) for p in hidden] == [p for p in summary["incomplete"] if p.startswith(rel(site, other))]
    assert done.returncode == ExitCode.PARTIAL
    paths = {p["path"] for p in manifest(site, summary["snapshot"])["patients"]}
    assert {rel(site, p) for p in hidden} <= paths


def test_catalog_rebuild_with_one_unreadable_manifest_neither_empties_the_catalog_nor_exits_0(site: Site) -> None:
    site.run("backup")
    site.run("backup")
    before = site.json("search")["total"]
    assert before > 0
    oldest = sorted((site.store / "snapshots").glob("*.json"))[0]
    oldest.chmod(0o000)
    try:
        done = site.run("catalog", "rebuild", expect=None, unprivileged=True)
        after = site.json("search", unprivileged=True)["total"]
    finally:
        oldest.chmod(0o644)
    assert done.returncode != 0, "a rebuild that could not read a snapshot must not report success"
    assert after == before, "the readable snapshots must still be indexed"


def test_an_unreadable_tmp_folder_is_a_store_error(site: Site) -> None:
    tmp = site.store / "tmp"
    tmp.mkdir(exist_ok=True)
    tmp.chmod(0o000)
    try:
        done = site.run("backup", expect=None, unprivileged=True)  # asserts no "internal error"
    finally:
        tmp.chmod(0o755)
    assert done.returncode == ExitCode.STORE
    assert str(tmp) in done.stderr


def test_a_folder_left_in_tmp_never_makes_the_backup_an_internal_error(site: Site) -> None:
    left = site.store / "tmp" / "left-by-hand"
    left.mkdir(parents=True)
    (left / "x").write_bytes(b"x")
    done = site.run("backup", expect=None)  # asserts no "internal error"
    assert done.returncode in (0, ExitCode.STORE)


def test_a_fifo_named_patient_never_hangs_the_backup(site: Site) -> None:
    patient = site.patients()[0]
    (patient / "Patient").rename(site.root / "Patient.saved")
    os.mkfifo(patient / "Patient")
    try:
        done = site.run("backup", expect=None, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("the backup hung on a FIFO named Patient")
    finally:
        (patient / "Patient").unlink()
        (site.root / "Patient.saved").rename(patient / "Patient")
    assert done.returncode in (0, ExitCode.PARTIAL)


def test_a_patient_file_that_is_a_symlink_is_never_followed_for_the_identity(site: Site) -> None:
    one, other = site.patients()[0], site.patients()[-1]
    first = site.json("snapshots")["snapshots"][0]["id"]
    names = {p["path"]: (p["last_name"], p["first_name"], p["mrn"]) for p in manifest(site, first)["patients"]}
    assert names[rel(site, one)] != names[rel(site, other)]
    (one / "Patient").rename(site.root / "Patient.saved")
    (one / "Patient").symlink_to(other / "Patient")  # or /dev/zero: read until MemoryError
    try:
        done = site.run("backup", "--json", expect=None)
    finally:
        (one / "Patient").unlink()
        (site.root / "Patient.saved").rename(one / "Patient")
    entry = next(p for p in manifest(site, json.loads(done.stdout)["snapshot"])["patients"]
                 if p["path"] == rel(site, one))
    assert (entry["last_name"], entry["first_name"], entry["mrn"]) != names[rel(site, other)], \
        "a patient recorded under another patient's identity"


def test_restoring_an_incomplete_version_says_so(site: Site, tmp_path: Path) -> None:
    new = site.patients()[0].parent / "Patient_99999"
    shutil.copytree(site.patients()[0], new)
    new.chmod(0o000)
    try:
        site.run("backup", expect=ExitCode.PARTIAL, unprivileged=True)
    finally:
        new.chmod(0o755)
    done = site.run("restore", "--patient", rel(site, new), "--to", str(tmp_path / "back"), expect=None)
    assert done.returncode == ExitCode.PARTIAL or "incomplete" in done.stderr, done.stdout + done.stderr


@pytest.mark.parametrize("locked", [".", "Patient"])
def test_a_patient_unreadable_at_its_first_backup_is_never_shown_as_deleted(site: Site, locked: str) -> None:
    new = site.patients()[0].parent / "Patient_99999"
    shutil.copytree(site.patients()[0], new)
    mode = (new / locked).stat().st_mode & 0o777
    (new / locked).chmod(0o000)  # the whole directory, or only its Patient file
    try:
        site.run("backup", expect=ExitCode.PARTIAL, unprivileged=True)
    finally:
        (new / locked).chmod(mode)
    site.run("backup")
    deleted = site.json("search", "--status", "deleted")["patients"]
    assert [p["path"] for p in deleted] == [], deleted


def test_a_destination_in_the_way_of_a_restore_is_an_input_error(site: Site, tmp_path: Path) -> None:
    patient = site.patients()[0]
    back = tmp_path / "back"
    site.run("restore", "--patient", rel(site, patient), "--to", str(back))
    image = back / rel(site, patient) / next(patient.glob("*.img")).name
    image.unlink()
    image.mkdir()  # a folder where the restore must write a file
    done = site.run("restore", "--patient", rel(site, patient), "--to", str(back), "--force", expect=None)
    assert done.returncode == ExitCode.INPUT, done.stderr


def test_an_empty_restore_destination_is_refused(site: Site, tmp_path: Path) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    done = run_cli("restore", "--patient", rel(site, site.patients()[0]), "--to", "", config=site.config, expect=None,
                   cwd=cwd)
    assert list(cwd.iterdir()) == [], "restored into the current directory"
    assert done.returncode in (2, ExitCode.INPUT), done.stdout + done.stderr


def test_catalog_rebuild_with_unreadable_trees_neither_empties_the_catalog_nor_exits_0(site: Site) -> None:
    before = site.json("search")["total"]
    assert before > 0
    # the files holding the trees (their packs in a version 2 store) made unreadable
    held = {storekit.where(site.store, key).path for key in storekit.keys(site.store, "trees/")}
    trees = {path: path.stat().st_mode for path in held}
    for path in trees:
        path.chmod(0o000)
    try:
        done = site.run("catalog", "rebuild", expect=None, unprivileged=True)
    finally:
        for path, mode in trees.items():
            path.chmod(mode)
    after = site.json("search")["total"]
    assert done.returncode != 0 or after == before, "a rebuild that lost every patient reported success"
    assert after == before


def test_catalog_sync_that_cannot_read_a_store_does_not_exit_0(site: Site) -> None:
    site.store.chmod(0o000)
    try:
        done = site.run("catalog", "sync", expect=None, unprivileged=True)
    finally:
        site.store.chmod(0o755)
    assert "not indexed" in done.stderr
    assert done.returncode != 0, "a store not indexed is at least a partial result"


def test_a_deleted_patient_whose_archive_failed_is_never_lost_to_forget_and_prune(tmp_path: Path) -> None:
    if reason := can_drop_read_capabilities():
        pytest.skip(reason)
    site = make_site(tmp_path / "site", patients=10)
    site.run("backup")
    gone = site.patients()[0]
    shutil.rmtree(gone)
    archives = site.store / "archives"
    archives.mkdir(exist_ok=True)
    archives.chmod(0o555)  # the archive cannot be written (as on a full disk: `small_disk` + `fill` do the same)
    try:
        failed = site.run("backup", expect=ExitCode.PARTIAL, unprivileged=True)  # snapshot saved, archive not
        assert "could not be archived" in failed.stderr, failed.stderr
    finally:
        archives.chmod(0o755)
    add_tables(site.config, retention={"keep_last": 1})
    site.run("forget")
    site.run("prune")
    site.run("backup")
    archived = [p["path"] for a in site.json("archive", "list")["archives"] for p in a["patients"]]
    kept = [p["path"] for s in site.json("snapshots")["snapshots"] for p in manifest(site, s["id"])["patients"]]
    assert rel(site, gone) in archived or rel(site, gone) in kept, "the deleted patient's last copy is gone"


@pytest.mark.parametrize("damage", ["missing", "a file"])
def test_a_store_without_its_snapshots_folder_is_never_pruned_empty(site: Site, damage: str) -> None:
    snapshots = site.store / "snapshots"
    snapshots.rename(site.root / "snapshots.away")
    if damage == "a file":
        snapshots.write_bytes(b"not a folder")
    try:
        checked = site.run("check", expect=None)
        pruned = site.run("prune", "--dry-run", "--json", expect=None)
    finally:
        if snapshots.is_file():
            snapshots.unlink()
        (site.root / "snapshots.away").rename(snapshots)
    assert checked.returncode != 0, checked.stdout
    assert pruned.returncode != 0 or json.loads(pruned.stdout)["deleted"] == 0, pruned.stdout


def test_an_unlistable_folder_among_the_root_files_keeps_its_earlier_copy(site: Site, tmp_path: Path) -> None:
    physics = site.patients()[0].parent.parent / "Physics"
    physics.mkdir()
    (physics / "machine.txt").write_text("commissioning data")
    done = site.json("backup")
    files = manifest(site, done["snapshot"])["other"]["files"]
    physics.chmod(0o000)
    try:
        summary = json.loads(site.run("backup", "--json", expect=ExitCode.PARTIAL, unprivileged=True).stdout)
    finally:
        physics.chmod(0o755)
    other = manifest(site, summary["snapshot"])["other"]
    add_tables(site.config, retention={"keep_last": 1})
    site.run("forget")
    site.run("prune")
    site.run("restore", "--all", "--to", str(tmp_path / "back"))
    assert (tmp_path / "back" / rel(site, physics) / "machine.txt").is_file(), "the folder's last copy is gone"
    assert other["files"] == files and other.get("incomplete") is True, other


def test_an_archive_ingest_survives_a_backup_starting_meanwhile(tmp_path: Path) -> None:
    import tarfile
    import time

    site = make_site(tmp_path / "site", patients=6, image_mb=6)
    site.run("backup")
    archive = tmp_path / "old.tar"
    bulk = next(site.patients()[0].glob("*.img"))
    with tarfile.open(archive, "w") as tar:
        tar.add(site.db / "Institution_1", arcname="Institution_1")
        for n in range(3):  # long enough to stage that the backup starts while the ingest writes
            with bulk.open("wb") as out:
                out.write(os.urandom(100 << 20))
            tar.add(bulk, arcname=f"{rel(site, bulk)}.{n}")
    command = [sys.executable, "-m", "rtvault", "--config", str(site.config), "archive", "ingest", str(archive)]
    ingest = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not site.staged() and ingest.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if ingest.poll() is not None:
            pytest.skip("the ingest finished before a backup could start")
        busy = site.run("backup", expect=ExitCode.LOCKED)  # one writer at a time: the ingest holds the lock
        assert "locked by archive ingest" in busy.stderr, busy.stderr
        out, err = ingest.communicate(timeout=300)
    finally:
        if ingest.poll() is None:
            ingest.kill()
            ingest.communicate()
    assert ingest.returncode == 0, out + err
    site.run("backup")
    assert site.json("check", "--read-data")["healthy"] is True


def test_one_unreadable_copy_store_never_stops_the_catalog_following_the_others(site: Site, tmp_path: Path) -> None:
    copy = site.root / "copy"
    with site.config.open("a", encoding="utf-8") as config:
        config.write(f'\n[stores.copy]\npath = "{copy}"\ncopy_of = "primary"\n')
    site.run("init")
    site.run("replicate")
    (copy / "snapshots").chmod(0o000)
    try:
        done = site.run("catalog", "sync", "--json", expect=ExitCode.PARTIAL, unprivileged=True)
        site.patients()[0].rename(site.root / "gone")
        backup = site.run("backup", "--allow-shrink", unprivileged=True)
    finally:
        (copy / "snapshots").chmod(0o755)
    stores = {s["store"]: s for s in json.loads(done.stdout)["stores"]}
    assert stores["primary"]["problems"] == [] and "store copy not indexed" in stores["copy"]["problems"][0]
    assert "store copy not indexed" in backup.stderr
    import sqlite3

    newest = site.json("snapshots")["snapshots"][-1]["id"]
    indexed = sqlite3.connect(site.root / "catalog.sqlite").execute(
        "SELECT 1 FROM indexed WHERE kind = 'snapshot' AND ref = ?", (newest,)).fetchall()  # stores by id
    assert indexed, "the primary's new snapshot must reach the catalog although the copy cannot be read"
