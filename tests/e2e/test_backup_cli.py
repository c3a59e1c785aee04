"""The backup user story, run as an operator runs it: `rtvault` in subprocesses, from a working directory
holding ./rtvault.toml, a (synthetic) Pinnacle database and a store.

generate -> config -> init -> backup -> one clinical day -> backup -> snapshots -> diff -> restore a deleted
patient -> restore everything, compared with the live database.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from kit.cli import Operator
from kit.config import write_config

SUMMARY_KEYS = {"snapshot", "patients", "files_new", "files_changed", "files_unchanged", "bytes_read", "bytes_added",
                "duration_s", "warnings"}
TRANSIENT_SUFFIXES = (".ErrorLog", ".Transcript", "~")


def files_of(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """Non-transient files: bytes, mtime in ns, permission bits."""
    found = {}
    for path in root.rglob("*"):
        name = path.name
        if path.is_file() and not (name.startswith(".auto.plan") or name.endswith(TRANSIENT_SUFFIXES)):
            st = path.stat()
            found[path.relative_to(root).as_posix()] = (path.read_bytes(), st.st_mtime_ns, st.st_mode & 0o7777)
    return found


def under(files: dict, prefix: str) -> dict:
    return {rel: value for rel, value in files.items() if rel.startswith(prefix + "/")}


@pytest.fixture
def operator(tmp_path: Path) -> Operator:
    return Operator(tmp_path)


def test_the_backup_user_story(operator: Operator, tmp_path: Path) -> None:
    # a database, and a configuration written from the example with relative paths
    generated = operator.json("demo", "generate", "--out", "db", "--patients", "5", "--seed", "21",
                              "--image-mb", "0.2")
    assert generated["patients"] == 5
    example = operator.run("config", "example").stdout
    config = re.sub(r'(?m)^root = ".*"$', 'root = "db"', example)
    config = re.sub(r'(?m)^path = ".*"$', 'path = "store"', config)
    assert config != example
    (tmp_path / "rtvault.toml").write_text(config, encoding="utf-8")
    operator.run("config", "check")

    created = operator.json("init")["stores"]
    assert created[0]["created"] is True and created[0]["path"] == str(tmp_path / "store")
    assert (tmp_path / "store" / "rtvault-store.json").is_file()

    # first backup: everything is new
    first = operator.json("backup")
    assert first.keys() >= SUMMARY_KEYS
    assert first["patients"] == 5 and first["warnings"] == []
    assert first["files_new"] == len(files_of(tmp_path / "db")) and first["files_changed"] == 0
    assert first["bytes_read"] > first["bytes_added"] > 0 and first["duration_s"] >= 0
    day_0 = tmp_path / "db-before-day-1"
    shutil.copytree(tmp_path / "db", day_0)

    # a clinical day: plans edited, a patient admitted, a finished one deleted
    day = operator.json("demo", "evolve", "--db", "db", "--day", "1")
    assert day["edited"] and day["added"] and day["deleted"]
    second = operator.json("backup")
    assert second.keys() >= SUMMARY_KEYS
    assert second["files_changed"] > 0 and second["files_new"] > 0 and second["files_unchanged"] > 0
    assert 0 < second["bytes_added"] < first["bytes_added"]
    assert second["snapshot"] != first["snapshot"]

    text = operator.run("backup").stdout
    assert "0 new, 0 changed" in text and "0.0 MB read" in text

    # the snapshots, and one patient's versions
    snapshots = operator.json("snapshots")["snapshots"]
    assert [s["id"] for s in snapshots][:2] == [first["snapshot"], second["snapshot"]]
    assert len(snapshots) == 3
    for info in snapshots:
        assert {"id", "time", "patients", "files", "bytes"} <= info.keys()
    listing = operator.run("snapshots").stdout
    assert first["snapshot"] in listing and "3 snapshot(s)" in listing

    changes = operator.json("diff", first["snapshot"], second["snapshot"])
    assert (changes["from"], changes["to"]) == (first["snapshot"], second["snapshot"])
    [removed] = changes["removed"]
    [added] = changes["added"]
    assert not (tmp_path / "db" / removed["path"]).exists() and (tmp_path / "db" / added["path"]).is_dir()
    assert removed["mrn"] and added["mrn"]
    assert changes["changed"], "the day edited plans under treatment"
    edited_files = {f"{change['path']}/{name}" for change in changes["changed"] for name in change["files_changed"]}
    assert edited_files and edited_files <= set(day["edited"])
    assert operator.json("diff", second["snapshot"], "latest") == {
        "from": second["snapshot"], "to": snapshots[-1]["id"], "added": [], "removed": [], "changed": []}

    kept = next(p for p in operator.json("snapshots", "--patient", added["mrn"])["versions"])
    assert kept["snapshot"] == second["snapshot"] and kept["path"] == added["path"]
    gone = operator.json("snapshots", "--patient", removed["mrn"])
    assert [v["snapshot"] for v in gone["versions"]] == [first["snapshot"]]
    assert gone["patient"]["path"] == removed["path"]

    # the deleted patient comes back, as it was
    restored = operator.json("restore", "--patient", removed["mrn"], "--to", "restored-patient")
    assert restored["snapshot"] == first["snapshot"] and restored["patients"] == [removed["path"]]
    assert files_of(tmp_path / "restored-patient") == under(files_of(day_0), removed["path"])

    # and the whole database, as the last snapshot saw it
    everything = operator.json("restore", "--all", "--to", "new-server")
    assert everything["snapshot"] == snapshots[-1]["id"]
    assert files_of(tmp_path / "new-server") == files_of(tmp_path / "db")
    assert not [p for p in (tmp_path / "new-server").rglob("*") if p.name.startswith(".auto.plan")
                or p.name.endswith(TRANSIENT_SUFFIXES)]
    assert (tmp_path / "new-server" / "Institution_1" / "Institution").read_bytes() == (
        tmp_path / "db" / "Institution_1" / "Institution").read_bytes()

    # restoring again over it is refused, and the store is healthy after all this
    operator.run("restore", "--all", "--to", "new-server", expect=4)
    operator.run("check", "--read-data")

    assert all("Traceback" not in output for output in operator.outputs)


def test_user_errors_are_one_line_with_their_exit_code(operator: Operator, tmp_path: Path) -> None:
    write_config(tmp_path / "rtvault.toml", root="db", stores={"primary": "store"})
    missing = operator.run("backup", expect=8)  # no store yet
    assert "rtvault init" in missing.stderr
    operator.run("init")
    refused = operator.json("backup", expect=5)  # no database yet
    assert refused["error"]["exit_code"] == 5 and "does not exist" in refused["error"]["message"]
    operator.run("demo", "generate", "--out", "db", "--patients", "2", "--seed", "2", "--image-mb", "0.2")
    operator.run("backup")
    usage = operator.run("restore", "--to", "x", expect=4)
    assert "--patient" in usage.stderr and "--all" in usage.stderr
    operator.run("restore", "--all", "--at", "2026-01-01", "--to", "x", expect=4)
    unknown = operator.run("restore", "--patient", "nobody", "--to", "x", expect=8)
    assert "nobody" in unknown.stderr
    operator.run("diff", "nope", "latest", expect=8)
    assert not (tmp_path / "x").exists()
    for output in operator.outputs:
        assert "Traceback" not in output
