"""A patient deleted in Pinnacle whose archive fails after the backup saved its snapshot, as a hospital meets it:
the store's disk fills up during the archive, or the backup is killed between its snapshot and the archive.
The snapshot is saved all the same; the patient's last copy, in the snapshot before, survives `forget` and
`prune` ("awaiting archive of <path>"); the next backup or sweep archives it and says so; then retention lets
that snapshot go, and the archive gives the patient back byte for byte, to `tar -xzf` as to rtvault."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kit.config import KEEP_LAST, add_tables
from kit.faults import Site, fill, make_site, small_disk
from kit.files import kept_bytes
from rtvault.errors import ExitCode

# `rtvault ARGS` killed (SIGKILL) the moment it starts its first archive, i.e. right after the snapshot is saved
KILLED_BEFORE_ARCHIVING = """import os, runpy, signal, sys
import rtvault.jobs.archives
rtvault.jobs.archives.archive_patient_version = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
sys.argv[0] = "rtvault"
runpy.run_module("rtvault", run_name="__main__")
"""


def delete_a_patient(site: Site) -> tuple[str, dict[str, bytes]]:
    """One patient deleted in Pinnacle after a first backup: its path and its files as they were."""
    add_tables(site.config, retention=KEEP_LAST)
    site.run("backup")
    victim = site.patients()[1]
    before = kept_bytes(victim)
    shutil.rmtree(victim)
    return victim.relative_to(site.db).as_posix(), before


def last_copy_survives_retention(site: Site, victim: str, before: dict[str, bytes]) -> None:
    """`forget` keeps the snapshot holding the patient's last copy, `prune` leaves it whole: restored, equal."""
    old, latest = (s["id"] for s in site.json("snapshots")["snapshots"])
    forget = site.json("forget")
    assert forget["forget"] == []
    assert {k["id"]: k["reasons"] for k in forget["keep"]} == {latest: ["last"], old: [f"awaiting archive of {victim}"]}
    site.json("prune")
    assert site.json("check", "--read-data")["healthy"] is True
    site.run("restore", "--patient", victim, "--snapshot", old, "--to", str(site.root / "from-snapshot"))
    assert kept_bytes(site.root / "from-snapshot" / victim) == before


def archived_then_released(site: Site, victim: str, before: dict[str, bytes], archive_id: str) -> None:
    """Once archived, retention lets the old snapshot go, and the archive holds the patient byte for byte."""
    holding = site.json("snapshots")["snapshots"][0]["id"]  # the patient's last copy in a snapshot
    forget = site.json("forget")
    assert holding in forget["forget"] and [k["reasons"] for k in forget["keep"]] == [["last"]]
    site.json("prune")
    stored = site.store / "archives" / "tars" / archive_id[:2] / archive_id
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == archive_id
    (site.root / "tar").mkdir()
    subprocess.run(["tar", "-xzf", str(stored), "-C", str(site.root / "tar")], check=True)
    assert kept_bytes(site.root / "tar" / victim) == before
    site.run("restore", "--patient", victim, "--to", str(site.root / "from-archive"), "--from-archive")
    assert kept_bytes(site.root / "from-archive" / victim) == before
    assert site.json("check", "--read-data")["healthy"] is True


def test_a_disk_full_during_the_archive_keeps_the_snapshot_and_the_patients_last_copy(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "32m") as disk:
        site = make_site(tmp_path / "site", store=disk / "store", patients=4, image_mb=3.0)
        victim, before = delete_a_patient(site)
        filler = fill(disk)
        os.truncate(filler, filler.stat().st_size - (128 << 10))  # room for a manifest, not for an archive

        done = site.run("backup", "--allow-shrink", expect=ExitCode.PARTIAL)
        assert "no space left on the device" in done.stderr and f"{victim}: not archived" in done.stderr
        assert f"could not be archived ({victim})" in done.stderr, done.stderr
        summary = site.json("backup", "--allow-shrink", expect=ExitCode.PARTIAL)  # still full: same answer
        assert summary["archived"] == [] and summary["not_archived"] == [victim]
        snapshots = site.json("snapshots")["snapshots"]
        assert len(snapshots) == 3 and snapshots[-1]["patients"] == 3  # each run saved its snapshot (the RPO)
        assert site.staged() == [] and site.json("archive", "list")["archives"] == []
        site.json("forget")  # the two snapshots without the patient: one goes, as the rules say
        last_copy_survives_retention(site, victim, before)

        filler.unlink()  # space freed: the sweep the message names archives the patient
        sweep = site.json("archive", "sweep")
        assert [[p["path"] for p in a["patients"]] for a in sweep["archived"]] == [[victim]]
        assert sweep["not_archived"] == [] and site.json("archive", "sweep")["archived"] == []
        archived_then_released(site, victim, before, sweep["archived"][0]["id"])


def killed_before_archiving(site: Site) -> None:
    killed = subprocess.run([sys.executable, "-c", KILLED_BEFORE_ARCHIVING, "--config", str(site.config), "backup",
                             "--allow-shrink"], capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert site.json("snapshots")["snapshots"][-1]["patients"] == 3  # saved before the kill


def test_a_backup_killed_between_its_snapshot_and_the_archive_is_archived_by_the_next(tmp_path: Path) -> None:
    site = make_site(tmp_path, patients=4)
    victim, before = delete_a_patient(site)
    killed_before_archiving(site)
    assert site.json("archive", "list")["archives"] == []
    last_copy_survives_retention(site, victim, before)

    done = site.run("backup")
    assert "archived 1 patient(s) gone from Pinnacle" in done.stdout, done.stdout
    archive = site.json("archive", "list")["archives"]
    assert [[p["path"] for p in a["patients"]] for a in archive] == [[victim]]
    assert site.json("backup")["archived"] == []  # once only
    archived_then_released(site, victim, before, archive[0]["id"])


def test_a_sweep_after_a_killed_backup_archives_and_only_warns_of_the_stale_lock(tmp_path: Path) -> None:
    site = make_site(tmp_path, patients=4)
    victim, _before = delete_a_patient(site)
    killed_before_archiving(site)
    done = site.run("archive", "sweep")  # exit 0: taking over the dead run's lock is no failure
    assert "took over a stale lock" in done.stderr, done.stderr
    assert "1 archived, 0 ingested" in done.stdout, done.stdout
    assert [p["path"] for a in site.json("archive", "list")["archives"] for p in a["patients"]] == [victim]


@pytest.fixture(autouse=True)
def _tar() -> None:
    if shutil.which("tar") is None:
        pytest.skip("GNU tar is not installed")
