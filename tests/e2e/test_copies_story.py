"""Issue 6's "Done when", as a new user would do it, through the `rtvault` command only: a primary, a secondary
and an S3 store (on a real SeaweedFS server) plus a removable disk; backup and replicate; a corrupted and a deleted
file on the primary caught by verify and healed by repair; status showing every patient version and archive on at
least two verified copies; every patient restored from the S3 store alone; the copies on the patient page."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))
from seaweed import SeaweedServer

import storekit
from rtvault.catalog import open_catalog
from rtvault.catalog.patients import patient_detail

TRANSIENT = (".ErrorLog", ".Transcript", "~")
STORES = ["primary", "secondary", "offsite"]


def rtvault(config: Path | None, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
    """`rtvault ARGS` in a subprocess, as typed at a shell; checks the exit code and that no traceback leaked."""
    prefix = ["--config", str(config)] if config else []
    done = subprocess.run([sys.executable, "-m", "rtvault", *prefix, *args], capture_output=True, text=True,
                          timeout=180, env={**os.environ, "COLUMNS": "200"})
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    if expect is not None:
        assert done.returncode == expect, f"exit {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def as_json(config: Path, *args: str, expect: int = 0) -> dict:
    return json.loads(rtvault(config, *args, "--json", expect=expect).stdout)


def files_under(root: Path) -> dict[str, bytes]:
    """Every file a backup keeps (Pinnacle's autosaves, logs and editor backups are never backed up)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".auto.plan") and not p.name.endswith(TRANSIENT)}


def write_config(site: Path, server: SeaweedServer) -> Path:
    """The configuration a new user writes: two directory stores, an encrypted S3 store, daily verification."""
    passphrase = site / "offsite.passphrase"
    passphrase.write_text("correct horse battery staple offsite\n", encoding="utf-8")
    passphrase.chmod(0o600)
    offsite = server.store_toml("offsite", server.new_bucket(), "clinic", copy_of="primary")
    config = site / "rtvault.toml"
    config.write_text(
        f"[source.pinnacle]\nroot = {json.dumps(str(site / 'pinnacle'))}\n\n"
        f"[stores.primary]\npath = {json.dumps(str(site / 'nas1'))}\n\n"
        f"[stores.secondary]\npath = {json.dumps(str(site / 'nas2'))}\ncopy_of = \"primary\"\n\n"
        f"{offsite}encrypt = true\npassphrase_file = {json.dumps(str(passphrase))}\n\n"
        f"[catalog]\nurl = {json.dumps('sqlite:///' + str(site / 'catalog.sqlite'))}\n\n"
        "[verify]\ncycle_days = 30\n", encoding="utf-8")
    return config


def damage_the_primary(primary: Path) -> tuple[str, str]:
    """Flip bytes in the largest object and delete the second largest (image data every snapshot names)."""
    objects = sorted(storekit.keys(primary, "data/"), key=lambda k: -storekit.where(primary, k).length)
    corrupt, deleted = objects[0], objects[1]
    storekit.flip(primary, corrupt)
    storekit.lose(primary, deleted)
    return corrupt, deleted


def test_every_byte_twice_story(tmp_path: Path, seaweed: SeaweedServer) -> None:
    site = tmp_path / "site"
    site.mkdir()
    rtvault(None, "demo", "generate", "--out", str(site / "pinnacle"), "--patients", "6", "--seed", "7",
            "--image-mb", "0.2")
    config = write_config(site, seaweed)
    assert [s["created"] for s in as_json(config, "init")["stores"]] == [True, True, True]

    rtvault(config, "backup")
    day0 = tmp_path / "day0"
    shutil.copytree(site / "pinnacle", day0, symlinks=True)
    rtvault(None, "demo", "evolve", "--db", str(site / "pinnacle"), "--day", "1")
    rtvault(config, "backup")  # archives the patient deleted that day
    archived = [p["path"] for a in as_json(config, "archive", "list")["archives"] for p in a["patients"]]
    assert len(archived) == 1

    pairs = as_json(config, "replicate")["pairs"]
    assert [(p["to"], p["complete"], p["snapshots_copied"], p["archives_copied"]) for p in pairs] == [
        ("secondary", True, 2, 1), ("offsite", True, 2, 1)]
    (site / "usb").mkdir()
    rtvault(config, "volume", "init", str(site / "usb"), "--label", "usb-1")
    assert len(as_json(config, "volume", "sync", "usb-1")["copied"]) == 1

    corrupt, deleted = damage_the_primary(site / "nas1")
    found = as_json(config, "verify", "--all", expect=7)
    problems = {s["store"]: {(p["key"], p["kind"]) for p in s["problems"]} for s in found["stores"]}
    assert problems == {"primary": {(corrupt, "corrupt"), (deleted, "missing")}, "secondary": set(),
                        "offsite": set()}
    healed = as_json(config, "repair")
    assert healed["healthy"] is True
    repaired = {r["key"]: r["kind"] for r in healed["stores"][0]["repaired"]}
    assert repaired == {corrupt: "corrupt", deleted: "missing"}
    for store in STORES:
        assert as_json(config, "verify", "--all", "--store", store)["healthy"] is True

    status = as_json(config, "status")
    assert status["ok"] and status["verified_ok"], status
    assert status["too_few_copies"] == [] and status["too_few_verified"] == []
    assert status["versions"] >= 6 + 1 and status["archives"] == 1
    figures = {s["name"]: s for s in status["stores"]}
    assert list(figures) == STORES
    for name, store in figures.items():
        assert store["available"] and store["verified"] and store["verify_problems"] == 0, name
        assert store["snapshots"] == 2 and store["archives"] == 1 and store["objects"] > 0 and store["bytes"] > 0
    assert figures["secondary"]["lag_snapshots"] == figures["offsite"]["lag_snapshots"] == 0
    assert figures["offsite"]["objects"] == figures["primary"]["objects"]
    assert as_json(config, "check", "--read-data")["healthy"] is True

    # the S3 store alone: every patient of the latest snapshot, and the archived one from its archive
    restored = tmp_path / "from-offsite"
    rtvault(config, "restore", "--all", "--store", "offsite", "--to", str(restored / "all"))
    assert files_under(restored / "all") == files_under(site / "pinnacle")
    rtvault(config, "restore", "--patient", archived[0], "--from-archive", "--store", "offsite",
            "--to", str(restored / "archived"))
    assert files_under(restored / "archived" / archived[0]) == files_under(day0 / archived[0])

    rtvault(config, "catalog", "sync")
    everyone = [p for status_ in ("active", "archived")
                for p in as_json(config, "search", "--status", status_)["patients"]]
    assert len(everyone) == 6 + 1
    for patient in everyone:
        stores = {loc["store"] for loc in patient["locations"]}
        assert set(STORES) <= stores, (patient["path"], stores)
    catalog = open_catalog(f"sqlite:///{site / 'catalog.sqlite'}")
    gone = next(p for p in everyone if p["path"] == archived[0])
    page = patient_detail(catalog, gone["key"])
    assert page is not None
    shown = {loc["store"] for version in page["versions"] for loc in version["locations"]}
    assert shown == {*STORES, "volume:usb-1"}, shown
