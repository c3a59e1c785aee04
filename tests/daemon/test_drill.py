"""`rtvault drill`: a patient and an archived patient restored from each store into scratch space, re-hashed,
timed against the continuity targets, recorded in the run journal and judged by `rtvault health`; a damaged store
fails its drill, an unreachable one is unavailable, the scratch space is always emptied and the source never
touched."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kit.cli import rtvault, rtvault_json
from kit.config import add_tables
from kit.daemon import Site, make_site
from kit.files import files_of
from rtvault.demo import evolve_database
from rtvault.jobs.drill import Drill, DrillReport
from rtvault.jobs.journal import Journal, run_record


@pytest.fixture(scope="module")
def drilled(tmp_path_factory: pytest.TempPathFactory, small_db: Path) -> Site:
    """Backed up, one clinical day (a patient deleted, hence archived), backed up again and replicated."""
    site = make_site(tmp_path_factory.mktemp("drill"), small_db)
    rtvault(site.config_path, "backup")
    evolve_database(site.base / "db", 1)
    rtvault(site.config_path, "backup")
    rtvault(site.config_path, "replicate")
    return site


def _copy(site: Site, tmp_path: Path) -> Site:
    shutil.copytree(site.base, tmp_path / "site", symlinks=True)
    text = site.config_path.read_text().replace(str(site.base), str(tmp_path / "site"))
    (tmp_path / "site" / "rtvault.toml").write_text(text)
    return Site(tmp_path / "site", tmp_path / "site" / "rtvault.toml")


def _health(site: Site) -> dict:
    report = json.loads(rtvault(site.config_path, "health", "--json", expect=None).stdout)
    return next(c for c in report["checks"] if c["name"] == "drill")


def test_each_store_gives_back_a_patient_and_an_archive_in_time(drilled: Site, tmp_path: Path) -> None:
    site = _copy(drilled, tmp_path)
    first = _health(site)
    assert first["status"] == "OK" and "no restore drill recorded yet" in first["message"]  # a new site has a week
    before = files_of(site.base / "db")
    (site.base / "rtvault-drills").mkdir()
    leftover = site.base / "rtvault-drills" / "drill-20260101T000000Z-dead00"  # a drill killed by SIGKILL
    (leftover / "Institution_1").mkdir(parents=True)
    report = rtvault_json(site.config_path, "drill")
    kinds = {(d["store"], d["kind"]): d for d in report["drills"]}
    assert set(kinds) == {("primary", "patient"), ("primary", "archive"), ("copy", "patient"), ("copy", "archive")}
    for d in report["drills"]:
        assert d["result"] == "ok" and d["error"] == "" and d["within_rto"] is True, d
        assert d["files"] > 0 and d["bytes"] > 0 and d["seconds"] > 0 and d["mb_per_s"] > 0
        assert set(d) >= {"store", "kind", "key", "bytes", "seconds", "mb_per_s", "full_estimate_s", "result",
                          "error"}
    patient = kinds[("primary", "patient")]
    assert patient["key"].startswith("Institution_1/") and patient["full_estimate_s"] > 0
    assert kinds[("primary", "archive")]["full_estimate_s"] is None
    assert list((site.base / "rtvault-drills").iterdir()) == []  # emptied, the leftover too
    assert files_of(site.base / "db") == before  # the source untouched
    [run] = rtvault_json(site.config_path, "runs", "--job", "drill")
    assert run["trigger"] == "manual" and run["result"] == "ok" and run["summary"]["drills"] == report["drills"]
    check = _health(site)
    assert check["status"] == "OK" and "succeeded" in check["message"]


def test_a_damaged_store_fails_its_drill(drilled: Site, tmp_path: Path) -> None:
    site = _copy(drilled, tmp_path)
    for path in [*(site.copy / "packs").rglob("*"), *(site.copy / "data").rglob("*")]:
        if path.is_file():
            data = bytearray(path.read_bytes())
            for at in range(0, len(data) - 64, 997):  # every blob of every stored file, not its pack's header
                data[at] ^= 0xFF
            path.write_bytes(bytes(data))
    done = rtvault(site.config_path, "drill", "--store", "copy", "--json", expect=7)
    drills = json.loads(done.stdout)["drills"]
    assert drills[0]["store"] == "copy" and drills[0]["result"] == "failed" and drills[0]["error"]
    assert list((site.base / "rtvault-drills").iterdir()) == []
    check = _health(site)
    assert check["status"] == "CRITICAL" and "failed" in check["message"]


def test_an_unreachable_store_is_unavailable_not_a_failure_of_the_data(drilled: Site, tmp_path: Path) -> None:
    site = _copy(drilled, tmp_path)
    site.copy.rename(site.base / "copy-unmounted")
    done = rtvault(site.config_path, "drill", "--json", expect=8)
    by_store = {d["store"]: d for d in json.loads(done.stdout)["drills"]}
    assert by_store["copy"]["result"] == "unavailable" and "copy" in by_store["copy"]["error"]
    assert by_store["primary"]["result"] == "ok"
    assert _health(site)["status"] == "WARNING"


def test_a_full_drill_restores_everything_and_is_held_against_the_full_target(drilled: Site, tmp_path: Path) -> None:
    site = _copy(drilled, tmp_path)
    report = rtvault_json(site.config_path, "drill", "--store", "primary", "--full")
    [full] = [d for d in report["drills"] if d["kind"] == "full"]
    assert full["result"] == "ok" and full["full_estimate_s"] == full["seconds"]
    assert full["rto_s"] == 30 * 60 and full["files"] >= 2 * 20  # every patient's files and the Institution


def test_missed_targets_turn_health_critical_and_the_exit_code_non_zero(drilled: Site, tmp_path: Path) -> None:
    site = _copy(drilled, tmp_path)
    slow = Drill("copy", "patient", "Institution_1/Mount_0/Patient_1", bytes=10**9, seconds=700.0,
                 full_estimate_s=4000.0, rto_s=600.0, within_rto=False)
    report = DrillReport((slow,), 10, 30)
    assert report.verdict().code == 7
    now = datetime.now(UTC)
    Journal(site.config).append(run_record("drill", "schedule", now, now, "partial", "", report.to_json()))
    check = _health(site)
    assert check["status"] == "CRITICAL" and "recovery time objective" in check["message"]
    assert "11.7 min" in check["message"] and "66.7 min" in check["message"]


def test_a_drill_never_writes_inside_the_pinnacle_database(drilled: Site, tmp_path: Path) -> None:
    site = _copy(drilled, tmp_path)
    add_tables(site.config_path, continuity={"drill_dir": site.base / "db" / "drills"})
    done = rtvault(site.config_path, "drill", expect=3)
    assert "continuity.drill_dir" in done.stderr and "inside the Pinnacle database" in done.stderr
    assert not (site.base / "db" / "drills").exists()


def test_a_named_patient_is_drilled_instead_of_a_random_one(drilled: Site, tmp_path: Path) -> None:
    site = _copy(drilled, tmp_path)
    first = rtvault_json(site.config_path, "drill", "--store", "primary")["drills"][0]["key"]
    again = rtvault_json(site.config_path, "drill", "--store", "primary", "--patient", first)["drills"][0]
    assert again["key"] == first and again["result"] == "ok"
    missing = rtvault(site.config_path, "drill", "--store", "primary", "--patient", "NO-SUCH-MRN", "--json",
                      expect=7)
    assert "no whole version of patient 'NO-SUCH-MRN'" in json.loads(missing.stdout)["drills"][0]["error"]


def test_a_mounted_removable_disk_is_drilled_and_restored_from_its_own_copy(drilled: Site, tmp_path: Path) -> None:
    site = _copy(drilled, tmp_path)
    disk = tmp_path / "usb"
    disk.mkdir()
    rtvault(site.config_path, "volume", "init", disk, "--label", "usb-1")
    rtvault(site.config_path, "volume", "sync", "usb-1")
    [archived] = rtvault_json(site.config_path, "archive", "list")["archives"][0]["patients"][:1]
    key = archived["path"]
    rtvault(site.config_path, "restore", "--patient", key, "--to", tmp_path / "from-store", "--from-archive")
    shutil.rmtree(site.primary)  # no store at all: the disk alone gives the patient back
    shutil.rmtree(site.copy)
    rtvault(site.config_path, "restore", "--patient", key, "--to", tmp_path / "from-disk", "--volume", "usb-1")
    assert files_of(tmp_path / "from-disk" / key) == files_of(tmp_path / "from-store" / key)  # byte for byte
    assert (tmp_path / "from-disk" / "Institution").is_file()  # the filtered Institution file Pinnacle imports
    report = rtvault_json(site.config_path, "drill", "--store", "usb-1")
    [from_disk] = report["drills"]
    assert from_disk["store"] == "volume:usb-1" and from_disk["kind"] == "archive" and from_disk["result"] == "ok"
    assert from_disk["files"] > 0 and from_disk["bytes"] > 0
    disk.rename(tmp_path / "usb-in-a-drawer")
    away = rtvault(site.config_path, "drill", "--store", "usb-1", "--json", expect=8)
    [unmounted] = json.loads(away.stdout)["drills"]
    assert unmounted["result"] == "unavailable" and "not mounted" in unmounted["error"]
