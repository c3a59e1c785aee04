"""The archiving user story, run as an operator runs it: `rtvault` in subprocesses, from a working directory
holding ./rtvault.toml, a (synthetic) Pinnacle database and a store.

generate -> init -> backup -> a patient deleted in Pinnacle -> backup archives it -> the archive read with
plain `tar` -> no second archive -> an old DVD ingested -> forget + prune keep every archive -> restore from
the archives -> bit rot in a stored archive found by `check --read-data`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kit.cli import Operator
from kit.config import KEEP_LAST, write_config
from kit.files import regular_files
from rtvault.pinnacle.grammar import PObject, parse_bytes

TAR = shutil.which("tar")


def tar(*args: str | Path, cwd: Path) -> str:
    if TAR is None:
        pytest.skip("GNU tar is not installed")
    return subprocess.run([TAR, *map(str, args)], cwd=cwd, check=True, capture_output=True, text=True).stdout


def modes_of_dirs(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.lstat().st_mode & 0o7777 for p in root.rglob("*") if p.is_dir()}


def identity(patient_dir: Path) -> dict[str, object]:
    data = (patient_dir / "Patient").read_bytes()

    def field(key: str) -> str:
        found = re.search(rb"^" + key.encode() + rb' = "?([^";\n]*)"?;', data, re.MULTILINE)
        return found.group(1).decode("latin-1") if found else ""

    return {"patient_id": int(field("PatientID")), "last_name": field("LastName"),
            "first_name": field("FirstName"), "mrn": field("MedicalRecordNumber")}


def lite_paths(institution: bytes) -> list[str]:
    lites = parse_bytes(institution, "Institution").root.child("PatientLiteList")
    return [str(i.get("PatientPath")) for i in (lites.items_list() if lites else []) if isinstance(i, PObject)]


def setup_site(cwd: Path, operator: Operator, seed: int) -> list[str]:
    """A 4-patient database, a configuration keeping one snapshot, an initialised store; the patient paths."""
    operator.json("demo", "generate", "--out", "db", "--patients", "4", "--seed", str(seed), "--image-mb", "0.2")
    write_config(cwd / "rtvault.toml", root="db", stores={"primary": "store"}, retention=KEEP_LAST)
    operator.run("init")
    return sorted(p.relative_to(cwd / "db").as_posix() for p in (cwd / "db").glob("Institution_*/Mount_*/Patient_*"))


def test_the_archiving_user_story(tmp_path: Path) -> None:
    operator = Operator(tmp_path)
    paths = setup_site(tmp_path, operator, seed=31)
    assert operator.json("backup")["archived"] == []
    operator.run("restore", "--all", "--to", "before")  # the database as the first snapshot saw it

    # a patient deleted in Pinnacle: the next backup archives it
    victim = paths[1]
    who = identity(tmp_path / "db" / victim)
    shutil.rmtree(tmp_path / "db" / victim)
    backup = operator.json("backup", "--allow-shrink")
    assert len(backup["archived"]) == 1
    listed = operator.json("archive", "list")["archives"]
    assert len(listed) == 1
    archive = listed[0]
    assert archive["id"] == backup["archived"][0]
    assert archive["origin"] == "deleted" and archive["kind"] == "patients" and archive["damaged"] is False
    assert [p["path"] for p in archive["patients"]] == [victim]
    assert {k: archive["patients"][0][k] for k in who} == who
    assert archive["patients"][0]["complete"] is True
    assert operator.json("archive", "list", "--patient", str(who["mrn"]))["archives"][0]["id"] == archive["id"]

    # the stored archive is a plain Pinnacle tar: any tar lists and extracts it
    stored = tmp_path / "store" / "archives" / "tars" / archive["id"][:2] / archive["id"]
    names = tar("-tf", stored, cwd=tmp_path).splitlines()
    assert names[0] == "Institution"
    assert all(name.rstrip("/") == victim or name.startswith(victim + "/") for name in names[1:]), names
    (tmp_path / "extracted").mkdir()
    tar("-xf", stored, "-C", "extracted", cwd=tmp_path)
    header = (tmp_path / "extracted" / "Institution").read_bytes()
    assert lite_paths(header) == [victim]
    assert parse_bytes(header, "Institution").root.get("IsPatientBackup") == 1
    assert regular_files(tmp_path / "extracted" / victim) == regular_files(tmp_path / "before" / victim)
    assert modes_of_dirs(tmp_path / "extracted" / victim) == modes_of_dirs(tmp_path / "before" / victim)
    assert sorted(os.listdir(tmp_path / "extracted")) == ["Institution", victim.split("/")[0]]

    # archived once: neither the next backup nor a sweep archives it again
    assert operator.json("backup")["archived"] == []
    sweep = operator.json("archive", "sweep")
    assert sweep["archived"] == [] and sweep["ingested"] == []
    assert [a["id"] for a in operator.json("archive", "list")["archives"]] == [archive["id"]]

    # an old gzip DVD archive of another patient, ingested (its members become content objects of the store)
    legacy_patient = paths[3]
    before = tmp_path / "before"
    shutil.copy2(before / legacy_patient.split("/")[0] / "Institution", before / "Institution")
    tar("-czf", "legacy.tar.gz", "-C", "before", "Institution", legacy_patient, cwd=tmp_path)
    legacy = operator.json("archive", "ingest", "legacy.tar.gz")["archives"][0]
    assert [p["path"] for p in legacy["patients"]] == [legacy_patient]

    # forget every snapshot but the last one, prune: archives are never pruned
    forgotten = operator.json("forget")
    assert len(forgotten["keep"]) == 1 and len(forgotten["forget"]) >= 2
    operator.json("prune")
    assert sorted(a["id"] for a in operator.json("archive", "list")["archives"]) == sorted(
        [archive["id"], legacy["id"]])
    assert stored.is_file()
    assert operator.json("check", "--read-data")["healthy"] is True
    operator.run("restore", "--patient", victim, "--to", "from-archive", "--from-archive")
    assert regular_files(tmp_path / "from-archive" / victim) == regular_files(tmp_path / "before" / victim)
    operator.run("restore", "--patient", str(identity(tmp_path / "db" / legacy_patient)["mrn"]), "--to", "legacy",
                 "--from-archive", legacy["id"][:8])
    assert regular_files(tmp_path / "legacy" / legacy_patient) == regular_files(tmp_path / "before" / legacy_patient)

    # bit rot in a stored archive: `check --read-data` finds it (exit 7), plain `check` only sees files present
    os.chmod(stored, 0o644)
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    done = operator.run("check", "--read-data", expect=7)
    assert archive["id"] in done.stdout + done.stderr
    operator.run("check")
