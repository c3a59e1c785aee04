"""Issue 6's "Done when", as a new user would do it, through the `rtvault` command only: a primary, a secondary
and an S3 store (on a real SeaweedFS server) plus a removable disk; backup and replicate; a corrupted and a deleted
file on the primary caught by verify and healed by repair; status showing every patient version and archive on at
least two verified copies; every patient restored from the S3 store alone; the copies on the patient page."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from kit import store as storekit
from kit.cli import run_cli
from kit.config import write_config
from kit.files import kept_bytes
from kit.seaweed import SeaweedServer
from rtvault.catalog import open_catalog
from rtvault.catalog.patients import patient_detail
from rtvault.config import load
from rtvault.configured import store_labels

STORES = ["primary", "secondary", "offsite"]


def rtvault(config: Path | None, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
    """`rtvault ARGS` in a subprocess, as typed at a shell; checks the exit code and that no traceback leaked."""
    return run_cli(*args, config=config, expect=expect, timeout=180)  # an S3 store is slower than a disk


def as_json(config: Path, *args: str, expect: int = 0) -> dict:
    return json.loads(rtvault(config, *args, "--json", expect=expect).stdout)


def write_site_config(site: Path, server: SeaweedServer) -> Path:
    """The configuration a new user writes: two directory stores, an encrypted S3 store, daily verification."""
    passphrase = site / "offsite.passphrase"
    passphrase.write_text("correct horse battery staple offsite\n", encoding="utf-8")
    passphrase.chmod(0o600)
    offsite = {**server.store_settings(server.new_bucket(), "clinic", copy_of="primary"), "encrypt": True,
               "passphrase_file": passphrase}
    return write_config(site / "rtvault.toml", root=site / "pinnacle",
                        stores={"primary": site / "nas1", "secondary": {"path": site / "nas2", "copy_of": "primary"},
                                "offsite": offsite},
                        catalog={"url": f"sqlite:///{site / 'catalog.sqlite'}"}, verify={"cycle_days": 30})


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
    config = write_site_config(site, seaweed)
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
    assert kept_bytes(restored / "all") == kept_bytes(site / "pinnacle")
    rtvault(config, "restore", "--patient", archived[0], "--from-archive", "--store", "offsite",
            "--to", str(restored / "archived"))
    assert kept_bytes(restored / "archived" / archived[0]) == kept_bytes(day0 / archived[0])

    rtvault(config, "catalog", "sync")
    everyone = [p for status_ in ("active", "archived")
                for p in as_json(config, "search", "--status", status_)["patients"]]
    assert len(everyone) == 6 + 1
    for patient in everyone:
        stores = {loc["store"] for loc in patient["locations"]}
        assert set(STORES) <= stores, (patient["path"], stores)
    catalog = open_catalog(f"sqlite:///{site / 'catalog.sqlite'}")
    gone = next(p for p in everyone if p["path"] == archived[0])
    page = patient_detail(catalog, gone["key"], store_labels(load(config), catalog))
    assert page is not None
    shown = {loc["store"] for version in page["versions"] for loc in version["locations"]}
    assert shown == {*STORES, "volume:usb-1"}, shown
