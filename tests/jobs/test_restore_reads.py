"""A restore reads each repeated object once (`jobs/restore_reads.py`: the machine file of every plan is one
object) and makes and checks each directory once (`jobs/restore_paths.py`), and restores the same bytes; a
damaged object still fails every file naming it, each named."""

from __future__ import annotations

import functools
import os
from collections import Counter
from pathlib import Path

import pytest

from kit import store as storekit
from kit.files import files_of
from rtvault.jobs import pool, restore, restore_paths, restore_reads
from rtvault.jobs.restore import RestoreIncomplete, restore_all
from rtvault.store.objects import data_key


def _files(vault) -> list[tuple[str, list]]:
    """The latest snapshot's trees in restore order: (patient path, "" for the root files; its file entries)."""
    store = vault.store
    return [(path, store.get_tree(tree).files) for path, tree in vault.manifests()[-1].trees().items()]


def _uses(vault) -> Counter[str]:
    """How many files of the latest snapshot name each object."""
    return Counter(f.hash for _path, files in _files(vault) for f in files)


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    reads: Counter[str] = Counter()
    read_object = restore_reads.read_object

    def counted(backend, digest):
        reads[digest] += 1
        return read_object(backend, digest)

    monkeypatch.setattr(restore_reads, "read_object", counted)
    return reads


def test_a_repeated_object_is_read_once_and_written_for_every_file(own_store, monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    uses = _uses(own_store)
    assert max(uses.values()) > pool.WORKERS  # the machine file of every plan
    reads = _count_reads(monkeypatch)
    monkeypatch.setattr(restore, "in_threads", functools.partial(pool.in_threads, workers=1))

    restore_all(own_store.store, tmp_path / "one-thread")

    assert reads == Counter(set(uses))  # every object once, whatever the number of files naming it
    assert files_of(tmp_path / "one-thread", transient=True) == own_store.source_files()


def test_threads_read_a_repeated_object_at_most_once_each(own_store, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    uses = _uses(own_store)
    reads = _count_reads(monkeypatch)

    restore_all(own_store.store, tmp_path / "dest")

    assert set(reads) == set(uses) and max(reads.values()) <= pool.WORKERS
    assert sum(reads.values()) < sum(uses.values())
    assert files_of(tmp_path / "dest", transient=True) == own_store.source_files()


def test_nothing_is_kept_beyond_the_limit(own_store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    uses = _uses(own_store)
    reads = _count_reads(monkeypatch)
    monkeypatch.setattr(restore_reads, "LIMIT", 0)

    restore_all(own_store.store, tmp_path / "dest")

    assert reads == uses  # each file read its object itself
    assert files_of(tmp_path / "dest", transient=True) == own_store.source_files()


def test_a_damaged_repeated_object_fails_every_file_naming_it(own_store, tmp_path: Path) -> None:
    digest, count = _uses(own_store).most_common(1)[0]
    expected = [(path, [f.name for f in files if f.hash == digest]) for path, files in _files(own_store)]
    expected = [(path, names) for path, names in expected if names]
    storekit.zero_half(own_store.store_path, data_key(digest))
    assert sum(len(names) for _, names in expected) == count > 1

    with pytest.raises(RestoreIncomplete) as raised:
        restore_all(own_store.store, tmp_path / "dest")

    failed = raised.value.summary.failed
    assert [(f["patient"], [n["name"] for n in f["files_not_written"]]) for f in failed] == expected
    assert all("damaged" in n["reason"] for f in failed for n in f["files_not_written"])
    lost = {f"{path}/{name}".lstrip("/") for path, names in expected for name in names}
    assert files_of(tmp_path / "dest", transient=True) == \
        {rel: v for rel, v in own_store.source_files().items() if rel not in lost}
    assert not [p for p in (tmp_path / "dest").rglob("*") if "rtvault-partial" in p.name]


def test_each_directory_is_made_and_checked_once(own_store, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    made: Counter[str] = Counter()
    mkdir = os.mkdir

    def counted(path, *args, **kwargs):
        made[str(path)] += 1
        return mkdir(path, *args, **kwargs)

    monkeypatch.setattr(restore_paths.os, "mkdir", counted)
    monkeypatch.setattr(restore, "in_threads", functools.partial(pool.in_threads, workers=1))  # threads may race
    dest = tmp_path / "dest"

    restore_all(own_store.store, dest)

    dirs = {current for current, _dirs, _files in os.walk(dest)}  # the destination itself too
    assert set(made) == dirs and set(made.values()) == {1}
