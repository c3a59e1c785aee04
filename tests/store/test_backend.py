"""The store on disk: `rtvault init`, opening a store, the directory backend, and the stored bytes themselves —
deduplicated, compressed, and readable with Python's standard library plus the `zstandard` module."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from pathlib import Path

import pytest
import zstandard

from kit import store as storekit
from kit.cli import rtvault
from kit.config import write_config
from kit.files import kept_bytes
from rtvault.config import load
from rtvault.demo import generate_database
from rtvault.errors import ExitCode, StoreError
from rtvault.jobs.backup import run_backup
from rtvault.store import Store
from rtvault.store.backend import DirectoryBackend
from rtvault.store.objects import data_key, read_object, store_small, store_stream, verify_object


def everything_under(path: Path) -> dict[str, bytes | None]:
    return {p.relative_to(path).as_posix(): (p.read_bytes() if p.is_file() else None) for p in path.rglob("*")}


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Store]:
    """A small generated database (never changed) and a store holding one backup of it."""
    base = tmp_path_factory.mktemp("backend")
    root = base / "db"
    generate_database(root, patients=5, seed=5, image_mb=0.2)
    store, _ = Store.init(base / "store")
    run_backup(load(write_config(base / "rtvault.toml", root=root, stores={"primary": base / "store"})), store)
    return root, store


def data_objects(store: Store) -> list[str]:
    return storekit.keys(Path(store.location), "data/")


def object_bytes(store: Store, data: bytes) -> bytes:
    """The stored bytes of the object holding `data`, read where they lie (its own file, or a pack's slice)."""
    return storekit.read(Path(store.location), data_key(hashlib.sha256(data).hexdigest()))


# --- init and open ----------------------------------------------------------------------------------------

def test_init_creates_the_store_and_is_idempotent(tmp_path: Path) -> None:
    store = tmp_path / "nas" / "rtvault"
    config = write_config(tmp_path / "rtvault.toml", root=tmp_path / "db", stores={"primary": store})

    first = json.loads(rtvault(config, "init", "--json").stdout)["stores"]
    assert [(s["store"], s["path"], s["created"]) for s in first] == [("primary", str(store), True)]
    info = json.loads((store / "rtvault-store.json").read_text())
    assert (info["format"], info["version"], info["id"]) == ("rtvault-store", 2, first[0]["id"])
    assert info["hash"] == "sha256" and info["compression"] == "zstd"
    for folder in ("data", "trees", "packs", "index", "snapshots", "locks"):
        assert (store / folder).is_dir()
    before = everything_under(store)

    again = rtvault(config, "init")
    assert "already" in again.stdout
    second = json.loads(rtvault(config, "init", "--json").stdout)["stores"]
    assert second[0]["created"] is False and second[0]["id"] == first[0]["id"]
    after = everything_under(store)
    added = sorted(key for key in set(after) - set(before) if after[key] is not None)
    assert len(added) == 2 and all(key.startswith("journal/") for key in added)  # each init journalled, no more
    assert {k: v for k, v in after.items() if not k.startswith(("journal", "heads"))} == \
        {k: v for k, v in before.items() if not k.startswith(("journal", "heads"))}


def test_init_refuses_a_directory_holding_something_else(tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "patients.xls").write_bytes(b"someone else's file")
    before = everything_under(busy)
    config = write_config(tmp_path / "rtvault.toml", root=tmp_path / "db", stores={"primary": busy})

    done = rtvault(config, "init", expect=ExitCode.STORE)

    assert "not empty" in done.stderr and str(busy) in done.stderr
    assert everything_under(busy) == before


def test_init_refuses_a_file_where_the_store_should_be(tmp_path: Path) -> None:
    (tmp_path / "store").write_bytes(b"a file")
    config = write_config(tmp_path / "rtvault.toml", root=tmp_path / "db", stores={"primary": tmp_path / "store"})
    done = rtvault(config, "init", expect=ExitCode.STORE)
    assert "not an rtvault store" in done.stderr
    assert (tmp_path / "store").read_bytes() == b"a file"


def test_init_accepts_an_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    config = write_config(tmp_path / "rtvault.toml", root=tmp_path / "db", stores={"primary": tmp_path / "store"})
    rtvault(config, "init")
    assert Store.open(tmp_path / "store").info["format"] == "rtvault-store"


@pytest.mark.parametrize("command", [["snapshots"], ["backup"], ["restore", "--all", "--to", "OUT"]])
def test_a_missing_store_is_reported_and_not_created(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "db" / "Institution_1").mkdir(parents=True)
    store = tmp_path / "unmounted-nas" / "rtvault"
    config = write_config(tmp_path / "rtvault.toml", root=tmp_path / "db", stores={"primary": store})
    command = [str(tmp_path / "out") if arg == "OUT" else arg for arg in command]

    done = rtvault(config, *command, expect=ExitCode.STORE)

    assert str(store) in done.stderr and "does not exist" in done.stderr
    assert not store.exists() and not (tmp_path / "unmounted-nas").exists()
    assert not (tmp_path / "out").exists()


def test_a_directory_that_is_not_a_store_is_reported(tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    config = write_config(tmp_path / "rtvault.toml", root=tmp_path / "db", stores={"primary": tmp_path / "other"})
    done = rtvault(config, "snapshots", expect=ExitCode.STORE)
    assert "not an rtvault store" in done.stderr and "rtvault init" in done.stderr
    assert list((tmp_path / "other").iterdir()) == []


def test_a_store_of_an_unknown_format_version_is_refused(tmp_path: Path) -> None:
    Store.init(tmp_path / "store")
    info_file = tmp_path / "store" / "rtvault-store.json"
    info = json.loads(info_file.read_text())
    info_file.write_text(json.dumps({**info, "version": 99}))

    config = write_config(tmp_path / "rtvault.toml", root=tmp_path / "db", stores={"primary": tmp_path / "store"})
    done = rtvault(config, "snapshots", expect=ExitCode.STORE)

    assert "99" in done.stderr
    with pytest.raises(StoreError, match="version"):
        Store.open(tmp_path / "store")


def test_an_unreadable_format_file_is_a_store_error(tmp_path: Path) -> None:
    Store.init(tmp_path / "store")
    (tmp_path / "store" / "rtvault-store.json").write_bytes(b"{half a file")
    with pytest.raises(StoreError, match="unreadable"):
        Store.open(tmp_path / "store")


# --- what a backup leaves in the store --------------------------------------------------------------------

def test_each_distinct_content_is_stored_once(backed_up: tuple[Path, Store]) -> None:
    root, store = backed_up
    files = kept_bytes(root)
    machines = [data for rel, data in files.items() if rel.endswith("/plan.Pinnacle.Machines")]
    assert len(machines) > 3 and len(set(machines)) == 1, "the demo repeats the machine file in every plan"

    objects = data_objects(store)

    assert len(objects) == len(set(files.values()))
    assert {k.rsplit("/", 1)[-1] for k in objects} == {hashlib.sha256(data).hexdigest() for data in files.values()}
    assert object_bytes(store, machines[0])


def test_the_stored_data_is_much_smaller_than_the_source(backed_up: tuple[Path, Store]) -> None:
    root, store = backed_up
    source_size = sum(len(data) for data in kept_bytes(root).values())
    stored_size = storekit.stored_bytes(Path(store.location))  # objects, trees, pack headers and indexes
    assert 0 < stored_size < source_size * 0.35, (stored_size, source_size)


def test_a_text_object_is_a_plain_zstd_frame(backed_up: tuple[Path, Store]) -> None:
    root, store = backed_up
    original = next(root.glob("Institution_1/Mount_0/Patient_*/Patient")).read_bytes()
    raw = object_bytes(store, original)

    assert raw[:4] == b"\x28\xb5\x2f\xfd"  # the zstd magic number: `zstd -d` reads it
    content = zstandard.ZstdDecompressor().decompressobj().decompress(raw)

    assert content == original


def _unshuffle(block: bytes) -> bytes:
    half = (len(block) + 1) // 2
    return bytes(b for pair in zip(block[:half], block[half:], strict=False) for b in pair) + (
        block[half - 1: half] if len(block) % 2 else b"")


def test_a_ct_voxel_object_names_its_filter_and_decodes_by_hand(backed_up: tuple[Path, Store]) -> None:
    root, store = backed_up
    original = next(root.glob("Institution_1/Mount_0/Patient_*/ImageSet_0.img")).read_bytes()
    assert len(original) < 1 << 20  # one shuffle block: the by-hand decoding below stays simple
    raw = object_bytes(store, original)

    magic, size = struct.unpack("<II", raw[:8])
    assert magic == 0x184D2A50  # a zstd skippable frame, so `zstd -d` still decodes the rest
    assert raw[8: 8 + size] == b"rtvault-filter:shuffle2:1048576"
    shuffled = zstandard.ZstdDecompressor().decompressobj().decompress(raw[8 + size:])
    low, high = shuffled[: (len(shuffled) + 1) // 2], shuffled[(len(shuffled) + 1) // 2:]
    assert bytes(low) == original[0::2] and bytes(high) == original[1::2]
    assert _unshuffle(shuffled) == original


def test_trees_and_manifests_are_readable_json(backed_up: tuple[Path, Store]) -> None:
    root, store = backed_up
    [manifest_file] = (Path(store.location) / "snapshots").glob("*.json")
    manifest = json.loads(manifest_file.read_text(encoding="ascii"))
    assert manifest["id"] == manifest_file.stem
    entry = manifest["patients"][0]
    stored = storekit.read(Path(store.location), f"trees/{entry['tree'][:2]}/{entry['tree']}")
    data = zstandard.ZstdDecompressor().decompressobj().decompress(stored)
    assert hashlib.sha256(data).hexdigest() == entry["tree"]
    tree = json.loads(data)
    names = {f["name"] for f in tree["files"]}
    assert names == {rel.removeprefix(entry["path"] + "/") for rel in kept_bytes(root)
                     if rel.startswith(entry["path"] + "/")}
    assert tree["patient"]["mrn"] == entry["mrn"]


def test_a_staged_file_left_by_a_killed_run_is_cleaned_by_the_next_backup(tmp_path: Path) -> None:
    root = tmp_path / "db"
    generate_database(root, patients=1, seed=1, image_mb=0.2)
    store, _ = Store.init(tmp_path / "store")
    leftover = tmp_path / "store" / "tmp" / "12345-deadbeef"
    leftover.write_bytes(b"half an object")

    run_backup(load(write_config(tmp_path / "rtvault.toml", root=root, stores={"primary": tmp_path / "store"})), store)

    assert list((tmp_path / "store" / "tmp").iterdir()) == []
    assert len(store.manifests()) == 1


# --- the directory backend and content objects ------------------------------------------------------------

@pytest.fixture
def backend(tmp_path: Path) -> DirectoryBackend:
    Store.init(tmp_path / "store")
    return DirectoryBackend(tmp_path / "store")


@pytest.mark.parametrize("key", ["../outside", "data/../../outside", "/etc/passwd", "data/ab/../../../x"])
def test_keys_cannot_leave_the_store(backend: DirectoryBackend, key: str) -> None:
    with pytest.raises(StoreError, match="invalid store key"):
        backend.put(key, b"x")
    with pytest.raises(StoreError):
        backend.get(key)
    assert not (backend.root.parent / "outside").exists()


def test_put_get_list_and_missing_keys(backend: DirectoryBackend) -> None:
    backend.put("snapshots/a.json", b"{}")
    backend.put("data/ab/abcd", b"123")
    assert backend.get("data/ab/abcd") == b"123"
    assert backend.size("data/ab/abcd") == 3
    assert backend.exists("snapshots/a.json") and not backend.exists("snapshots/b.json")
    assert sorted(backend.list("data/")) == ["data/ab/abcd"]
    assert list(backend.list("nothing-here/")) == []
    with pytest.raises(StoreError, match="missing"):
        backend.get("snapshots/b.json")
    with pytest.raises(StoreError, match="missing"):
        backend.open("snapshots/b.json")
    assert list((backend.root / "tmp").iterdir()) == []


def test_a_staged_file_is_invisible_until_committed(backend: DirectoryBackend) -> None:
    staged = backend.stage()
    staged.file.write(b"content")
    assert not backend.exists("data/cc/cc01")
    assert staged.commit("data/cc/cc01") is True
    assert backend.get("data/cc/cc01") == b"content"

    again = backend.stage()
    again.file.write(b"content")
    assert again.commit("data/cc/cc01") is False  # content-addressed: already there
    discarded = backend.stage()
    discarded.file.write(b"x")
    discarded.discard()
    assert list((backend.root / "tmp").iterdir()) == []


def test_create_exclusive_only_once(backend: DirectoryBackend) -> None:
    assert backend.create_exclusive("locks/writer.json", b"first") is True
    assert backend.create_exclusive("locks/writer.json", b"second") is False
    assert backend.get("locks/writer.json") == b"first"
    backend.replace("locks/writer.json", b"renewed")
    assert backend.get("locks/writer.json") == b"renewed"
    backend.delete("locks/writer.json")
    backend.delete("locks/writer.json")  # deleting twice is fine
    assert not backend.exists("locks/writer.json")


def test_clean_staging_removes_only_old_staged_files(backend: DirectoryBackend) -> None:
    tmp = backend.root / "tmp"
    (tmp / "old").write_bytes(b"x")
    os.utime(tmp / "old", (1_000, 1_000))
    (tmp / "new").write_bytes(b"y")
    now = (tmp / "new").stat().st_mtime
    assert backend.clean_staging(3600, now) == 1
    assert sorted(p.name for p in tmp.iterdir()) == ["new"]


def test_objects_round_trip_and_are_stored_once(backend: DirectoryBackend, tmp_path: Path) -> None:
    small = b"PatientID = 1;\n" * 100
    digest, new = store_small(backend, small, shuffled=False)
    assert (digest, new) == (hashlib.sha256(small).hexdigest(), True)
    assert store_small(backend, small, shuffled=False) == (digest, False)
    assert b"".join(read_object(backend, digest)) == small

    big = os.urandom(3 << 20) + bytes(3 << 20)
    (tmp_path / "big").write_bytes(big)
    with open(tmp_path / "big", "rb") as source:
        big_digest, size, new = store_stream(backend, source, shuffled=True)
    assert (big_digest, size, new) == (hashlib.sha256(big).hexdigest(), len(big), True)
    assert b"".join(read_object(backend, big_digest)) == big
    assert verify_object(backend, big_digest) == len(big)


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_a_damaged_object_is_detected(backend: DirectoryBackend, damage: str) -> None:
    data = os.urandom(2000) + b"A" * 50_000
    digest, _ = store_small(backend, data, shuffled=False)
    path = backend.path_of(f"data/{digest[:2]}/{digest}")
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "flip":
        raw[len(raw) // 2] ^= 0xFF
    else:
        raw = bytearray()
    path.write_bytes(bytes(raw))

    with pytest.raises(StoreError, match="damaged"):
        verify_object(backend, digest)


def test_copying_a_store_directory_gives_a_working_store(backed_up: tuple[Path, Store], tmp_path: Path) -> None:
    """Readable without rtvault's help: a plain copy (cp -a, rsync) of the directory is a complete store."""
    _root, store = backed_up
    shutil.copytree(store.location, tmp_path / "copy")
    copy = Store.open(tmp_path / "copy")
    assert [m.id for m in copy.manifests()] == [m.id for m in store.manifests()]
    assert data_objects(copy) == data_objects(store)
    for key in data_objects(copy):
        digest = key.rsplit("/", 1)[-1]
        assert verify_object(copy.backend, digest) > 0 or digest == hashlib.sha256(b"").hexdigest()
