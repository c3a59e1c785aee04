"""Faults a hospital meets on a store, through the CLI: a disk that fills up (while the lock is taken, or in the
middle of a backup) and a NAS remounted read-only. Each is one sentence naming the path and what to do, a
store error (exit 8), nothing left behind, and the next run completes once the fault is gone."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kit.faults import Site, fill, make_site, remount, small_disk
from rtvault.errors import ExitCode

LOCK = Path("locks") / "writer.json"


def one_sentence(done) -> str:
    lines = [line for line in done.stderr.splitlines() if line.startswith("rtvault: error:")]
    assert len(lines) == 1, done.stderr
    assert "None" not in lines[0] and "internal error" not in lines[0]
    return lines[0]


@pytest.fixture
def disk_site(tmp_path: Path):
    with small_disk(tmp_path / "disk", "24m") as disk:
        yield make_site(tmp_path / "site", store=disk / "store")


def test_a_disk_full_while_taking_the_lock_leaves_no_lock_and_the_next_backup_runs(disk_site: Site) -> None:
    filler = fill(disk_site.store.parent)
    done = disk_site.run("backup", expect=ExitCode.STORE)
    message = one_sentence(done)
    assert "no space left on the device" in message and str(disk_site.store) in message, message
    assert "free space" in message
    assert not (disk_site.store / LOCK).exists(), "a lock that could not be written whole must not be left"
    assert disk_site.staged() == []
    filler.unlink()
    summary = disk_site.json("backup")  # at once: no 15-minute wait for a lease
    assert summary["patients"] == 4
    assert disk_site.json("check", "--read-data")["healthy"] is True


def test_an_empty_lock_left_by_an_older_run_counts_only_for_seconds(disk_site: Site) -> None:
    lock = disk_site.store / LOCK
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_bytes(b"")
    busy = disk_site.run("backup", expect=ExitCode.LOCKED)
    message = one_sentence(busy)
    assert "has not finished writing its lock file" in message, message
    old = lock.stat().st_mtime - 60
    os.utime(lock, (old, old))
    done = disk_site.json("backup")
    assert any("empty or unreadable" in w["message"] for w in done["warnings"]), done["warnings"]
    assert not lock.exists()


def test_a_disk_full_in_the_middle_of_a_backup_is_one_sentence_and_removes_its_staging(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "1m") as disk:
        site = make_site(tmp_path / "site", store=disk / "store", patients=5, image_mb=1.0)
        done = site.run("backup", expect=ExitCode.STORE)
        message = one_sentence(done)
        assert "no space left on the device" in message and str(disk) in message, message
        assert site.staged() == [], "a failed backup must not keep the disk full with its staging files"
        assert not (site.store / LOCK).exists()
        assert site.json("snapshots")["snapshots"] == []
        remount(disk, "size=64m")
        assert site.json("backup")["patients"] == 5
        assert site.json("check", "--read-data")["healthy"] is True


def test_a_read_only_store_refuses_every_writer_with_what_to_do(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "32m") as disk:
        site = make_site(tmp_path / "site", store=disk / "store")
        site.run("backup")
        archive = tmp_path / "old.tar"
        archive.write_bytes(b"\0" * 10240)  # an empty tar: still an input the store would have to record
        remount(disk, "ro")
        try:
            for command in (["backup"], ["forget"], ["prune"], ["verify", "--all"], ["archive", "ingest",
                                                                                       str(archive)]):
                done = site.run(*command, expect=ExitCode.STORE)
                message = one_sentence(done)
                assert "read-only" in message and "remount it read-write" in message, (command, message)
                assert str(disk / "store") in message, (command, message)
            # readers still work on a read-only store
            assert len(site.json("snapshots")["snapshots"]) == 1
            assert site.json("check", "--read-data")["healthy"] is True
        finally:
            remount(disk, "rw")
        assert site.json("backup")["patients"] == 4


def test_an_unreadable_store_file_is_a_store_error_not_a_bug(tmp_path: Path) -> None:
    from kit.faults import can_drop_read_capabilities

    if reason := can_drop_read_capabilities():
        pytest.skip(reason)
    site = make_site(tmp_path / "site")
    site.run("backup")
    snapshots = site.store / "snapshots"
    snapshots.chmod(0o000)
    try:
        done = site.run("snapshots", expect=ExitCode.STORE, unprivileged=True)
        message = one_sentence(done)
        assert "permission denied" in message and str(snapshots) in message, message
    finally:
        snapshots.chmod(0o755)
    assert json.loads(site.run("snapshots", "--json").stdout)["snapshots"]


def test_a_restore_destination_that_cannot_be_written_is_an_input_error(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", patients=3, image_mb=1.0)
    site.run("backup")
    cases = {"/dev/null": "is not a directory", "/proc/rtvault-restore": "/proc/rtvault-restore"}
    for destination, expected in cases.items():
        message = one_sentence(site.run("restore", "--all", "--to", destination, expect=ExitCode.INPUT))
        assert expected in message, message
    with small_disk(tmp_path / "small", "1m") as small:
        message = one_sentence(site.run("restore", "--all", "--to", str(small / "back"), expect=ExitCode.INPUT))
        assert "no space left on the device" in message and str(small) in message, message
        assert not [p for p in small.rglob("*") if p.name.endswith(".rtvault-partial")]
        remount(small, "ro")
        message = one_sentence(site.run("restore", "--all", "--to", str(small / "other"), expect=ExitCode.INPUT))
        assert "read-only" in message and str(small / "other") in message, message


def test_one_damaged_old_manifest_does_not_stop_the_next_backup(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site")
    site.run("backup")
    site.run("backup")
    oldest = sorted((site.store / "snapshots").glob("*.json"))[0]
    damaged = json.loads(oldest.read_text())
    damaged["patients"][0]["last_name"] = "FORGED"  # still JSON: only its integrity hash tells
    oldest.write_text(json.dumps(damaged))
    summary = site.json("backup")
    assert any(w["file"] == f"snapshots/{oldest.name}" and "rtvault repair" in w["message"]
               for w in summary["warnings"]), summary["warnings"]
    assert site.run("check", expect=ExitCode.CHECK_FAILED).returncode == ExitCode.CHECK_FAILED


def test_the_folder_a_restore_creates_is_its_owners_only_while_files_keep_their_modes(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", patients=2)
    site.run("backup")
    old = os.umask(0o022)
    try:
        site.run("restore", "--all", "--to", str(tmp_path / "new" / "back"))
    finally:
        os.umask(old)
    assert (tmp_path / "new" / "back").stat().st_mode & 0o777 == 0o700
    for restored in (tmp_path / "new" / "back").rglob("Patient"):
        original = site.db / restored.relative_to(tmp_path / "new" / "back")
        assert restored.stat().st_mode & 0o777 == original.stat().st_mode & 0o777
