"""A patient version read for the viewer straight from the store (jobs/treatment_files.py, jobs/patient_view.py):
the same bytes as the patient directory, whether from a snapshot or an archive; the real Pinnacle sample (no CT
voxels) still gives its plan, with the missing voxels named; a CT whose object the store lost is named, the rest
shown."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kit.archive import SHARED_SAMPLE, make_vault, pinnacle_tar
from kit.store import lose
from rtvault.jobs.archives import ingest_file
from rtvault.jobs.deliver import Chosen
from rtvault.jobs.patient_view import build_scene
from rtvault.jobs.treatment_files import archive_files, snapshot_files
from rtvault.pinnacle.treatment import DirectorySource
from rtvault.store.objects import data_key

PATIENT = "Institution_1/Mount_0/Patient_1"


def _chosen(kind: str, ref: str) -> Chosen:
    return Chosen({"key": "0" * 16, "path": PATIENT}, {"version": "1" * 16},
                  {"kind": kind, "ref": ref, "store": "primary", "location": f"primary:{kind}:{ref}"})


@pytest.fixture
def sample(tmp_path: Path):
    root = tmp_path / "pinnacle"
    shutil.copytree(SHARED_SAMPLE, root)
    vault = make_vault(tmp_path / "site", root)
    summary = vault.backup()
    return vault, summary.snapshot


def test_a_snapshot_and_an_archive_give_the_patient_directorys_bytes(sample, tmp_path: Path) -> None:
    vault, snapshot = sample
    direct = DirectorySource(vault.root / PATIENT)
    tar = pinnacle_tar(vault.root, tmp_path / "one.tar", [PATIENT], header=False)
    stored = ingest_file(vault.store, tar)
    archived = archive_files(vault.store, PATIENT, stored.record.id)
    for files in (snapshot_files(vault.store, PATIENT, snapshot), archived):
        assert files.names() == sorted(direct.names())
        for name in files.names():
            assert files.read(name) == direct.read(name) and files.size(name) == direct.size(name)
        with pytest.raises(FileNotFoundError):
            files.read("../Patient_2/Patient")


def test_the_real_sample_without_voxels_still_shows_its_plan(sample) -> None:
    vault, snapshot = sample
    scene = build_scene(vault.config, _chosen("snapshot", snapshot), None, "")
    assert scene.hu is None and scene.slices("axial") == 0
    assert any("no CT voxels" in p for p in scene.problems), scene.problems
    summary = scene.summary()
    assert summary["plan"]["name"] == "BRAIN" and [b["energy"] for b in summary["trial"]["beams"]] == ["6X", "6X"]
    assert scene.dvhs() == {}


def test_a_ct_the_store_lost_is_named_and_the_plan_still_shown(tmp_path: Path) -> None:
    from rtvault.demo import generate_database

    generate_database(tmp_path / "pinnacle", patients=1, seed=5, image_mb=0.05)
    vault = make_vault(tmp_path / "site", tmp_path / "pinnacle")
    snapshot = vault.backup().snapshot
    path = next(p.relative_to(vault.root).as_posix() for p in vault.root.glob("Institution_*/Mount_*/Patient_*"))
    lose(vault.store_path, data_key(_hash_of(vault, path, snapshot)))
    chosen = Chosen({"key": "0" * 16, "path": path}, {"version": "2" * 16},
                    {"kind": "snapshot", "ref": snapshot, "store": "primary", "location": "x"})
    scene = build_scene(vault.config, chosen, None, "")
    assert scene.hu is None and scene.summary()["trial"]["beams"]
    assert any("ImageSet_0.img" in p and "cannot be read" in p for p in scene.problems), scene.problems


def _hash_of(vault, path: str, snapshot: str) -> str:
    store = vault.store
    tree = store.get_tree(store.load_snapshot(snapshot).patient(path).tree)
    return tree.by_name()["ImageSet_0.img"].hash
