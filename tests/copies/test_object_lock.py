"""An S3 copy with Object Lock (`object_lock_days`): with the primary host's own configuration and credentials,
deleting or overwriting the copy's files leaves their bytes on the server (a DELETE only adds a delete marker, a
PUT a newer version; deleting a version is refused), on a real SeaweedFS server, which enforces Object Lock."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from kit.cli import run_cli
from kit.config import write_config
from kit.copies import Copies
from kit.seaweed import SeaweedServer
from rtvault.config import load
from rtvault.configured import backend_of

PROTECTED = ("data/", "trees/", "packs/", "index/", "archives/", "snapshots/", "journal/", "rtvault-store.json")


def _config(copies: Copies, seaweed: SeaweedServer, bucket: str, **lock: object) -> Path:
    offsite = {**seaweed.store_settings(bucket, copy_of="primary"), **lock}
    return write_config(copies.config_path, root=copies.root, stores={"primary": copies.primary_path,
                                                                      "offsite": offsite},
                        catalog={"url": f"sqlite:///{copies.config_path.parent / 'catalog.sqlite'}"})


def _versions(client: object, bucket: str) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    pages = client.get_paginator("list_object_versions").paginate(Bucket=bucket)  # type: ignore[attr-defined]
    for page in pages:
        for version in page.get("Versions", []):
            found.setdefault(version["Key"].removeprefix("store/"), []).append(version)
    return found


@pytest.mark.slow
def test_object_lock_keeps_every_byte_the_backup_host_tries_to_delete_or_overwrite(copies: Copies,
                                                                                   seaweed: SeaweedServer) -> None:
    bucket = f"rtvault-lock-{secrets.token_hex(5)}"  # made by `rtvault init`, with Object Lock
    config_path = _config(copies, seaweed, bucket, object_lock_days=1, object_lock_mode="compliance")
    run_cli("init", config=config_path)
    run_cli("replicate", config=config_path)
    run_cli("replicate", config=config_path)  # its writer lock taken again over the last one's delete marker
    client = seaweed.client()
    config = load(config_path)
    backend = backend_of(config, "offsite")
    keys = sorted(k for prefix in ("data/", "trees/", "packs/", "index/", "archives/", "snapshots/", "journal/")
                  for k in backend.list(prefix))
    assert keys and any(k.startswith("snapshots/") for k in keys)
    original = {key: hashlib.sha256(backend.get(key)).hexdigest() for key in keys}
    first = {key: versions[0]["VersionId"] for key, versions in _versions(client, bucket).items()}
    head = client.head_object(Bucket=bucket, Key=f"store/{keys[0]}")  # type: ignore[attr-defined]
    assert head["ObjectLockMode"] == "COMPLIANCE"
    # files rewritten in place are given no retention: nothing piles up that protects nothing
    record = next(iter(backend.list("copies/")))
    assert "ObjectLockMode" not in client.head_object(Bucket=bucket, Key=f"store/{record}")  # type: ignore

    # the primary host, with its configuration and keys, tries to destroy the copy
    for key in keys:
        backend.delete(key)
    for key in keys[:5]:
        client.put_object(Bucket=bucket, Key=f"store/{key}", Body=b"ransom")  # type: ignore[attr-defined]
    refused = 0
    for key in keys:
        try:
            client.delete_object(Bucket=bucket, Key=f"store/{key}", VersionId=first[key])  # type: ignore
        except ClientError as error:
            refused += error.response["Error"]["Code"] == "AccessDenied"
    assert refused == len(keys)
    assert not any(backend.list("snapshots/")), "to rtvault, the copy now looks emptied"

    # every version written by rtvault is still there, byte for byte
    for key in keys:
        body = client.get_object(Bucket=bucket, Key=f"store/{key}", VersionId=first[key])["Body"].read()  # type: ignore
        assert hashlib.sha256(body).hexdigest() == original[key], key


def test_object_lock_on_a_bucket_made_without_it_is_refused_with_what_to_do(copies: Copies,
                                                                            seaweed: SeaweedServer) -> None:
    bucket = seaweed.new_bucket()  # a plain bucket: Object Lock can only be enabled when a bucket is made
    config_path = _config(copies, seaweed, bucket, object_lock_days=30)
    done = run_cli("init", "--json", config=config_path, expect=8)
    assert f"bucket {bucket} does not enforce Object Lock" in done.stderr, done.stderr
    assert "remove object_lock_days" in done.stderr


@pytest.mark.parametrize(("table", "problem"), [
    ({"path": "/srv/vault", "object_lock_days": 3}, "object_lock_days only apply to an S3 store"),
    ({"url": "s3://b/p", "object_lock_days": 3, "object_lock_mode": "strict"}, "must be compliance or governance"),
    ({"url": "s3://b/p", "object_lock_days": -1}, "must be 0 or more"),
    ({"path": "/srv/p", "read_only": True, "copy_of": "primary"}, "read_only and copy_of do not go together"),
])
def test_bad_protection_settings_are_refused(tmp_path: Path, table: dict, problem: str) -> None:
    config = write_config(tmp_path / "rtvault.toml", stores={"primary": tmp_path / "p", "other": table})
    done = run_cli("config", "check", config=config, expect=3)
    assert problem in done.stdout + done.stderr, done.stdout + done.stderr
