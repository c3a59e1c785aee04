"""Client-side encryption: every Backend method through `EncryptedBackend` on a directory and on a real S3
server, damage and substitution detected, the passphrase file and key file handled as documented, and the
recovery script of docs/encryption.md decrypting a store file with nothing but `cryptography`. An encrypted store
in the configuration, through the CLI: test_crypto_cli.py."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import test_backend_conformance as conformance

from kit.crypto import PASSPHRASE
from kit.seaweed import SeaweedServer
from rtvault.errors import StoreError
from rtvault.store import Store, crypto, keyfile
from rtvault.store.backend import Backend, DirectoryBackend
from rtvault.store.objects import data_key, read_object, store_small, store_stream

FAST = {"n": 2**10}  # scrypt parameters for tests only: the default (2**17) takes 0.4 s per derivation
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bucket(seaweed: SeaweedServer) -> str:
    return seaweed.new_bucket()


@pytest.fixture(params=["directory", "s3"])
def make_inner(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Backend]:
    """Makes empty plain backends of the kind under test."""
    return conformance.backend_factory(request, tmp_path, "crypto")


@pytest.fixture
def make_backend(make_inner: Callable[[], Backend]) -> Callable[[], Backend]:
    """Encrypted backends: the conformance suite below runs on them unchanged."""
    return lambda: crypto.unlock(make_inner(), PASSPHRASE, create=True, kdf=FAST)


@pytest.fixture
def backend(make_backend: Callable[[], Backend]) -> Backend:
    return make_backend()


# Every test of the backend conformance suite, on encrypted directory and S3 backends.
for _name in dir(conformance):
    if _name.startswith("test_"):
        globals()[_name] = getattr(conformance, _name)


def directory_store(tmp_path: Path) -> tuple[DirectoryBackend, crypto.EncryptedBackend]:
    inner = DirectoryBackend(tmp_path / "store")
    inner.root.mkdir(parents=True)
    return inner, crypto.unlock(inner, PASSPHRASE, create=True, kdf=FAST)


def test_the_bytes_stored_are_ciphertext_and_the_plaintext_comes_back(tmp_path: Path) -> None:
    inner, backend = directory_store(tmp_path)
    text = b"Patient name: ZZTESTPATIENT^ALICE " * 1000
    digest, _ = store_small(backend, text, False)
    big = os.urandom(3 << 20) + text
    big_digest, size, _ = store_stream(backend, io.BytesIO(big), False)
    assert b"".join(read_object(backend, digest)) == text
    assert b"".join(read_object(backend, big_digest)) == big and size == len(big)
    stored = inner.get(data_key(digest))
    assert stored.startswith(crypto.MAGIC) and b"ZZTESTPATIENT" not in stored
    assert crypto.check_sealed(inner, data_key(big_digest)) == inner.size(data_key(big_digest))


def test_the_key_file_records_the_kdf_and_no_secret(tmp_path: Path) -> None:
    inner = DirectoryBackend(tmp_path)
    crypto.unlock(inner, PASSPHRASE, create=True)
    record = json.loads(inner.get(keyfile.KEY_FILES[0]))
    assert record["kdf"]["name"] == "scrypt" and (record["kdf"]["n"], record["kdf"]["r"]) == (2**17, 8)
    assert len(record["wrapped_key"]) == 64 and PASSPHRASE.decode() not in json.dumps(record)


def test_the_second_key_file_opens_a_store_whose_first_is_lost(tmp_path: Path) -> None:
    inner, backend = directory_store(tmp_path)
    backend.put("snapshots/a.json", b"{}")
    inner.path_of(keyfile.KEY_FILES[0]).write_bytes(b"garbled")
    assert crypto.unlock(inner, PASSPHRASE).get("snapshots/a.json") == b"{}"
    inner.delete(keyfile.KEY_FILES[0])
    assert crypto.unlock(inner, PASSPHRASE).get("snapshots/a.json") == b"{}"


def test_a_wrong_passphrase_is_refused(tmp_path: Path) -> None:
    inner, _ = directory_store(tmp_path)
    with pytest.raises(StoreError, match="wrong passphrase"):
        crypto.unlock(inner, b"not the passphrase")


def test_a_store_without_a_key_is_not_opened_as_encrypted(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not an encrypted store"):
        crypto.unlock(DirectoryBackend(tmp_path), PASSPHRASE)


def test_changing_the_passphrase_keeps_the_data_readable(tmp_path: Path) -> None:
    inner, backend = directory_store(tmp_path)
    backend.put("snapshots/a.json", b'{"id": "a"}')
    before = inner.get("snapshots/a.json")
    keyfile.change_passphrase(inner, PASSPHRASE, b"a new passphrase", kdf=FAST)
    assert crypto.unlock(inner, b"a new passphrase").get("snapshots/a.json") == b'{"id": "a"}'
    assert inner.get("snapshots/a.json") == before  # only the key file changed
    with pytest.raises(StoreError, match="wrong passphrase"):
        crypto.unlock(inner, PASSPHRASE)


def test_another_stores_key_cannot_read_a_file(tmp_path: Path) -> None:
    inner, backend = directory_store(tmp_path / "a")
    backend.put("snapshots/a.json", b"{}")
    _, other = directory_store(tmp_path / "b")
    other.inner.put("snapshots/a.json", inner.get("snapshots/a.json"))  # type: ignore[attr-defined]
    with pytest.raises(StoreError, match=r"snapshots/a\.json was encrypted with another key"):
        other.get("snapshots/a.json")


@pytest.mark.parametrize("damage", ["flip", "truncate", "cut_chunk", "swap", "reorder"])
def test_damaged_or_substituted_files_fail_naming_the_key(tmp_path: Path, damage: str) -> None:
    inner, backend = directory_store(tmp_path)
    chunk = 1 << crypto.CHUNK_SHIFT
    backend.put("archives/tars/aa/one", b"A" * (2 * chunk + 10))
    backend.put("archives/tars/aa/two", b"B" * (2 * chunk + 10))
    path, sealed = inner.path_of("archives/tars/aa/one"), bytearray(inner.get("archives/tars/aa/one"))
    step = chunk + crypto.TAG
    if damage == "flip":
        sealed[crypto.HEADER + 100] ^= 1
    elif damage == "truncate":
        del sealed[-50:]
    elif damage == "cut_chunk":  # a whole final chunk gone: the chunk before was not sealed as the final one
        sealed = sealed[: crypto.HEADER + 2 * step] + sealed[-crypto.TRAILER :]
    elif damage == "swap":
        sealed = bytearray(inner.get("archives/tars/aa/two"))
    else:
        body = sealed[crypto.HEADER : crypto.HEADER + 2 * step]
        sealed[crypto.HEADER : crypto.HEADER + 2 * step] = body[step:] + body[:step]
    path.write_bytes(bytes(sealed))
    with pytest.raises(StoreError, match="archives/tars/aa/one"), backend.open("archives/tars/aa/one") as reader:
        reader.read()
    with pytest.raises(StoreError, match="archives/tars/aa/one"):
        backend.get("archives/tars/aa/one")
    if damage != "swap":  # a whole other file of the store is sound ciphertext: only the key tells
        with pytest.raises(StoreError, match="archives/tars/aa/one is damaged"):
            crypto.check_sealed(inner, "archives/tars/aa/one")


def test_a_passphrase_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "passphrase"
    secret.write_bytes(PASSPHRASE + b"\n")
    secret.chmod(0o640)
    with pytest.raises(StoreError, match="readable by group or others: run chmod 600"):
        keyfile.read_passphrase(secret)
    secret.chmod(0o600)
    assert keyfile.read_passphrase(secret) == PASSPHRASE


def recovery_script() -> str:
    text = (ROOT / "docs" / "encryption.md").read_text(encoding="utf-8")
    return re.search(r"```python\n(# decrypt\.py.*?)```", text, re.S).group(1)  # type: ignore[union-attr]


def test_the_documented_recovery_script_decrypts_a_store_file(tmp_path: Path) -> None:
    inner, backend = directory_store(tmp_path)
    content = os.urandom((1 << crypto.CHUNK_SHIFT) * 2)  # an exact number of chunks: the hardest case
    backend.put("archives/tars/ab/abc", content)
    backend.put("snapshots/empty.json", b"")
    script = tmp_path / "decrypt.py"
    script.write_text(recovery_script(), encoding="utf-8")
    assert len(recovery_script().splitlines()) <= 25
    for key, expected in (("archives/tars/ab/abc", content), ("snapshots/empty.json", b"")):
        out = tmp_path / "out"
        subprocess.run([sys.executable, str(script), str(inner.root), key, str(out)], input=PASSPHRASE + b"\n",
                       check=True, capture_output=True)
        assert out.read_bytes() == expected


def test_a_store_initialises_and_opens_encrypted(tmp_path: Path) -> None:
    inner, backend = directory_store(tmp_path)
    store, created = Store.init_backend(backend, empty=True)
    assert created and Store.open_backend(backend).info["id"] == store.info["id"]
    assert json.loads(inner.get("rtvault-store.json"))["id"] == store.info["id"]  # says what it is, unkeyed


def test_the_key_files_are_not_listed_as_store_files(tmp_path: Path) -> None:
    inner, backend = directory_store(tmp_path)
    backend.put("snapshots/a.json", b"{}")
    assert sorted(backend.list("")) == ["snapshots/a.json"] and set(keyfile.KEY_FILES) <= set(inner.list(""))
