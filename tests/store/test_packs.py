"""The packed store (format 2, store/packs.py): many small objects in a handful of files, each read back byte
for byte; prune that deletes what nothing needs and rewrites what little is needed; an index that `check`
reports damaged and the next backup rewrites from the packs' own headers; a run killed between a pack and its
index; writers on several threads."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import zstandard

from kit import store as storekit
from kit.cli import rtvault
from kit.config import KEEP_LAST, add_tables, write_config
from kit.files import kept_bytes
from rtvault.demo import generate_database
from rtvault.store import Store
from rtvault.store import packs as packs_module
from rtvault.store.backend import DirectoryBackend
from rtvault.store.packfile import BLOB_MAX
from rtvault.store.packs import PackedBackend


def site(base: Path, patients: int = 6, seed: int = 11) -> tuple[Path, Path, Path]:
    """A generated database (small images: every object fits in a pack), its store and configuration."""
    generate_database(base / "db", patients=patients, seed=seed, image_mb=0.2)
    config = write_config(base / "rtvault.toml", root=base / "db", stores={"primary": base / "store"})
    rtvault(config, "init")
    return base / "db", base / "store", config


def restored(config: Path, out: Path, *args: str) -> dict[str, bytes]:
    rtvault(config, "restore", "--all", "--to", str(out), *args)
    return kept_bytes(out)


def logical(store: Path) -> list[str]:
    return storekit.keys(store, "data/") + storekit.keys(store, "trees/")


@pytest.fixture(scope="module")
def first_backup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    db, store, config = site(tmp_path_factory.mktemp("packs"), patients=12)
    rtvault(config, "backup")
    return db, store, config


def test_a_first_backup_of_many_small_files_writes_a_handful_of_store_files(
        first_backup: tuple[Path, Path, Path]) -> None:
    db, store, _config = first_backup
    objects = logical(store)
    assert len(kept_bytes(db)) > 200 and len(objects) > 200
    files = storekit.stored_files(store)
    assert [p.relative_to(store).parts[0] for p in files].count("packs") <= 3  # objects, trees: one pack each
    assert [p.relative_to(store).parts[0] for p in files].count("index") == 1
    assert len(files) <= 4 < len(objects) // 50
    # the files' bytes are the objects' bytes, a small header per pack, and the index
    blobs = sum(storekit.where(store, key).length for key in objects)
    packed = sum(p.stat().st_size for p in files if p.parent.parent.name == "packs")
    assert blobs < packed < blobs + 200 * len(objects)
    for path in files:  # every pack and index file is named by the hash of its bytes
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name


def test_a_blob_read_from_a_pack_is_byte_identical(first_backup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    db, store, config = first_backup
    opened = Store.open(store)
    for key in logical(store):
        place = storekit.where(store, key)
        assert place.path.parent.parent.name == "packs"
        with open(place.path, "rb") as pack:
            pack.seek(place.offset)
            raw = pack.read(place.length)
        assert opened.backend.get(key) == raw and opened.backend.size(key) == len(raw)
        with opened.backend.open(key) as reader:
            reader.seek(len(raw) // 2)
            assert reader.read() == raw[len(raw) // 2:]
    [manifest] = opened.manifests()
    tree = opened.get_tree(manifest.patients[0].tree)
    text = next(f for f in tree.files if not f.name.endswith(".img"))
    blob = opened.backend.get(f"data/{text.hash[:2]}/{text.hash}")
    content = (db / manifest.patients[0].path / text.name).read_bytes()
    assert zstandard.ZstdDecompressor().decompressobj().decompress(blob) == content  # a plain zstd frame
    assert restored(config, tmp_path / "out") == kept_bytes(db)


def test_prune_deletes_an_unreferenced_pack_and_repacks_a_mostly_unreferenced_one(tmp_path: Path) -> None:
    db, store, config = site(tmp_path, patients=3)
    add_tables(config, retention=KEEP_LAST)
    rtvault(config, "backup")  # pack 1: every object; the images are most of its bytes
    first = {p.name for p in (store / "packs").rglob("*") if p.is_file()}
    _rewrite_images(db, b"day two")
    rtvault(config, "backup")  # pack 2: the new images only
    second = {p.name for p in (store / "packs").rglob("*") if p.is_file()} - first
    _rewrite_images(db, b"day three")
    rtvault(config, "backup")
    before = storekit.stored_bytes(store)
    images_1 = max(first, key=lambda p: (store / "packs" / p[:2] / p).stat().st_size)  # pack 1's objects
    in_pack_1 = [k for k in storekit.keys(store, "data/") if storekit.where(store, k).path.name == images_1]

    rtvault(config, "forget")
    done = json.loads(rtvault(config, "prune", "--json").stdout)

    now = {p.name for p in (store / "packs").rglob("*") if p.is_file()}
    assert not (now & second), "the packs of day two hold nothing any snapshot needs: deleted"
    assert images_1 not in now, "pack 1 was mostly unreferenced: rewritten"
    survivors = set(in_pack_1) & set(storekit.keys(store, "data/"))
    assert survivors and all(storekit.where(store, k).path.name in now - first for k in survivors)
    assert done["deleted"] > 0 and storekit.stored_bytes(store) < before * 0.6
    report = json.loads(rtvault(config, "check", "--read-data", "--json").stdout)
    assert report["healthy"] and report["unreferenced"] == 0 and report["snapshots"] == 1
    assert report["objects_read"] == report["objects_stored"] == report["objects_referenced"]
    assert restored(config, tmp_path / "out") == kept_bytes(db)


def test_a_damaged_index_is_reported_by_check(tmp_path: Path) -> None:
    _db, store, config = site(tmp_path, patients=2)
    rtvault(config, "backup")
    [index] = (store / "index").iterdir()
    storekit.flip(store, f"index/{index.name}")
    report = json.loads(rtvault(config, "check", "--json", expect=7).stdout)
    assert [p["file"] for p in report["problems"]] == [f"index/{index.name}"]


@pytest.mark.parametrize("damage", ["flipped", "lost"])
def test_a_damaged_or_lost_index_is_rewritten_by_the_next_backup_from_the_packs(tmp_path: Path, damage: str) -> None:
    db, store, config = site(tmp_path, patients=2)
    rtvault(config, "backup")
    [index] = (store / "index").iterdir()
    if damage == "flipped":
        storekit.flip(store, f"index/{index.name}")
    else:
        index.unlink()
    rtvault(config, "backup")
    [healed] = (store / "index").iterdir()  # one index of everything, replacing the damaged one
    assert hashlib.sha256(healed.read_bytes()).hexdigest() == healed.name
    packs = {p.name for p in (store / "packs").rglob("*") if p.is_file()}
    named = json.loads(zstandard.ZstdDecompressor().decompress(healed.read_bytes()))["packs"]
    assert set(named) == packs
    report = json.loads(rtvault(config, "check", "--read-data", "--json").stdout)
    assert report["healthy"] and report["snapshots"] == 2
    assert restored(config, tmp_path / "out") == kept_bytes(db)


def _rewrite_images(db: Path, stamp: bytes) -> None:
    """Every CT voxel file changed (most of the stored bytes): nothing else is touched."""
    for path in sorted(db.rglob("*.img")):
        data = bytearray(path.read_bytes())
        data[:len(stamp)] = stamp
        path.write_bytes(bytes(data))


KILL_BEFORE_INDEX = """
import os, signal, sys
from rtvault.store.packs import PackedBackend
def killed(self, packs, supersedes):
    assert all(os.path.exists(os.path.join(self.inner.location, "packs", p[:2], p)) for p in packs)
    os.kill(os.getpid(), signal.SIGKILL)
PackedBackend._write_index = killed
from rtvault.cli import main
sys.argv = ["rtvault", "--config", sys.argv[1], "backup"]
main()
"""


def test_a_run_killed_after_sealing_a_pack_before_its_index_leaves_a_valid_store(tmp_path: Path) -> None:
    db, store, config = site(tmp_path, patients=3)
    rtvault(config, "backup")
    _rewrite_images(db, b"day two")
    indexes = sorted(p.name for p in (store / "index").iterdir())
    packs_before = {p.name for p in (store / "packs").rglob("*") if p.is_file()}

    killed = subprocess.run([sys.executable, "-c", KILL_BEFORE_INDEX, str(config)], capture_output=True,
                            timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert sorted(p.name for p in (store / "index").iterdir()) == indexes, "no index written"
    assert {p.name for p in (store / "packs").rglob("*") if p.is_file()} > packs_before, "the new pack is there"

    report = json.loads(rtvault(config, "check", "--read-data", "--json").stdout)
    assert report["healthy"] and report["snapshots"] == 1
    rtvault(config, "backup")
    report = json.loads(rtvault(config, "check", "--read-data", "--json").stdout)
    assert report["healthy"] and report["snapshots"] == 2
    assert restored(config, tmp_path / "out") == kept_bytes(db)


def test_two_threads_adding_blobs_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packs_module, "PACK_TARGET", 8 << 10)  # a pack sealed every few blobs
    Store.init(tmp_path / "store")
    backend = PackedBackend(DirectoryBackend(tmp_path / "store"))
    blobs = {f"data/{hashlib.sha256(b'%d' % i).hexdigest()[:2]}/{i:06d}": os.urandom(100 + i % 2000)
             for i in range(1200)}
    errors: list[BaseException] = []
    added: list[str] = []

    def writer(part: list[str]) -> None:
        try:
            for key in part:
                if backend.add(key, blobs[key]):
                    added.append(key)
                assert backend.exists(key) and backend.get(key) == blobs[key]
                assert backend.size(key) == len(blobs[key])
        except BaseException as error:
            errors.append(error)

    keys = sorted(blobs)
    threads = [threading.Thread(target=writer, args=(keys[i::2] + keys[:100],)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(added) == keys, "each blob added exactly once, even the ones both threads offered"
    backend.flush()

    again = Store.open(tmp_path / "store").backend
    assert sorted(again.list("data/")) == keys
    assert all(again.get(key) == data for key, data in blobs.items())
    assert all(hashlib.sha256(p.read_bytes()).hexdigest() == p.name for p in (tmp_path / "store" / "packs").rglob("*")
               if p.is_file())
    assert len(list((tmp_path / "store" / "packs").rglob("*/*"))) > 10


def test_an_index_superseded_by_a_killed_prune_stays_superseded_after_the_next_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A prune killed after writing its index but before deleting the ones it replaces leaves them superseded;
    the next prune's index replaces them too, so they never come back naming the packs deleted meanwhile."""
    Store.init(tmp_path / "store")
    backend = Store.open(tmp_path / "store").backend
    for key in ("data/aa/first", "data/bb/second", "data/cc/third"):  # three packs, three indexes
        backend.put(key, key.encode() * 100)
        backend.flush()
    first = Store.open(tmp_path / "store").backend
    assert isinstance(first, PackedBackend)
    real_delete = first.inner.delete
    monkeypatch.setattr(first.inner, "delete", lambda key: None if key.startswith("index/") else real_delete(key))
    first.delete("data/aa/first")  # its pack deleted, the replaced indexes left behind (the run killed)
    first.flush()
    assert len(list((tmp_path / "store" / "index").iterdir())) == 4

    second = Store.open(tmp_path / "store").backend
    second.delete("data/bb/second")
    second.flush()

    again = Store.open(tmp_path / "store")
    assert again.layout_problems() == []
    assert list(again.backend.list("data/")) == ["data/cc/third"]
    assert again.backend.get("data/cc/third") == b"data/cc/third" * 100


def test_a_large_object_keeps_its_own_file(tmp_path: Path) -> None:
    Store.init(tmp_path / "store")
    backend = Store.open(tmp_path / "store").backend
    large, small = os.urandom(BLOB_MAX + 1), os.urandom(1000)
    backend.put("data/aa/large", large)
    backend.put("data/bb/small", small)
    backend.barrier()
    assert (tmp_path / "store" / "data" / "aa" / "large").read_bytes() == large
    assert storekit.where(tmp_path / "store", "data/bb/small").path.parent.parent.name == "packs"
    assert sorted(Store.open(tmp_path / "store").backend.list("data/")) == ["data/aa/large", "data/bb/small"]


def test_a_reader_sees_what_another_writer_wrote_since_it_read_the_index(tmp_path: Path) -> None:
    """A long-lived reader (a web server, a test's Store) finds a blob another writer packed after it read the
    index, at once: a miss reads the index again when its files changed."""
    Store.init(tmp_path / "store")
    reader, writer = Store.open(tmp_path / "store"), Store.open(tmp_path / "store")
    assert not reader.backend.exists("data/ab/" + "ab" * 32)  # the reader has read the (empty) index
    writer.backend.put("data/ab/" + "ab" * 32, b"blob")
    writer.backend.barrier()
    assert reader.backend.exists("data/ab/" + "ab" * 32) and reader.backend.get("data/ab/" + "ab" * 32) == b"blob"


def test_a_repair_that_rebuilds_a_damaged_pack_byte_for_byte_keeps_it(tmp_path: Path) -> None:
    """Repair deletes the damaged blobs of a pack and writes the other store's copies; when the repack then puts
    the pack's other blobs after them in their old order, the new pack has the old pack's bytes, hence its name.
    It must be written (the file on disk is the damaged one) and not deleted as the pack it replaces."""
    Store.init(tmp_path / "store")
    blobs = {f"trees/{n:02x}/{n:02x}" + "0" * 62: os.urandom(300) for n in range(4)}
    backend = Store.open(tmp_path / "store").backend
    for key, data in blobs.items():
        backend.put(key, data)
    backend.barrier()
    damaged = list(blobs)[:2]
    for key in damaged:
        storekit.flip(tmp_path / "store", key)
    repairing = Store.open(tmp_path / "store").backend
    for key in damaged:  # as repair does: the damaged copy out, the good one in
        repairing.delete(key)
        repairing.put(key, blobs[key])
    repairing.barrier()

    again = Store.open(tmp_path / "store").backend
    assert again.index_problems() == []
    assert {key: again.get(key) for key in blobs} == blobs
