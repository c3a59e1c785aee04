"""Durability costs per run, not per file: a backup fsyncs its packs and the folders it renamed files into,
never the whole file system (other programs' writes are not its business), and nothing when it wrote nothing."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from rtvault.store.backend import DirectoryBackend


class Syncs:
    """Every fsync of this process, by what the descriptor names; any whole-file-system sync fails the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: Counter[str] = Counter()
        real = os.fsync

        def fsync(fd: int) -> None:
            self.paths[os.readlink(f"/proc/self/fd/{fd}")] += 1
            real(fd)

        def whole(*_args: object) -> None:
            raise AssertionError("a whole file system was synced")

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "sync", whole)
        monkeypatch.setattr("rtvault.store.backend.sync_filesystem", whole)

    def count(self, under: Path) -> int:
        return sum(n for path, n in self.paths.items() if path.startswith(str(under)))


def test_a_first_backup_makes_a_few_durable_writes_not_one_per_file(vault, monkeypatch: pytest.MonkeyPatch) -> None:
    syncs = Syncs(monkeypatch)
    summary = vault.backup()
    files = sum(1 for _ in vault.root.rglob("*") if _.is_file())
    assert summary.files_new > 100 and files > 100
    stored = [p for p in vault.store_path.rglob("*") if p.is_file()]
    assert len(stored) < 15, f"{len(stored)} store files for {summary.files_new} objects"
    assert syncs.count(vault.store_path) <= 2 * len(stored) + 8, syncs.paths
    assert syncs.count(vault.root) == 0, "the source is never written, hence never synced"


def test_a_backup_that_writes_nothing_syncs_almost_nothing(vault, monkeypatch: pytest.MonkeyPatch) -> None:
    vault.backup()
    syncs = Syncs(monkeypatch)
    summary = vault.backup()
    assert summary.files_new == 0
    synced = {path for path in syncs.paths if path.startswith(str(vault.store_path))}
    assert not [p for p in synced if "/packs" in p or "/index" in p or "/data" in p], synced
    assert syncs.count(vault.store_path) <= 6, syncs.paths  # the lock and the manifest, with their folders


def test_a_barrier_after_no_write_does_nothing_and_after_writes_syncs_each_folder_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = DirectoryBackend(tmp_path)
    syncs = Syncs(monkeypatch)
    backend.barrier()
    assert not syncs.paths
    for n in range(20):
        backend.put(f"data/{n % 2}{n % 2}/{n:064d}", b"x")
    content_fsyncs = syncs.count(tmp_path / "tmp")
    syncs.paths.clear()
    backend.barrier()
    assert syncs.paths == Counter({str(tmp_path / "data" / "00"): 1, str(tmp_path / "data" / "11"): 1,
                                   str(tmp_path / "data"): 1}), syncs.paths
    assert content_fsyncs == 20  # each staged file's content, before its rename
    syncs.paths.clear()
    backend.barrier()
    assert not syncs.paths
