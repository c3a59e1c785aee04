"""One behaviour for every kind of store: the same tests run on a directory and on a real S3 server
(SeaweedFS on loopback), through the `Backend` interface the engine uses."""

from __future__ import annotations

import io
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kit.seaweed import SeaweedServer
from rtvault.errors import LockBusy, StoreError
from rtvault.store import Store
from rtvault.store.backend import Backend, DirectoryBackend
from rtvault.store.locks import WriterLock
from rtvault.store.objects import data_key, read_object, store_small, store_stream, verify_object
from rtvault.store.packs import PackedBackend
from rtvault.store.s3 import READ_CHUNK, S3Backend, S3Location


@pytest.fixture(scope="module")
def bucket(seaweed: SeaweedServer) -> str:
    return seaweed.new_bucket()


def backend_factory(request: pytest.FixtureRequest, tmp_path: Path, label: str) -> Callable[[], Backend]:
    """Makes empty backends of the kind the test is parametrised with (each in a fresh folder or prefix); the
    encryption tests wrap the same ones."""
    if request.param == "directory":
        def directory() -> Backend:
            root = tmp_path / secrets.token_hex(4)
            root.mkdir()
            return DirectoryBackend(root)
        return directory
    server: SeaweedServer = request.getfixturevalue("seaweed")
    bucket = request.getfixturevalue("bucket")

    def s3() -> Backend:
        return S3Backend(S3Location(label, bucket, f"t-{secrets.token_hex(6)}", endpoint=server.endpoint,
                                    access_key="k", secret_key="s", retry_seconds=5))
    return s3


@pytest.fixture(params=["directory", pytest.param("s3", marks=pytest.mark.slow), "packed"])  # S3: full suite
def make_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Backend]:
    if request.param == "packed":  # a version 2 store's view: small objects and trees in packs, over a directory
        def packed() -> Backend:
            root = tmp_path / secrets.token_hex(4)
            root.mkdir()
            return PackedBackend(DirectoryBackend(root))
        return packed
    return backend_factory(request, tmp_path, "conformance")


@pytest.fixture
def backend(make_backend: Callable[[], Backend]) -> Backend:
    return make_backend()


def test_put_get_exists_size(backend: Backend) -> None:
    assert not backend.exists("snapshots/a.json")
    backend.put("snapshots/a.json", b'{"id": "a"}\n', durable=True)
    assert backend.exists("snapshots/a.json")
    assert backend.get("snapshots/a.json") == b'{"id": "a"}\n'
    assert backend.size("snapshots/a.json") == 12


def test_an_empty_file_is_a_file(backend: Backend) -> None:
    backend.put("archives/empty", b"")
    assert backend.exists("archives/empty")
    assert (backend.get("archives/empty"), backend.size("archives/empty")) == (b"", 0)
    with backend.open("archives/empty") as reader:
        assert reader.read() == b""


def test_put_never_overwrites_a_written_file(backend: Backend) -> None:
    backend.put("trees/ab/abc", b"first")
    backend.put("trees/ab/abc", b"second")
    assert backend.get("trees/ab/abc") == b"first"


def test_list_gives_every_key_under_a_folder_at_any_depth(backend: Backend) -> None:
    keys = {"data/aa/aa1", "data/aa/aa2", "data/bb/bb1", "archives/tars/cc/cc1", "archives/cc1.json",
            "archives/overrides/cc1/2026-x.json", "a/b/c/d/e/f/g/h/i/deep.json", "database/x"}
    for key in keys:
        backend.put(key, key.encode())
    assert set(backend.list("data/")) == {k for k in keys if k.startswith("data/")}
    assert set(backend.list("data")) == {k for k in keys if k.startswith("data/")}  # not database/x
    assert set(backend.list("archives/")) == {k for k in keys if k.startswith("archives/")}
    assert set(backend.list("archives/overrides/cc1/")) == {"archives/overrides/cc1/2026-x.json"}
    assert list(backend.list("a/b/c/d/e/f/g/h/")) == ["a/b/c/d/e/f/g/h/i/deep.json"]
    assert backend.get("a/b/c/d/e/f/g/h/i/deep.json") == b"a/b/c/d/e/f/g/h/i/deep.json"
    assert list(backend.list("nothing/")) == []


def test_list_goes_past_one_page(backend: Backend) -> None:
    if isinstance(backend, S3Backend):  # ListObjectsV2 answers 1000 keys per page
        keys = {f"data/{i:04d}" for i in range(1005)}
        for key in keys:
            backend.put(key, b"")
        assert set(backend.list("data/")) == keys


def test_delete_removes_a_file_and_ignores_a_missing_one(backend: Backend) -> None:
    backend.put("locks/writer.json", b"{}")
    backend.delete("locks/writer.json")
    assert not backend.exists("locks/writer.json")
    assert list(backend.list("locks/")) == []
    backend.delete("locks/writer.json")


def test_stage_commit_writes_once_and_the_second_commit_is_a_no_op(backend: Backend) -> None:
    first = backend.stage()
    first.file.write(b"object bytes")
    assert first.commit("data/ab/ab12", durable=True) is True
    second = backend.stage()
    second.file.write(b"object bytes")
    assert second.commit("data/ab/ab12") is False
    assert backend.get("data/ab/ab12") == b"object bytes"
    assert list(backend.list("data/")) == ["data/ab/ab12"]


def test_a_discarded_stage_leaves_nothing(backend: Backend) -> None:
    staged = backend.stage()
    staged.file.write(b"half written")
    staged.discard()
    assert list(backend.list("data/")) == []
    assert backend.clean_staging(0, time.time()) >= 0


def test_create_exclusive_wins_once(backend: Backend) -> None:
    assert backend.create_exclusive("locks/writer.json", b"mine") is True
    assert backend.create_exclusive("locks/writer.json", b"theirs") is False
    assert backend.get("locks/writer.json") == b"mine"


def test_replace_overwrites_and_modified_follows(backend: Backend) -> None:
    backend.create_exclusive("locks/writer.json", b"v1")
    written = backend.modified("locks/writer.json")
    backend.replace("locks/writer.json", b"version 2")
    assert backend.get("locks/writer.json") == b"version 2"
    assert backend.modified("locks/writer.json") >= written
    assert abs(written - time.time()) < 600  # the server's clock is the machine's


def test_open_seeks_and_reads_ranges(backend: Backend) -> None:
    content = os.urandom(2 * READ_CHUNK + 12345)
    backend.put("archives/tars/ab/abc", content)
    with backend.open("archives/tars/ab/abc") as reader:
        assert reader.read(10) == content[:10]
        reader.seek(READ_CHUNK + 7)
        assert reader.read(100) == content[READ_CHUNK + 7 : READ_CHUNK + 107]
        assert reader.tell() == READ_CHUNK + 107
        reader.seek(5)
        assert reader.read(READ_CHUNK * 2) == content[5 : 5 + READ_CHUNK * 2]
        reader.seek(-50, io.SEEK_END)
        assert reader.read(1000) == content[-50:]
        assert reader.read(10) == b""
        reader.seek(0)
        assert reader.read() == content


@pytest.mark.parametrize("action", ["get", "open", "size", "modified"])
def test_a_missing_key_is_a_store_error(backend: Backend, action: str) -> None:
    with pytest.raises(StoreError, match="data/ab/missing is missing"):
        getattr(backend, action)("data/ab/missing")
    assert backend.exists("data/ab/missing") is False


@pytest.mark.parametrize("key", ["../outside", "data/../../outside", "/etc/passwd"])
def test_a_key_leaving_the_store_is_refused(backend: Backend, key: str) -> None:
    with pytest.raises(StoreError, match="invalid store key"):
        backend.put(key, b"x")


def test_objects_round_trip_and_verify(backend: Backend) -> None:
    small = b"Patient ={ LastName = \"DOE\"; };\n" * 10
    large = os.urandom(3 << 20)
    small_digest, new = store_small(backend, small, False)
    large_digest, size, _new = store_stream(backend, io.BytesIO(large), True)
    assert new and size == len(large)
    assert store_small(backend, small, False) == (small_digest, False)
    assert b"".join(read_object(backend, small_digest)) == small
    assert b"".join(read_object(backend, large_digest)) == large
    assert verify_object(backend, large_digest) == len(large)
    assert backend.size(data_key(large_digest)) > 0


def test_a_store_initialises_once_and_opens(backend: Backend) -> None:
    store, created = Store.init_backend(backend, empty=True)
    again, created_again = Store.init_backend(backend, empty=False)
    assert (created, created_again) == (True, False)
    assert Store.open_backend(backend).info["id"] == store.info["id"] == again.info["id"]


def test_a_backend_holding_something_else_is_refused(backend: Backend) -> None:
    with pytest.raises(StoreError, match="is not an rtvault store"):
        Store.open_backend(backend)
    backend.put("holiday.jpg", b"\xff\xd8")
    with pytest.raises(StoreError, match="not empty and is not an rtvault store"):
        Store.init_backend(backend, empty=False)


def test_the_writer_lock_excludes_a_second_writer(backend: Backend) -> None:
    with WriterLock(backend, "backup", 60), pytest.raises(LockBusy, match="is locked by backup"):
        WriterLock(backend, "prune", 60).acquire()
    with WriterLock(backend, "prune", 60):
        pass
    assert list(backend.list("locks/")) == []
