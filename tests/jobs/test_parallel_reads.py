"""`restore --all` and `check --read-data` read, verify and write on a few threads: what that could break. Damage
among many files costs exactly what it touches, named in the same order whatever the timing; progress is
reported from the caller's thread and adds up; a store that vanishes mid-restore, Ctrl-C or an error stops
every thread and leaves no temporary file behind."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit import store as storekit
from kit.files import files_of
from rtvault.errors import StoreError
from rtvault.jobs.maintenance import check_store
from rtvault.jobs.restore import Planned, RestoreIncomplete, RestoreSummary, restore_all, write_planned
from rtvault.store.formats import FileEntry
from rtvault.store.objects import data_key
from rtvault.store.packfile import PackFiles


class Recorder:
    """A Progress that records what it is told, and from which thread; it may act after `after` advances."""

    def __init__(self, after: int | None = None, then: object = None) -> None:
        self.total: int | None = None
        self.advanced = 0
        self.threads: set[int] = set()
        self.after, self.then = after, then

    def begin(self, label: str, total: int | None) -> None:
        self.total = total

    def advance(self, step: int = 1) -> None:
        self.threads.add(threading.get_ident())
        self.advanced += step
        self.after = None if self.after is None else self.after - 1
        if self.after == 0:
            self.then()  # type: ignore[operator]

    def end(self) -> None:
        pass


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("rtvault-worker")]


def _partials(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if "rtvault-partial" in p.name]


def _damage(vault, digest: str) -> None:
    storekit.zero_half(vault.store_path, data_key(digest))


def _victims(vault, count: int) -> list[tuple[str, str, str]]:
    """(patient, file name, hash) of `count` files in different patients whose content no other file shares."""
    trees = {p.path: vault.tree_of(p.path) for p in vault.manifests()[-1].patients}
    uses = Counter(f.hash for tree in trees.values() for f in tree.files)
    found = []
    for path, tree in reversed(trees.items()):  # from the last patient: the order named must not follow damage
        file = next(f for f in tree.files if uses[f.hash] == 1 and f.size > 0)
        found.append((path, file.name, file.hash))
    return found[:count]


def test_damage_among_many_files_costs_exactly_those_named_in_plan_order(own_store, tmp_path: Path) -> None:
    victims = _victims(own_store, 3)
    for _path, _name, digest in victims:
        _damage(own_store, digest)
    order = [p.path for p in own_store.manifests()[-1].patients]
    expected = sorted(((path, [name]) for path, name, _ in victims), key=lambda v: order.index(v[0]))

    for attempt in range(3):  # the same answer whatever the threads' timing
        dest, progress = tmp_path / f"dest-{attempt}", Recorder()
        with pytest.raises(RestoreIncomplete) as raised:
            restore_all(own_store.store, dest, progress=progress)
        failed = raised.value.summary.failed
        assert [(f["patient"], [n["name"] for n in f["files_not_written"]]) for f in failed] == expected
        lost = {f"{path}/{name}" for path, name, _ in victims}
        assert files_of(dest, transient=True) == \
            {rel: v for rel, v in own_store.source_files().items() if rel not in lost}
        assert not _partials(dest)
        assert progress.threads == {threading.get_ident()} and progress.advanced == progress.total


def test_check_read_data_names_exactly_the_damaged_objects_in_order(own_store) -> None:
    healthy = check_store(own_store.store, read_data=True)
    victims = sorted(digest for _path, _name, digest in _victims(own_store, 3))
    for digest in victims:
        _damage(own_store, digest)
    progress = Recorder()

    report = check_store(own_store.store, read_data=True, progress=progress)

    assert [p.file for p in report.problems] == [data_key(d) for d in victims]
    assert all("damaged" in p.message for p in report.problems)
    assert report.objects_read == healthy.objects_read - 3 == report.objects_stored - 3
    assert progress.threads == {threading.get_ident()} and progress.advanced == progress.total


def test_a_store_vanishing_mid_restore_stops_it_with_the_store_error(own_store, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    store_path, store = own_store.store_path, own_store.store
    reads, open_file = itertools.count(1), store.backend.open

    def vanishing(key: str) -> object:  # as if the share went away while files were being read: an empty mount
        if next(reads) == 6:  # point, from the sixth file on, whichever thread reads it and however far ahead
            store_path.rename(store_path.parent / "gone")
            store_path.mkdir()
        return open_file(key)

    monkeypatch.setattr(store.backend, "open", vanishing)
    monkeypatch.setattr(PackFiles, "LIMIT", 0)  # no pack kept open: an unmounted share fails every read
    dest = tmp_path / "dest"
    with pytest.raises(StoreError) as raised:
        restore_all(store, dest)
    assert not isinstance(raised.value, RestoreIncomplete) and str(store_path) in str(raised.value)
    assert not _partials(dest) and not _workers()


def _slow_files(destination: Path, count: int) -> list[Planned]:
    """Files of 40 blocks read 5 ms apart: when the restore stops, threads are halfway through theirs."""
    def blocks() -> Iterator[bytes]:
        for _ in range(40):
            time.sleep(0.005)
            yield b"x" * 1024

    return [Planned(destination / f"file-{n}", FileEntry(f"file-{n}", 40 * 1024, 0, 0, 0, 0o644, ""), blocks)
            for n in range(count)]


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, RuntimeError])
def test_ctrl_c_or_an_error_mid_restore_leaves_no_temporary_file(tmp_path: Path, interruption: type) -> None:
    dest = tmp_path / "dest"

    def interrupt() -> None:
        assert _partials(dest), "threads should be writing files when interrupted"
        raise interruption("stop")

    with pytest.raises(interruption):
        write_planned(dest, _slow_files(dest, 20), [], False, RestoreSummary("s", str(dest)),
                      Recorder(after=3, then=interrupt))
    assert not _partials(dest) and not _workers()
    assert all(p.stat().st_size == 40 * 1024 for p in dest.iterdir())  # only whole files under final names
