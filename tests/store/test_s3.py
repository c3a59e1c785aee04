"""An S3 store used as a user would, through the `rtvault` command, on a real SeaweedFS server: as the only
store, as a second store reached with `--store`, and while the server stops answering in the middle of a backup."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from kit.cli import run_cli
from kit.config import write_config
from kit.files import kept_bytes
from kit.seaweed import SeaweedServer, start_server
from rtvault.demo import generate_database
from rtvault.demo.evolve import evolve_database
from rtvault.errors import ExitCode


def rtvault(config: Path, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, config=config, expect=expect, timeout=180)  # an S3 store is slower than a disk


def as_json(config: Path, *args: str) -> dict:
    return json.loads(rtvault(config, *args, "--json").stdout)


@dataclass
class Site:
    """An S3-only configuration and a two-store one (directory primary + the same S3 store as `offsite`),
    after two days of backups to the S3 store and one to the primary."""

    db: Path
    day0: Path  # a copy of the database before the second day deleted a patient
    deleted: str
    s3_only: Path
    two_stores: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, seaweed: SeaweedServer) -> Site:
    base = tmp_path_factory.mktemp("s3-site")
    db = base / "db"
    generate_database(db, patients=6, seed=7, image_mb=0.2)
    offsite = seaweed.store_settings(seaweed.new_bucket(), "hospital/rtvault")
    s3_only = write_config(base / "s3-only" / "rtvault.toml", root=db, stores={"offsite": offsite})
    two = write_config(base / "two" / "rtvault.toml", root=db, stores={"primary": base / "nas", "offsite": offsite})
    assert [s["created"] for s in as_json(s3_only, "init")["stores"]] == [True]
    assert [s["created"] for s in as_json(two, "init")["stores"]] == [True, False]
    rtvault(s3_only, "backup")
    rtvault(two, "backup")
    shutil.copytree(db, base / "day0")
    deleted = evolve_database(db, day=1).deleted_patients
    assert len(deleted) == 1
    rtvault(s3_only, "backup")  # archives the patient deleted that day
    return Site(db, base / "day0", deleted[0], s3_only, two)


def test_an_s3_store_alone_backs_up_lists_checks_and_restores(site: Site, tmp_path: Path) -> None:
    assert len(as_json(site.s3_only, "snapshots")["snapshots"]) == 2
    kept = sorted(p for p in site.db.glob("Institution_*/Mount_*/Patient_*"))[0].relative_to(site.db).as_posix()
    rtvault(site.s3_only, "restore", "--patient", kept, "--to", str(tmp_path / "r"))
    assert kept_bytes(tmp_path / "r" / kept) == kept_bytes(site.db / kept)
    report = as_json(site.s3_only, "check", "--read-data")
    assert report["healthy"] is True, report
    archives = as_json(site.s3_only, "archive", "list")["archives"]
    assert [p["path"] for a in archives for p in a["patients"]] == [site.deleted]
    rtvault(site.s3_only, "restore", "--patient", site.deleted, "--from-archive", "--to", str(tmp_path / "a"))
    assert kept_bytes(tmp_path / "a" / site.deleted) == kept_bytes(site.day0 / site.deleted)


def test_store_option_reads_the_s3_store_beside_a_directory_primary(site: Site, tmp_path: Path) -> None:
    two = site.two_stores
    assert len(as_json(two, "snapshots")["snapshots"]) == 1
    assert len(as_json(two, "snapshots", "--store", "offsite")["snapshots"]) == 2
    assert as_json(two, "archive", "list")["archives"] == []
    assert len(as_json(two, "archive", "list", "--store", "offsite")["archives"]) == 1
    assert as_json(two, "check", "--store", "offsite", "--read-data")["healthy"] is True
    rtvault(two, "restore", "--store", "offsite", "--patient", site.deleted, "--from-archive",
            "--to", str(tmp_path / "a"))
    assert kept_bytes(tmp_path / "a" / site.deleted) == kept_bytes(site.day0 / site.deleted)
    missing = rtvault(two, "snapshots", "--store", "tape", expect=ExitCode.CONFIG)
    assert "no store named 'tape' (configured: primary, offsite)" in missing.stderr


def _wait_for_first_object(server: SeaweedServer, bucket: str, backup: subprocess.Popen[str]) -> None:
    client = server.client()
    while backup.poll() is None:
        for folder in ("data/", "packs/"):  # a large object's own file, or the first pack sealed
            if client.list_objects_v2(Bucket=bucket, Prefix=f"rtvault/{folder}", MaxKeys=1).get("KeyCount"):  # type: ignore[attr-defined]
                return
        time.sleep(0.01)
    pytest.fail(f"the backup ended before writing anything: {backup.communicate()}")


@contextmanager
def _backup_frozen_mid_run(tmp_path: Path, seed: int, retry_seconds: int, thaw_after: float | None = None):
    """A backup into a SeaweedFS server that stops answering once the first pack is written (the database adds
    about 29 MB: more than one pack of 16 MiB), thawed after `thaw_after` seconds (else once the backup ended);
    yields (server, bucket, config, stdout, stderr, code)."""
    server = start_server(tmp_path / "seaweed")
    try:
        bucket = server.new_bucket()
        db = tmp_path / "db"
        generate_database(db, patients=12, seed=seed, image_mb=4)
        offsite = server.store_settings(bucket, "rtvault", retry_seconds=retry_seconds)
        config = write_config(tmp_path / "site" / "rtvault.toml", root=db, stores={"offsite": offsite})
        rtvault(config, "init")
        backup = subprocess.Popen([sys.executable, "-m", "rtvault", "--config", str(config), "backup"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for_first_object(server, bucket, backup)
        server.freeze()
        thaw = threading.Timer(thaw_after, server.thaw) if thaw_after is not None else None
        if thaw:
            thaw.start()
        try:
            out, err = backup.communicate(timeout=120)
        finally:
            thaw.join() if thaw else server.thaw()
        assert "Traceback" not in err
        yield server, bucket, config, out, err, backup.returncode
    finally:
        server.stop()


def test_a_server_that_stops_answering_fails_the_backup_cleanly_and_the_next_one_completes(
        tmp_path: Path) -> None:
    with _backup_frozen_mid_run(tmp_path, seed=3, retry_seconds=3) as (_server, _bucket, config, out, err, code):
        assert code == ExitCode.STORE, out + err
        message = err.strip().splitlines()
        assert len(message) == 1 and "S3 store offsite (http://127.0.0.1:" in message[0], err
        assert "unreachable after" in message[0]
        assert as_json(config, "snapshots")["snapshots"] == []
        rtvault(config, "backup")
        assert len(as_json(config, "snapshots")["snapshots"]) == 1
        assert as_json(config, "check", "--read-data")["healthy"] is True


def test_a_backup_failed_by_an_outage_releases_its_lock_once_the_server_is_back(tmp_path: Path) -> None:
    """The outage outlasts the backup's retry budget, then the server comes back while the failed run is on its
    way out: the run still gives its writer lock back, so another host need not wait for the lease."""
    # thawed after the workers gave up (4 s), within the release's own budget
    with _backup_frozen_mid_run(tmp_path, seed=4, retry_seconds=4, thaw_after=6.0) as (
            server, bucket, config, out, err, code):
        assert code == ExitCode.STORE, out + err
        assert "unreachable after" in err
        listed = server.client().list_objects_v2(Bucket=bucket, Prefix="rtvault/locks/")  # type: ignore[attr-defined]
        assert listed.get("KeyCount", 0) == 0, f"the failed run left its lock: {listed.get('Contents')}"
        assert "could not release" not in err
        rtvault(config, "backup")
