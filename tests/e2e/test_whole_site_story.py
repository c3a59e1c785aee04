"""Issue 14's "done when", as a new user would live it, every part real (the command line in subprocesses, real
directories, one SQLite catalog): the patients and the physics of two sites backed up into one store and its
copy; the machines restored as of a past date; an expired archive deleted from every store with a certificate;
five patients restored from a CSV list; the list of patients safe to delete from Pinnacle read; and every one of
those actions in the journal, which still verifies after the catalog file is deleted and rebuilt."""

from __future__ import annotations

import csv
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kit.archive import pinnacle_tar
from kit.cli import rtvault_json, run_cli
from kit.config import add_tables, write_config
from rtvault.archive import records
from rtvault.store import Store

pytestmark = pytest.mark.slow

OLD = datetime(1999, 5, 3, 10, 0, tzinfo=UTC).timestamp()  # a patient last seen in 1999: kept until 2019
REASON = "fin de conservation (R1112-7), décision du comité du 2026-12-01"
SITES = {"a": "Hôpital Nord", "b": "Clinique Sud"}


def _cli(config: Path, *args: str | Path, expect: int | None = 0) -> dict:
    return rtvault_json(config, *args, expect=expect)


def _machine_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted((root / "Physics" / "ReadOnlyMachineDB").rglob("*")) if p.is_file()}


def _old_archive(db: Path, where: Path) -> Path:
    """One of site A's patients as an old DVD would hold it: every file last changed in 1999."""
    patient = sorted((db / "Institution_1" / "Mount_0").iterdir())[0]
    old_db = where / "old-db"
    (old_db / "Institution_1").mkdir(parents=True)
    shutil.copy2(db / "Institution_1" / "Institution", old_db / "Institution_1" / "Institution")
    target = old_db / "Institution_1" / "Mount_0" / patient.name
    shutil.copytree(patient, target)
    for path in [*target.rglob("*"), target]:
        os.utime(path, (OLD, OLD))
    return pinnacle_tar(old_db, where / "dvd-1999.tar", [f"Institution_1/Mount_0/{patient.name}"])


def test_two_sites_patients_and_physics_every_action_journalled(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for site, seed in (("a", 21), ("b", 22)):
        run_cli("demo", "generate", "--out", data / f"{site}-patients", "--patients", "4", "--seed", str(seed),
                "--image-mb", "0.2")
        run_cli("demo", "physics", "--out", data / f"{site}-physics", "--seed", str(seed))
    config = write_config(tmp_path / "rtvault.toml", stores={"primary": tmp_path / "primary"},
                          catalog={"url": f"sqlite:///{tmp_path / 'catalog.sqlite'}"})
    add_tables(config, **{"stores.copy": {"path": tmp_path / "copy", "copy_of": "primary"}})
    for site, label in SITES.items():
        add_tables(config, **{f"sources.patients-{site}": {"root": data / f"{site}-patients", "site": label},
                              f"sources.physics-{site}": {"kind": "pinnacle-physics", "root": data / f"{site}-physics",
                                                          "site": label}})
    _cli(config, "init")

    # Both sites backed up: four snapshots, one per source, and their copy.
    backed = _cli(config, "backup")
    assert [s["source"] for s in backed["sources"]] == ["physics-a", "physics-b", "patients-a", "patients-b"]
    assert [s["patients"] for s in backed["sources"]] == [0, 0, 4, 4]
    _cli(config, "replicate")
    found = _cli(config, "search", "--per-page", "100")
    assert found["total"] == 8

    # Site A's machines recommissioned; the machines as of before are restored from the vault.
    before_files = _machine_files(data / "a-physics")
    time.sleep(1.2)
    before = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    time.sleep(1.2)
    run_cli("demo", "evolve", "--db", data / "a-physics", "--day", "1")
    assert _machine_files(data / "a-physics") != before_files
    _cli(config, "backup", "--source", "physics-a")
    machines = _cli(config, "machines", "--source", "physics-a")["machines"]
    assert machines and all(m["source"] == "physics-a" for m in machines)
    assert max(len(m["versions"]) for m in machines) == 2
    _cli(config, "restore", "--physics", "--source", "physics-a", "--at", before, "--to", tmp_path / "physics-then")
    assert _machine_files(tmp_path / "physics-then") == before_files

    # An expired archive (an old DVD's patient, kept until 2019) deleted from every store, with a certificate.
    (ingested,) = _cli(config, "archive", "ingest", _old_archive(data / "a-patients", tmp_path))["archives"]
    archive_id = ingested["id"]
    _cli(config, "replicate")
    assert all(records.holds(Store.open(tmp_path / store), archive_id) for store in ("primary", "copy"))
    deleted = _cli(config, "archive", "delete", archive_id[:12], "--reason", REASON,
                   "--certificate", tmp_path / "certificat.pdf")
    assert deleted["destroyed"][0]["complete"] is True
    assert (tmp_path / "certificat.pdf").read_bytes().startswith(b"%PDF")
    for store in ("primary", "copy"):
        opened = Store.open(tmp_path / store)
        assert not records.holds(opened, archive_id) and records.destroyed_ids(opened) == [archive_id], store

    # Five patients restored from a physicist's list (MRNs of both sites).
    patients = found["patients"]
    chosen = [p["mrn"] for p in patients if p["mrn"]][:5]
    with (tmp_path / "liste.csv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(["IPP"])
        writer.writerows([mrn] for mrn in chosen)
    restored = _cli(config, "restore", "--patients-from", tmp_path / "liste.csv", "--to", tmp_path / "five")
    assert len(restored["restored"]) == 5 and restored["not_found"] == [] and restored["ambiguous"] == []

    # The list of patients safe to delete from Pinnacle, read.
    reconciled = _cli(config, "reconcile")
    assert set(reconciled) >= {"never_captured", "under_copied", "safe_to_delete"}
    assert reconciled["never_captured"] == []

    # Every action is in the journal, which verifies after the catalog is deleted and rebuilt.
    (tmp_path / "catalog.sqlite").unlink()
    _cli(config, "catalog", "rebuild")
    run_cli("journal", "verify", config=config)
    trail = _cli(config, "audit", "--limit", "1000")
    actions = [entry["action"] for entry in trail["entries"]]
    for wanted in ("init", "backup", "replicate", "machines", "restore", "archive_ingest", "archive_delete",
                   "reconcile", "catalog_rebuild"):
        assert wanted in actions, (wanted, set(actions))
    restores = [e for e in trail["entries"] if e["action"] == "restore"]
    assert any("physics-then" in str(e) for e in restores) and any("five" in str(e) for e in restores)
