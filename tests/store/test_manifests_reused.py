"""A backup and its catalog refresh parse each snapshot manifest once (`manifests_reused`), not once each:
same bytes, same manifest; a manifest damaged meanwhile is still found damaged; outside the job nothing is
remembered."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rtvault.config import load
from rtvault.demo import generate_database
from rtvault.errors import StoreError
from rtvault.jobs.backup import backup, run_backup
from rtvault.store import Store, repository
from rtvault.store.repository import manifests_reused


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("reused")
    generate_database(base / "db", patients=2, seed=5, image_mb=0.05)
    Store.init(base / "store")
    (base / "rtvault.toml").write_text("\n".join([
        "[source.pinnacle]", f"root = {json.dumps(str(base / 'db'))}",
        "[stores.primary]", f"path = {json.dumps(str(base / 'store'))}",
        "[catalog]", f"url = {json.dumps('sqlite:///' + str(base / 'catalog.sqlite'))}", ""]), encoding="utf-8")
    config = load(base / "rtvault.toml")
    for _ in range(2):
        run_backup(config, Store.open(base / "store"))
    return base


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    original = repository.parse_manifest

    def counted(data: bytes):
        manifest = original(data)
        seen.append(manifest.id)
        return manifest

    monkeypatch.setattr(repository, "parse_manifest", counted)
    return seen


def test_a_manifest_is_parsed_once_within_the_job(site: Path, parses: list[str]) -> None:
    store = Store.open(site / "store")
    with manifests_reused():
        first = store.manifests()
        again = Store.open(site / "store").manifests()
    assert again == first and len(first) >= 2
    assert sorted(parses) == sorted(m.id for m in first)
    parses.clear()
    assert store.manifests() == first  # outside the job: read and parsed again
    assert sorted(parses) == sorted(m.id for m in first)


def test_a_manifest_damaged_meanwhile_is_found_damaged(site: Path, tmp_path: Path) -> None:
    shutil.copytree(site / "store", tmp_path / "store")
    store = Store.open(tmp_path / "store")
    with manifests_reused():
        newest = store.manifests()[-1]
        path = tmp_path / "store" / "snapshots" / f"{newest.id}.json"
        path.write_bytes(path.read_bytes().replace(b'"patients"', b'"patientz"', 1))
        with pytest.raises(StoreError, match="damaged"):
            store.manifests()


def test_backup_and_its_catalog_refresh_parse_each_manifest_once(site: Path, parses: list[str]) -> None:
    config = load(site / "rtvault.toml")
    done = backup(config, Store.open(site / "store"))
    assert done.catalog is None  # the catalog refreshed without a problem
    within = list(parses)  # the backup read the older manifests, the refresh all of them, the new one included
    assert sorted(within) == sorted(m.id for m in Store.open(site / "store").manifests())
