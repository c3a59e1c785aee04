"""Store format 2 against version 1: a store made by the previous release is read, restored byte for byte and
migrated (safely, even when interrupted); the by-hand recipe of docs/design.md restores a patient from a
version 2 store with Python's standard library and the `zstd` tool alone."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kit.cli import rtvault
from kit.config import write_config
from rtvault.store import Store
from rtvault.store.migrate import migrate

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "store-v1"
RECIPE = re.compile(r"```python\n(# restore-by-hand\.py .*?)```", re.S)


def _v1_site(tmp_path: Path) -> tuple[Path, Path]:
    store = tmp_path / "store"
    shutil.copytree(FIXTURE / "store", store)
    for folder in ("locks", "tmp"):  # git keeps no empty folder
        (store / folder).mkdir(exist_ok=True)
    return store, write_config(tmp_path / "rtvault.toml", root=tmp_path / "db", stores={"primary": store})


def _rtvault(config: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    return rtvault(config, *args, expect=code, timeout=300)  # a migration reads the whole store


def _expected(patient: str | None = None) -> dict[str, str]:
    """name → SHA-256 of the source's files at the newest snapshot (of one patient, names relative to it)."""
    sums = {}
    for line in (FIXTURE / "source.sha256").read_text().splitlines():
        digest, name = line.split("  ", 1)
        name = name.removeprefix("./")
        if patient is None:
            sums[name] = digest
        elif name.startswith(patient + "/"):
            sums[name.removeprefix(patient + "/")] = digest
    return sums


def _hashes(root: Path) -> dict[str, str]:
    import hashlib

    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _files(store: Path) -> list[str]:
    return sorted(p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file())


def test_a_version_1_store_of_the_previous_release_is_read_and_restored_byte_for_byte(tmp_path: Path) -> None:
    store, config = _v1_site(tmp_path)
    assert json.loads((store / "rtvault-store.json").read_text())["version"] == 1
    assert "store is healthy" in _rtvault(config, "check", "--read-data").stdout
    _rtvault(config, "restore", "--all", "--to", str(tmp_path / "out"))
    assert _hashes(tmp_path / "out") == _expected()
    archived = json.loads(_rtvault(config, "archive", "list", "--json").stdout)
    assert len(archived["archives"]) == 1, "the patient deleted on day 1 was archived by the previous release"
    [listed] = archived["archives"]  # the summary as the previous release wrote it, field for field
    assert listed == json.loads((store / "archives" / "summaries" / f"{listed['id']}.json").read_text())


def test_migrate_packs_a_version_1_store_and_everything_still_restores(tmp_path: Path) -> None:
    store, config = _v1_site(tmp_path)
    before = _files(store)
    loose = [f for f in before if f.startswith(("data/", "trees/"))]
    report = json.loads(_rtvault(config, "migrate", "--json").stdout)["stores"][0]
    assert (report["from_version"], report["to_version"], report["complete"]) == (1, 2, True)
    assert report["objects_packed"] + report["trees_packed"] == len(loose) == report["loose_removed"]
    info = json.loads((store / "rtvault-store.json").read_text())
    assert info["version"] == 2 and info["id"] == json.loads((FIXTURE / "store/rtvault-store.json").read_text())["id"]
    after = _files(store)
    assert not [f for f in after if f.startswith(("data/", "trees/"))]
    assert len(after) < len(before) - len(loose) + 6, f"a handful of packs and one index, not {after}"
    assert "store is healthy" in _rtvault(config, "check", "--read-data").stdout
    _rtvault(config, "restore", "--all", "--to", str(tmp_path / "out"))
    assert _hashes(tmp_path / "out") == _expected()
    (archive,) = json.loads(_rtvault(config, "archive", "list", "--json").stdout)["archives"]
    again = json.loads(_rtvault(config, "migrate", "--json").stdout)["stores"][0]
    assert (again["from_version"], again["objects_packed"], again["loose_removed"]) == (2, 0, 0)
    assert archive["id"]


class _Killed(Exception):
    pass


@pytest.mark.parametrize("survives", [0, 1])
def test_a_migration_interrupted_anywhere_leaves_a_readable_store_and_finishes_when_run_again(
        tmp_path: Path, survives: int) -> None:
    """Interrupted before the format file changes (0: still version 1, packs beside the loose files), or before
    deleting the loose copies (1: version 2 with every loose file redundant)."""
    store, config = _v1_site(tmp_path)
    calls = 0

    def ensure_held() -> None:
        nonlocal calls
        calls += 1
        if calls > survives:
            raise _Killed

    with pytest.raises(_Killed):
        migrate(Store.open(store), ensure_held)
    version = json.loads((store / "rtvault-store.json").read_text())["version"]
    assert version == (1 if survives == 0 else 2)
    assert "store is healthy" in _rtvault(config, "check", "--read-data").stdout
    _rtvault(config, "restore", "--all", "--to", str(tmp_path / "out"))
    assert _hashes(tmp_path / "out") == _expected()
    _rtvault(config, "migrate")
    assert not [f for f in _files(store) if f.startswith(("data/", "trees/"))]
    _rtvault(config, "restore", "--all", "--to", str(tmp_path / "again"))
    assert _hashes(tmp_path / "again") == _expected()


def test_the_by_hand_recipe_of_the_design_document_restores_a_patient_from_a_version_2_store(tmp_path: Path) -> None:
    assert shutil.which("zstd"), "the zstd tool is a test dependency (scripts/system-packages.sh installs it)"
    (script,) = RECIPE.findall((ROOT / "docs" / "design.md").read_text())
    (tmp_path / "restore-by-hand.py").write_text(script)
    store, config = _v1_site(tmp_path)
    _rtvault(config, "migrate")
    manifest = json.loads(_rtvault(config, "snapshots", "--json").stdout)
    newest = manifest["snapshots"][-1]["id"] if isinstance(manifest, dict) else manifest[-1]["id"]
    patients = sorted({name.removeprefix("./").rsplit("/", 1)[0].split("/Plan_")[0].split("/ImageSet")[0]
                       for name in _expected() if "/Patient_" in name})
    patient = "/".join(patients[0].split("/")[:3])
    result = subprocess.run(["python3", "-I", str(tmp_path / "restore-by-hand.py"), str(store), newest, patient,
                             str(tmp_path / "by-hand")], capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin"})  # no rtvault, no virtual environment
    assert result.returncode == 0, result.stderr
    assert _hashes(tmp_path / "by-hand") == _expected(patient) != {}


def _empty_v1_store(path: Path) -> None:
    """An empty store as the previous release's `rtvault init` made it (version 1 format file, its folders)."""
    info = json.loads((FIXTURE / "store" / "rtvault-store.json").read_text())
    path.mkdir()
    for folder in ("data", "trees", "snapshots", "locks", "tmp"):
        (path / folder).mkdir()
    (path / "rtvault-store.json").write_text(json.dumps({**info, "id": "0" * 32}, indent=2) + "\n")


@pytest.mark.parametrize("direction", ["1 to 2", "2 to 1"])
def test_replication_between_a_version_1_and_a_version_2_store(tmp_path: Path, direction: str) -> None:
    """Replication copies keys: each store keeps its own format, and either restores every file."""
    _store, config = _v1_site(tmp_path)
    copy = tmp_path / "copy"
    if direction == "2 to 1":
        _rtvault(config, "migrate")
        _empty_v1_store(copy)
    config.write_text(config.read_text() + f'\n[stores.copy]\npath = "{copy}"\ncopy_of = "primary"\n')
    _rtvault(config, "init")
    (pair,) = json.loads(_rtvault(config, "replicate", "--json").stdout)["pairs"]
    assert pair["complete"] and (pair["objects_copied"], pair["trees_copied"], pair["snapshots_copied"]) == (84, 7, 2)
    version = json.loads((copy / "rtvault-store.json").read_text())["version"]
    copied = _files(copy)
    if direction == "1 to 2":
        assert version == 2 and any(f.startswith("packs/") for f in copied)
        assert not [f for f in copied if f.startswith(("data/", "trees/"))]
    else:
        assert version == 1 and not any(f.startswith(("packs/", "index/")) for f in copied)
        assert len([f for f in copied if f.startswith(("data/", "trees/"))]) == 91
    for name in ("primary", "copy"):
        assert "store is healthy" in _rtvault(config, "check", "--read-data", "--store", name).stdout
    _rtvault(config, "restore", "--all", "--store", "copy", "--to", str(tmp_path / "out"))
    assert _hashes(tmp_path / "out") == _expected()


def test_a_damaged_version_1_object_is_left_as_it_is_named_and_the_migration_says_it_is_partial(tmp_path: Path) -> None:
    store, config = _v1_site(tmp_path)
    victim = sorted((store / "data").rglob("*"), key=lambda p: (p.is_file() and p.stat().st_size, p.name))[-1]
    damaged = bytearray(victim.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    victim.write_bytes(bytes(damaged))
    key = victim.relative_to(store).as_posix()
    result = _rtvault(config, "migrate", code=9)
    assert f"damaged, left as it was: {key}" in result.stdout and "rtvault repair" in result.stderr
    assert victim.read_bytes() == bytes(damaged), "the damaged file is neither packed nor deleted"
    assert [f for f in _files(store) if f.startswith(("data/", "trees/"))] == [key]
    check = _rtvault(config, "check", "--read-data", code=7)
    assert key in check.stdout
