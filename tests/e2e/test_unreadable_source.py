"""A source the service user cannot read entirely, through the CLI run without root's read capabilities: every
readable patient is backed up, what could not be read is named and its earlier copy kept, the patient is never
archived as deleted, the catalog marks the version incomplete, retention keeps the last complete version, and
the exit code says the result is partial (9)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from kit.config import KEEP_LAST, add_tables
from kit.faults import Site, backed_up_site
from rtvault.errors import ExitCode
from rtvault.jobs.backup import OTHER


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return backed_up_site(tmp_path / "site", patients=5)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest(site: Site, snapshot: str) -> dict:
    return json.loads((site.store / "snapshots" / f"{snapshot}.json").read_text())


def rel(site: Site, path: Path) -> str:
    return path.relative_to(site.db).as_posix()


def test_one_unreadable_patient_directory_never_stops_the_backup(site: Site, tmp_path: Path) -> None:
    locked = site.patients()[1]
    locked.chmod(0o000)
    try:
        done = site.run("backup", "--json", expect=ExitCode.PARTIAL, unprivileged=True)
    finally:
        locked.chmod(0o755)
    summary = json.loads(done.stdout)
    assert summary["patients"] == 5
    assert summary["incomplete"] == [rel(site, locked)]
    assert any(w["file"] == rel(site, locked) and "cannot list (Permission denied)" in w["message"]
               for w in summary["warnings"]), summary["warnings"]
    entry = next(p for p in manifest(site, summary["snapshot"])["patients"] if p["path"] == rel(site, locked))
    first = json.loads(site.run("snapshots", "--json").stdout)["snapshots"][0]["id"]
    before = next(p for p in manifest(site, first)["patients"] if p["path"] == rel(site, locked))
    assert entry["incomplete"] is True and entry["unreadable"] == ["."]
    assert entry["tree"] == before["tree"] and entry["last_name"] == before["last_name"]
    assert site.json("archive", "list")["archives"] == [], "an unreadable patient must never be archived as deleted"
    # the partial backup's copy of the patient restores the last good version
    site.run("restore", "--patient", rel(site, locked), "--to", str(tmp_path / "back"))
    restored = tmp_path / "back" / rel(site, locked)
    assert {p.name: digest(p) for p in restored.rglob("*") if p.is_file()} == \
        {p.name: digest(p) for p in locked.rglob("*") if p.is_file()}
    # the text output names the patient and the exit code; the next readable run is complete again
    text = site.run("backup", expect=0, unprivileged=True)
    assert "partial" not in text.stderr


def test_unreadable_files_and_folders_are_recorded_and_their_earlier_copy_carried_forward(site: Site,
                                                                                         tmp_path: Path) -> None:
    one, two, three = site.patients()[0], site.patients()[2], site.patients()[3]
    image = next(one.glob("ImageSet_*.img"))
    plan = next(p for p in two.glob("Plan_*") if p.is_dir())
    plan_files = {p.relative_to(two).as_posix(): digest(p) for p in plan.rglob("*") if p.is_file()}
    new_file = three / "notes.txt"
    new_file.write_bytes(b"written after the last backup")
    original = digest(image)
    image.write_bytes(image.read_bytes())  # rewritten (new mtime): the backup must try to read it again
    for path in (image, plan, new_file):
        path.chmod(0o000)
    try:
        summary = site.json("backup", expect=ExitCode.PARTIAL, unprivileged=True)
    finally:
        for path in (image, plan, new_file):
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert summary["incomplete"] == sorted([rel(site, one), rel(site, two), rel(site, three)])
    messages = {w["file"]: w["message"] for w in summary["warnings"]}
    assert "copy from the previous snapshot carried forward" in messages[rel(site, image)]
    assert "its files from the previous snapshot carried forward" in messages[rel(site, plan)]
    assert "no earlier copy, missing from this snapshot" in messages[rel(site, new_file)]
    entries = {p["path"]: p for p in manifest(site, summary["snapshot"])["patients"]}
    assert entries[rel(site, one)]["unreadable"] == [image.name]
    assert entries[rel(site, three)]["unreadable"] == ["notes.txt"]
    assert entries[rel(site, one)]["files"] == len([p for p in one.rglob("*") if p.is_file()])
    # the tree names each unreadable entry, with its error and whether an earlier copy stands in for it
    site.run("restore", "--patient", rel(site, one), "--to", str(tmp_path / "one"))
    assert digest(tmp_path / "one" / rel(site, one) / image.name) == original
    site.run("restore", "--patient", rel(site, two), "--to", str(tmp_path / "two"))
    assert {name: digest(tmp_path / "two" / rel(site, two) / name) for name in plan_files} == plan_files
    lacking = site.run("restore", "--patient", rel(site, three), "--to", str(tmp_path / "three"),
                       expect=ExitCode.PARTIAL)
    assert f"unreadable at backup time: {rel(site, new_file)} (Permission denied): not in this version" \
        in lacking.stderr
    assert (tmp_path / "three" / rel(site, three) / "Patient").is_file()
    assert not (tmp_path / "three" / rel(site, three) / "notes.txt").exists()
    restored = site.json("restore", "--patient", rel(site, one), "--to", str(tmp_path / "one-again"))
    assert restored["unread_at_backup"] == [{"patient": rel(site, one), "unreadable": [{
        "name": image.name, "kind": "file", "error": "Permission denied", "size": image.stat().st_size,
        "carried_forward": True}]}]
    # the catalog and the patient page mark that version incomplete
    catalog = sqlite3.connect(site.root / "catalog.sqlite")
    flags = dict(catalog.execute("SELECT tree, complete FROM versions"))
    assert flags[entries[rel(site, one)]["tree"]] == 0 and flags[entries[rel(site, site.patients()[4])]["tree"]] == 1
    page = _patient_page(site, entries[rel(site, one)]["mrn"])
    from rtvault.catalog.patients import version_id

    newest = next(v for v in page["versions"] if v["version"] == version_id(entries[rel(site, one)]["tree"]))
    assert newest["complete"] is False and all(v["complete"] for v in page["versions"] if v is not newest)


def test_retention_keeps_the_last_complete_version(site: Site) -> None:
    patient = site.patients()[0]
    image = next(patient.glob("ImageSet_*.img"))
    image.write_bytes(image.read_bytes())
    image.chmod(0o000)
    try:
        for _ in range(2):
            site.json("backup", expect=ExitCode.PARTIAL, unprivileged=True)
    finally:
        image.chmod(0o644)
    add_tables(site.config, retention=KEEP_LAST)
    snapshots = [s["id"] for s in site.json("snapshots")["snapshots"]]
    result = site.json("forget")
    kept = {k["id"]: k["reasons"] for k in result["keep"]}
    assert kept == {snapshots[2]: ["last"], snapshots[0]: [f"last complete version of {rel(site, patient)}"]}


def test_text_output_names_the_partial_result(site: Site) -> None:
    locked = site.patients()[0]
    locked.chmod(0o000)
    try:
        done = site.run("backup", expect=ExitCode.PARTIAL, unprivileged=True)
    finally:
        locked.chmod(0o755)
    assert f"warning: {rel(site, locked)}: cannot list (Permission denied)" in done.stderr
    assert "partial backup: 1 patient(s) or folder(s) could not be read entirely" in done.stderr
    assert rel(site, locked) in done.stderr.splitlines()[-1]


def test_an_unlistable_mount_folder_does_not_turn_its_patients_into_deleted_ones(site: Site) -> None:
    mount = site.patients()[0].parent
    mount.chmod(0o000)
    try:
        summary = site.json("backup", expect=ExitCode.PARTIAL, unprivileged=True)
    finally:
        mount.chmod(0o755)
    assert summary["patients"] == 5 and summary["archived"] == []
    assert summary["incomplete"] == [*(rel(site, p) for p in site.patients()), OTHER]
    assert any(f"{rel(site, mount)} cannot be listed" in w["message"] for w in summary["warnings"])
    assert site.json("archive", "list")["archives"] == []


def _patient_page(site: Site, mrn: str) -> dict:
    """The patient page's JSON twin, as a viewer of the web interface reads it."""
    import warnings

    with warnings.catch_warnings():  # starlette asks for httpx2, not installed; httpx works
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from rtvault.catalog import open_catalog
    from rtvault.catalog.users import add_user, create_token
    from rtvault.config import load
    from rtvault.web.app import create_app

    config = load(site.config)
    with open_catalog(config.catalog.url) as db:
        add_user(db, "viewer", "viewer", "a long enough password")
        token = create_token(db, "viewer", "tests")
    client = TestClient(create_app(config), headers={"Authorization": f"Bearer {token}"})
    [found] = client.get("/api/search", params={"mrn": mrn}).json()["patients"]
    return client.get(f"/api/patients/{found['key']}").json()
