"""What a sync reads and asks: the store's manifests once however many snapshots are new, and the known trees
of a snapshot found in one query for all its patients (a backup that changed nothing names only known trees),
the snapshot's locations still recorded for every patient."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtvault.catalog import Catalog
from rtvault.catalog.indexer import sync
from rtvault.config import load
from rtvault.demo import generate_database
from rtvault.jobs.backup import run_backup
from rtvault.store import Store

PATIENTS = 3


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("reads")
    generate_database(base / "db", patients=PATIENTS, seed=3, image_mb=0.05)
    Store.init(base / "store")
    (base / "rtvault.toml").write_text("\n".join([
        "[source.pinnacle]", f"root = {json.dumps(str(base / 'db'))}",
        "[stores.primary]", f"path = {json.dumps(str(base / 'store'))}", ""]), encoding="utf-8")
    config = load(base / "rtvault.toml")
    for _ in range(3):  # three snapshots of the same trees
        run_backup(config, Store.open(base / "store"))
    return base / "store"


def _locations(catalog: Catalog) -> list[tuple]:
    return catalog.execute("SELECT p.path, l.ref FROM locations l JOIN patients p ON p.id = l.patient "
                           "WHERE l.kind = 'snapshot' ORDER BY p.path, l.ref")


def test_manifests_are_read_once_for_all_new_snapshots(store_dir: Path, catalog: Catalog,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    reads = []
    original = Store.manifests_and_damage
    monkeypatch.setattr(Store, "manifests_and_damage", lambda self: reads.append(1) or original(self))
    [summary] = sync(catalog, {"primary": Store.open(store_dir)})
    assert (summary.snapshots_added, summary.versions_added, summary.problems) == (3, PATIENTS, [])
    assert len(reads) == 1
    snapshots = sorted(m.id for m in Store.open(store_dir).manifests())
    paths = sorted({path for path, _ in _locations(catalog)})
    assert len(paths) == PATIENTS
    assert _locations(catalog) == [(path, ref) for path in paths for ref in snapshots]


def test_known_trees_are_found_in_one_query(store_dir: Path, catalog: Catalog,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store.open(store_dir)
    newest = max(store.manifests(), key=lambda m: (m.time, m.id))
    hidden = store_dir / "snapshots" / f"{newest.id}.json"
    kept = hidden.read_bytes()
    hidden.unlink()
    sync(catalog, {"primary": Store.open(store_dir)})  # the two older snapshots
    hidden.write_bytes(kept)
    statements = []
    original = Catalog.execute
    monkeypatch.setattr(Catalog, "execute", lambda self, text, params=(): statements.append(text)
                        or original(self, text, params))
    [summary] = sync(catalog, {"primary": Store.open(store_dir)})
    assert (summary.snapshots_added, summary.versions_added, summary.problems) == (1, 0, [])
    assert sum("JOIN patients p ON p.id = v.patient" in s for s in statements) == 1
    assert not [s for s in statements if "INSERT INTO locations" in s]  # one bulk insert, not one per patient
    assert sum(ref == newest.id for _, ref in _locations(catalog)) == PATIENTS
