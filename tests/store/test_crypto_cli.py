"""Client-side encryption through the configuration and the CLI: an encrypted store backed up, checked and
restored byte-identical with no patient name readable in its bytes, encryption chosen when a store is created (on a
directory and on S3), the passphrase changed, the key files verified, repaired and owner-only whatever the umask."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kit import store as storekit
from kit.cli import rtvault
from kit.config import write_config
from kit.crypto import PASSPHRASE
from kit.seaweed import SeaweedServer
from rtvault.errors import StoreError
from rtvault.store import crypto, keyfile
from rtvault.store.backend import DirectoryBackend
from rtvault.store.objects import read_object, store_small

# --- an encrypted store in the configuration, through the CLI -------------------------------------------------


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def encrypted_vault(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated database backed up twice (a patient deleted in between: an archive) to an encrypted store."""
    from rtvault.demo import generate_database

    base = tmp_path_factory.mktemp("encrypted")
    generate_database(base / "db", patients=4, seed=7, image_mb=0.2)
    secret = base / "passphrase"
    secret.write_bytes(PASSPHRASE + b"\n")
    secret.chmod(0o600)
    config = write_config(base / "rtvault.toml", root=base / "db",
                          stores={"offsite": {"path": base / "store", "encrypt": True, "passphrase_file": secret}})
    rtvault(config, "init")
    rtvault(config, "backup")
    rtvault(config, "demo", "evolve", "--db", str(base / "db"), "--day", "1")
    rtvault(config, "backup")
    return config


def test_an_encrypted_store_backs_up_checks_and_restores_byte_identical(encrypted_vault: Path) -> None:
    base = encrypted_vault.parent
    assert (base / "store" / "keys" / "master.json").exists()
    rtvault(encrypted_vault, "check", "--read-data")
    [status] = json.loads(rtvault(encrypted_vault, "status", "--json", expect=7).stdout)["stores"]  # one copy
    assert status["objects"] > 0 and status["free_bytes"] > 0  # the directory under the sealed files
    rtvault(encrypted_vault, "restore", "--all", "--to", str(base / "restored"))
    assert tree_bytes(base / "restored") == {k: v for k, v in tree_bytes(base / "db").items()
                                             if not k.rsplit("/", 1)[-1].startswith(".auto.plan")
                                             and not k.endswith((".ErrorLog", ".Transcript", "~"))}


def test_no_patient_name_is_readable_in_the_stored_bytes(encrypted_vault: Path) -> None:
    base = encrypted_vault.parent
    store = crypto.unlock(DirectoryBackend(base / "store"), PASSPHRASE)
    manifests = [json.loads(store.get(k)) for k in store.list("snapshots/")]
    names = {p["last_name"].encode() for m in manifests for p in m["patients"] if len(p["last_name"]) > 3}
    assert names and any(store.list("archives/tars/"))
    for path in (base / "store").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not [name for name in names if name in data or name.upper() in data], path


def test_an_encrypted_store_needs_its_configuration(encrypted_vault: Path) -> None:
    base = encrypted_vault.parent
    plain = base / "plain.toml"
    plain.write_text(f'[stores.offsite]\npath = "{base / "store"}"\n', encoding="utf-8")
    assert "encrypt" in rtvault(plain, "check", expect=3).stderr
    wrong = base / "wrong-passphrase"
    wrong.write_bytes(b"not it\n")
    wrong.chmod(0o600)
    other = base / "other.toml"
    other.write_text(encrypted_vault.read_text(encoding="utf-8").replace(str(base / "passphrase"), str(wrong)),
                     encoding="utf-8")
    assert "wrong passphrase" in rtvault(other, "check", expect=8).stderr
    wrong.chmod(0o644)
    assert "chmod 600" in rtvault(other, "check", expect=3).stderr


def secret_file(directory: Path) -> Path:
    secret = directory / "passphrase"
    secret.write_bytes(PASSPHRASE + b"\n")
    secret.chmod(0o600)
    return secret


def test_an_encrypted_s3_store_from_the_configuration(tmp_path: Path, seaweed: SeaweedServer) -> None:
    from rtvault.config import load
    from rtvault.configured import init_stores, open_store

    bucket = seaweed.new_bucket()
    offsite = {**seaweed.store_settings(bucket), "encrypt": True, "passphrase_file": secret_file(tmp_path)}
    config = write_config(tmp_path / "rtvault.toml", stores={"offsite": offsite})
    assert init_stores(load(config))[0]["created"]
    store = open_store(load(config), "offsite")
    digest, _ = store_small(store.backend, b"ZZTESTPATIENT^BOB", False)
    store.backend.barrier()  # durable, as a backup makes it before its manifest: another reader sees it
    assert b"".join(read_object(open_store(load(config), None).backend, digest)) == b"ZZTESTPATIENT^BOB"
    client = seaweed.client()
    listed = client.list_objects_v2(Bucket=bucket, Prefix="store/")["Contents"]  # type: ignore[attr-defined]
    stored = {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed  # type: ignore[attr-defined]
              if o["Key"].startswith(("store/data/", "store/trees/", "store/packs/", "store/index/"))}
    assert any(k.startswith("store/packs/") for k in stored), "the object is in a pack"
    assert all(v.startswith(crypto.MAGIC) and b"ZZTESTPATIENT" not in v for v in stored.values())
    assert not init_stores(load(config))[0]["created"]  # idempotent: the key is kept


def test_encryption_is_chosen_when_a_store_is_created(tmp_path: Path) -> None:
    from rtvault.config import load
    from rtvault.configured import init_stores, open_store
    from rtvault.errors import ConfigError

    plain = tmp_path / "plain.toml"
    plain.write_text(f'[stores.nas]\npath = "{tmp_path / "store"}"\n', encoding="utf-8")
    init_stores(load(plain))
    store = open_store(load(plain), None)
    store_small(store.backend, b"content", False)
    store.backend.barrier()
    encrypted = tmp_path / "encrypted.toml"
    encrypted.write_text(plain.read_text() + f'encrypt = true\npassphrase_file = "{secret_file(tmp_path)}"\n',
                         encoding="utf-8")
    with pytest.raises(ConfigError, match="is not an encrypted store: remove encrypt = true"):
        open_store(load(encrypted), None)
    with pytest.raises(StoreError, match="already holds an unencrypted store"):
        init_stores(load(encrypted))
    assert not keyfile.is_encrypted(DirectoryBackend(tmp_path / "store"))


def test_the_passphrase_changes_through_the_cli(tmp_path: Path) -> None:
    config = tmp_path / "rtvault.toml"
    current = secret_file(tmp_path)
    config.write_text(f'[stores.offsite]\npath = "{tmp_path / "store"}"\nencrypt = true\n'
                      f'passphrase_file = "{current}"\n', encoding="utf-8")
    rtvault(config, "init")
    new = tmp_path / "new-passphrase"
    new.write_bytes(b"another passphrase, longer\n")
    new.chmod(0o644)
    assert "chmod 600" in rtvault(config, "passphrase", "--new", str(new), expect=4).stderr
    new.chmod(0o600)
    assert json.loads(rtvault(config, "passphrase", "--new", str(new), "--json").stdout)["store"] == "offsite"
    assert "wrong passphrase" in rtvault(config, "check", expect=8).stderr
    new.replace(current)
    rtvault(config, "check")


def test_an_encrypted_store_is_checked_without_its_key(encrypted_vault: Path, tmp_path: Path) -> None:
    base = encrypted_vault.parent
    shutil.copytree(base / "store", tmp_path / "store")
    wrong = tmp_path / "not-the-passphrase"
    wrong.write_bytes(b"this is not the passphrase\n")
    wrong.chmod(0o600)
    config = tmp_path / "rtvault.toml"
    config.write_text(f'[stores.offsite]\npath = "{tmp_path / "store"}"\nencrypt = true\npassphrase_file = "{wrong}"\n',
                      encoding="utf-8")
    assert "wrong passphrase" in rtvault(config, "check", expect=8).stderr  # no key: nothing can be decrypted
    report = json.loads(rtvault(config, "verify", "--store", "offsite", "--without-key", "--json").stdout)
    stored = [p for p in (tmp_path / "store").rglob("*") if p.is_file()
              and p.relative_to(tmp_path / "store").parts[0] in (*storekit.CONTENT, "snapshots", "archives", "journal")]
    assert report["healthy"] and report["files"] == len(stored)

    victim = max(storekit.stored_files(tmp_path / "store"), key=lambda p: p.stat().st_size)  # a pack, in format 2
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x40  # bit rot in the middle of the ciphertext
    victim.write_bytes(bytes(data))
    report = json.loads(rtvault(config, "verify", "--store", "offsite", "--without-key", "--json", expect=7).stdout)
    assert [p["file"] for p in report["problems"]] == [victim.relative_to(tmp_path / "store").as_posix()]


def test_verify_checks_the_key_files_and_repair_mends_one_from_the_other(encrypted_vault: Path,
                                                                          tmp_path: Path) -> None:
    base = encrypted_vault.parent
    shutil.copytree(base / "store", tmp_path / "store")
    config = tmp_path / "rtvault.toml"
    config.write_text(encrypted_vault.read_text(encoding="utf-8").replace(str(base / "store"),
                                                                          str(tmp_path / "store")), encoding="utf-8")
    keys = tmp_path / "store" / "keys"
    good = (keys / "master.json").read_bytes()

    def problems() -> list[tuple[str, str]]:
        report = json.loads(rtvault(config, "verify", "--all", "--json", expect=7).stdout)["stores"][0]
        return [(p["key"], p["kind"]) for p in report["problems"]]

    (keys / "master-copy.json").unlink()  # the second copy lost: the store still opens, verify says so
    assert problems() == [("keys/master-copy.json", "missing")]
    rtvault(config, "repair")
    assert (keys / "master-copy.json").read_bytes() == good
    rtvault(config, "verify", "--all")

    record = json.loads(good)
    record["wrapped_key"] = record["wrapped_key"][::-1]  # the first copy damaged: only the second opens
    (keys / "master.json").write_text(json.dumps(record), encoding="utf-8")
    assert problems() == [("keys/master.json", "corrupt")]
    rtvault(config, "repair")
    assert (keys / "master.json").read_bytes() == good
    rtvault(config, "verify", "--all")
    rtvault(config, "check", "--read-data")


def modes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mode & 0o777 for p in [root, *sorted(root.rglob("*"))]}


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_the_key_files_are_owner_only_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    """keys/ is 0700 and its files 0600 when made by init, rewritten by passphrase and mended by repair; a
    store made by an older version (0755, 0644) is tightened when its key files are rewritten."""

    def run(*args: str, expect: int = 0) -> None:
        rtvault(config, *args, expect=expect, umask=umask)

    config, keys = tmp_path / "rtvault.toml", tmp_path / "store" / "keys"
    config.write_text(f'[stores.offsite]\npath = "{tmp_path / "store"}"\nencrypt = true\n'
                      f'passphrase_file = "{secret_file(tmp_path)}"\n', encoding="utf-8")
    owner_only = {".": 0o700, "master.json": 0o600, "master-copy.json": 0o600}
    run("init")
    assert modes(keys) == owner_only
    keys.chmod(0o755)
    for name in keyfile.KEY_FILES:
        (tmp_path / "store" / name).chmod(0o644)
    new = tmp_path / "new-passphrase"
    new.write_bytes(b"another passphrase, longer\n")
    new.chmod(0o600)
    run("passphrase", "--new", str(new))
    assert modes(keys) == owner_only
    new.replace(tmp_path / "passphrase")
    (keys / "master-copy.json").unlink()
    run("verify", "--all", expect=7)
    run("repair")
    assert modes(keys) == owner_only
    assert not list((tmp_path / "store" / "tmp").iterdir())  # no staged copy of a key file left behind
