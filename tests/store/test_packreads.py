"""`check --read-data` reads the blobs of a pack a span at a time (store/packreads.py): every object is still
verified, and what is reported about a damaged or missing one is exactly what reading it alone reports."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from kit import store as storekit
from rtvault.errors import StoreError
from rtvault.jobs.maintenance import check_store
from rtvault.store import Store, packreads
from rtvault.store.objects import data_key, read_object, store_small, verify_object
from rtvault.store.packs import PackedBackend


def _store(path: Path, count: int = 40) -> tuple[Store, list[str]]:
    """A version 2 store holding `count` small objects (incompressible, a few KB each), in the order packed."""
    store, _ = Store.init(path)
    rng = random.Random(7)
    digests = [store_small(store.backend, rng.randbytes(2000 + 97 * n), False)[0] for n in range(count)]
    store.backend.barrier()
    return Store.open(path), digests


def _in_pack_order(store: Store, digests: list[str]) -> list[str]:
    backend = store.backend
    assert isinstance(backend, PackedBackend)
    return sorted(digests, key=lambda d: backend.where_of(data_key(d))[:2])  # type: ignore[index]


def test_a_span_reads_many_blobs_at_once_and_verifies_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, digests = _store(tmp_path / "store")
    order = _in_pack_order(store, digests)
    reads: list[int] = []
    read_range = PackedBackend.read_range

    def counted(self: PackedBackend, pack: str, start: int, length: int) -> bytes:
        reads.append(length)
        return read_range(self, pack, start, length)

    monkeypatch.setattr(PackedBackend, "read_range", counted)
    monkeypatch.setattr(packreads, "verify_object", lambda *_: pytest.fail("a healthy blob was read on its own"))

    runs = packreads.spans(store.backend, order)
    assert [d for run in runs for d in run] == order and len(runs) == 1
    results = [result for run in runs for result in packreads.verify_objects(store.backend, run)]

    assert results == [(d, len(b"".join(read_object(store.backend, d)))) for d in order]
    assert len(reads) == 1


def test_spans_end_at_the_span_size_and_the_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, digests = _store(tmp_path / "store")
    order = _in_pack_order(store, digests)
    backend = store.backend
    assert isinstance(backend, PackedBackend)
    monkeypatch.setattr(packreads, "SPAN", 10_000)

    runs = packreads.spans(backend, order)

    assert [d for run in runs for d in run] == order and len(runs) > 5
    for run in runs:
        places = [backend.where_of(data_key(d)) for d in run]
        assert places[-1].offset + places[-1].length - places[0].offset <= 10_000 or len(run) == 1  # type: ignore[union-attr]
    assert packreads.spans(backend, ["f" * 64, *order[:2]]) == [["f" * 64], order[:2]]  # unknown: alone


@pytest.mark.parametrize("damage", ["zero_half", "flip", "lose"])
def test_damage_inside_a_span_is_reported_as_reading_that_object_alone(tmp_path: Path, damage: str) -> None:
    store, digests = _store(tmp_path / "store")
    order = _in_pack_order(store, digests)
    victims = [order[3], order[17], order[-1]]
    for digest in victims:
        getattr(storekit, damage)(tmp_path / "store", data_key(digest))
    store = Store.open(tmp_path / "store")
    alone = {}
    for digest in order:
        try:
            alone[digest] = verify_object(store.backend, digest)
        except StoreError as error:
            alone[digest] = str(error)

    results = packreads.verify_objects(store.backend, order)

    assert [(d, str(r) if isinstance(r, StoreError) else r) for d, r in results] == [(d, alone[d]) for d in order]
    assert [d for d, r in results if isinstance(r, StoreError)] == victims


def test_a_pack_that_cannot_be_read_at_once_costs_nothing_more(tmp_path: Path) -> None:
    store, digests = _store(tmp_path / "store")
    order = _in_pack_order(store, digests)
    backend = store.backend
    assert isinstance(backend, PackedBackend)
    pack = backend.where_of(data_key(order[0])).pack  # type: ignore[union-attr]
    path = tmp_path / "store" / "packs" / pack[:2] / pack
    os.truncate(path, backend.where_of(data_key(order[20])).offset)  # type: ignore[union-attr]
    store = Store.open(tmp_path / "store")

    results = packreads.verify_objects(store.backend, order)

    assert [d for d, r in results if not isinstance(r, StoreError)] == order[:20]
    for digest, result in results[20:]:
        with pytest.raises(StoreError) as alone:
            verify_object(store.backend, digest)
        assert str(result) == str(alone.value)


def test_check_read_data_reads_blobs_a_span_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, digests = _store(tmp_path / "store")
    opened = PackedBackend.open

    def whole_spans_only(self: PackedBackend, key: str):
        assert not key.startswith("data/"), f"{key} was read on its own"
        return opened(self, key)

    monkeypatch.setattr(PackedBackend, "open", whole_spans_only)

    report = check_store(store, read_data=True)

    assert report.objects_read == report.objects_stored == len(digests) and not report.problems
