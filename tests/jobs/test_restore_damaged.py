"""`rtvault restore` from a damaged store: damage costs only what it touches. Every other patient and file is
restored, each failure is named with its reason and the commands that may help, the exit code is 9, and no
partial file is ever left under a final name."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kit import store as storekit
from kit.files import files_of
from kit.vault import History
from rtvault.errors import ExitCode, StoreError
from rtvault.jobs.restore import RestoreIncomplete, restore_all
from rtvault.store.objects import data_key
from rtvault.store.repository import FORMAT_FILE, tree_key


def _without(files: dict, prefix: str) -> dict:
    return {rel: value for rel, value in files.items() if not rel.startswith(prefix)}


def _changed_patient(vault) -> tuple[str, dict, dict]:
    """A patient whose tree changed between the two snapshots: (path, older manifest, latest manifest)."""
    older, latest = vault.manifests()[-2:]
    before = {p.path: p.tree for p in older.patients}
    path = next(p.path for p in latest.patients if before.get(p.path, p.tree) != p.tree)
    return path, older, latest


def test_a_damaged_tree_costs_only_its_patient(own_store, history: History, tmp_path: Path) -> None:
    path, older, latest = _changed_patient(own_store)
    storekit.flip(own_store.store_path, tree_key(own_store.entry_of(path).tree))
    dest = tmp_path / "new-server"

    done = own_store.cli("restore", "--all", "--to", str(dest), "--json", expect=ExitCode.PARTIAL)

    summary = json.loads(done.stdout)
    assert [(f["patient"], f["older_snapshot"]) for f in summary["failed"]] == [(path, older.id)]
    assert "damaged" in summary["failed"][0]["reason"]
    assert sorted(summary["patients"]) == sorted(p.path for p in latest.patients if p.path != path)
    assert any(f"--patient {path} --snapshot {older.id}" in hint for hint in summary["hints"])
    assert any("rtvault repair" in hint for hint in summary["hints"])
    assert files_of(dest, transient=True) == _without(own_store.source_files(), path + "/")

    text = own_store.cli("restore", "--all", "--to", str(tmp_path / "again"), expect=ExitCode.PARTIAL)
    assert f"NOT RESTORED {path}: " in text.stderr and "rtvault repair" in text.stderr
    assert "1 patient(s) not restored completely" in text.stderr and "everything else was restored" in text.stderr
    assert f"restored {len(latest.patients) - 1} patient(s)" in text.stdout

    # the hint works: the older version of that patient comes back whole
    own_store.cli("restore", "--patient", path, "--snapshot", older.id, "--to", str(dest))
    day_1 = files_of(history.day_1)
    assert {k: v for k, v in files_of(dest).items() if k.startswith(path + "/")} == \
        {k: v for k, v in day_1.items() if k.startswith(path + "/")}


def test_a_damaged_object_costs_only_its_file(own_store, tmp_path: Path) -> None:
    latest = own_store.manifests()[-1]
    path = latest.patients[0].path
    victim = next(f for f in own_store.tree_of(path).files if f.name == "ImageSet_0.img")
    users = [p.path for p in latest.patients
             if victim.hash in {f.hash for f in own_store.tree_of(p.path).files}]
    assert users == [path]
    storekit.flip(own_store.store_path, data_key(victim.hash))
    dest = tmp_path / "dest"

    with pytest.raises(RestoreIncomplete) as raised:
        restore_all(own_store.store, dest)

    failure, = raised.value.summary.failed
    assert failure["patient"] == path and [f["name"] for f in failure["files_not_written"]] == ["ImageSet_0.img"]
    assert failure["files_written"] == len(own_store.tree_of(path).files) - 1
    assert not os.path.lexists(dest / path / "ImageSet_0.img")
    assert not [p for p in dest.rglob("*") if "rtvault-partial" in p.name]
    assert files_of(dest, transient=True) == _without(own_store.source_files(), f"{path}/ImageSet_0.img")

    text = own_store.cli("restore", "--all", "--to", str(tmp_path / "again"), expect=ExitCode.PARTIAL)
    assert f"INCOMPLETE {path}: " in text.stderr and "ImageSet_0.img: " in text.stderr
    assert victim.hash in text.stderr


def test_a_missing_tree_costs_its_patient_but_a_store_gone_stops_the_restore(own_store,
                                                                             tmp_path: Path) -> None:
    entry = own_store.manifests()[-1].patients[0]
    storekit.lose(own_store.store_path, tree_key(entry.tree))
    store = own_store.store
    with pytest.raises(RestoreIncomplete) as raised:
        restore_all(store, tmp_path / "dest")
    assert [(f["patient"], "missing" in f["reason"]) for f in raised.value.summary.failed] == [(entry.path, True)]

    (own_store.store_path / FORMAT_FILE).unlink()  # as if the share went away: not 900 patients failed one by one
    with pytest.raises(StoreError, match="missing"):
        restore_all(store, tmp_path / "dest-2")
    assert not (tmp_path / "dest-2").exists()
