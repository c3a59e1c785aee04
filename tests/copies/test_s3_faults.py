"""Fault tests on an S3 store (a real SeaweedFS server): random objects, trees and the archive file of the offsite
copy corrupted (rewritten with altered bytes through boto3) or deleted; `verify --all` finds every one, `repair`
fixes every one from the directory primary, and everything restores from the S3 store. Then the S3 store as the
only store left, and `rtvault replicate` to S3 killed with SIGKILL at random points."""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from kit import store as storekit
from kit.config import write_config
from kit.copies import Copies, restore_everything
from kit.seaweed import SeaweedServer
from rtvault.config import load
from rtvault.configured import init_store, open_store
from rtvault.copies.replicate import replicate
from rtvault.copies.verify import store_keys
from rtvault.jobs.maintenance import check_store
from rtvault.store import Store
from rtvault.store.objects import data_key

KILLS = 20
KILLS_PER_TARGET = 4


@dataclass
class Offsite:
    """The copies fixture's primary (a directory) and an S3 store `offsite` configured as its copy."""

    copies: Copies
    server: SeaweedServer
    bucket: str
    prefix: str

    @property
    def config(self) -> Path:
        return self.copies.config_path

    @property
    def store(self) -> Store:
        return open_store(load(self.config), "offsite")

    def configure(self, prefix: str) -> None:
        """The configuration with the S3 store under `prefix` of the bucket (a fresh prefix is a fresh store)."""
        self.prefix = prefix
        c = self.copies
        offsite = self.server.store_settings(self.bucket, prefix, retry_seconds=2, copy_of="primary")
        write_config(c.config_path, root=c.root, stores={"primary": c.primary_path, "offsite": offsite},
                     catalog={"url": f"sqlite:///{c.config_path.parent / 'catalog.sqlite'}"})

    def object_key(self, key: str) -> str:
        return f"{self.prefix}/{key}"


@pytest.fixture
def offsite(copies: Copies, seaweed: SeaweedServer) -> Offsite:
    made = Offsite(copies, seaweed, seaweed.new_bucket(), "")
    made.configure("rtvault")
    copies.cli("init")
    return made


@pytest.fixture
def replicated_offsite(offsite: Offsite) -> Offsite:
    pair = offsite.copies.cli_json("replicate")["pairs"]
    assert [(p["to"], p["complete"]) for p in pair] == [("offsite", True)]
    return offsite


def restore_everything_cli(offsite: Offsite, out: Path) -> dict[str, bytes]:
    """The same through `rtvault restore --store offsite`: each snapshot whole, each archived patient."""
    cli = offsite.copies.cli
    for snapshot in offsite.copies.cli_json("snapshots", "--store", "offsite")["snapshots"]:
        cli("restore", "--all", "--store", "offsite", "--snapshot", snapshot["id"], "--to", str(out / snapshot["id"]))
    for archive in offsite.copies.cli_json("archive", "list", "--store", "offsite")["archives"]:
        for patient in archive["patients"]:
            cli("restore", "--patient", patient["path"], "--from-archive", archive["id"], "--store", "offsite",
                "--to", str(out / archive["id"]))
            (out / archive["id"] / "Institution").unlink()
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def damage(offsite: Offsite, rng: random.Random) -> set[tuple[str, str]]:
    """Corrupt (altered bytes written back) or delete random files of the S3 store; returns (key, kind)."""
    store, client = offsite.store, offsite.server.client()
    keys = store_keys(store)
    trees = rng.sample(sorted(k for k in keys if k.startswith("trees/")), 3)
    intact = [t for t in keys if t.startswith("trees/") and t not in trees]
    # a deleted object is found through a tree that names it: take them among the objects of intact trees
    named = sorted({data_key(f.hash) for t in intact
                    for f in store.get_tree(t.rsplit("/", 1)[1]).files})
    objects = rng.sample(named, 10)
    tar = next(k for k in sorted(keys) if k.startswith("archives/tars/"))
    corrupt, deleted = [*objects[:5], *trees[:2], tar], [*objects[5:], trees[2]]
    for key in corrupt:  # bits flipped in the key's bytes: its own S3 object, or its slice of a pack
        where, offset, length = storekit.locate(store.base, key)
        body = bytearray(client.get_object(Bucket=offsite.bucket, Key=offsite.object_key(where))["Body"].read())
        for _ in range(3):
            body[offset + rng.randrange(length)] ^= 1 << rng.randrange(8)
        client.put_object(Bucket=offsite.bucket, Key=offsite.object_key(where), Body=bytes(body))
    for key in deleted:  # as the store deletes a key: a packed one is dropped from the index
        store.backend.delete(key)
    store.backend.barrier()
    return {(k, "corrupt") for k in corrupt} | {(k, "missing") for k in deleted}


def test_verify_finds_every_damage_on_s3_and_repair_fixes_it_from_the_primary(
        replicated_offsite: Offsite, tmp_path: Path) -> None:
    offsite, copies = replicated_offsite, replicated_offsite.copies
    before = restore_everything(copies.primary, tmp_path / "before")
    damaged = damage(offsite, random.Random(1))

    found = copies.cli_json("verify", "--store", "offsite", "--all", expect=7)["stores"][0]
    assert {(p["key"], p["kind"]) for p in found["problems"]} == damaged
    assert copies.cli_json("check", "--store", "offsite", "--read-data", expect=7)["healthy"] is False

    healed = copies.cli_json("repair", "--store", "offsite")
    fixed = healed["stores"][0]
    assert {(r["key"], r["kind"]) for r in fixed["repaired"]} == damaged and fixed["unrepairable"] == []
    assert {r["from"] for r in fixed["repaired"]} == {"primary"} and healed["healthy"]
    assert copies.cli_json("verify", "--store", "offsite", "--all")["healthy"] is True
    assert copies.cli_json("check", "--store", "offsite", "--read-data")["healthy"] is True
    assert restore_everything(offsite.store, tmp_path / "after") == before


def test_the_s3_store_alone_restores_every_patient(replicated_offsite: Offsite, tmp_path: Path) -> None:
    offsite, copies = replicated_offsite, replicated_offsite.copies
    before = restore_everything(copies.primary, tmp_path / "before")
    shutil.rmtree(copies.primary_path)  # the NAS is gone: only the S3 copy is left
    shutil.rmtree(copies.secondary_path)
    assert copies.cli_json("check", "--store", "offsite", "--read-data")["healthy"] is True
    assert restore_everything_cli(offsite, tmp_path / "after") == before


def start(offsite: Offsite) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "rtvault", "--config", str(offsite.config), "replicate"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_at(offsite: Offsite, delay: float) -> bool:
    """A replicate run killed after `delay` seconds; True when it was killed before it finished."""
    proc = start(offsite)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    return proc.wait() == -signal.SIGKILL


@pytest.mark.slow
def test_replicate_to_s3_killed_anywhere_leaves_a_valid_target_that_the_next_run_completes(
        offsite: Offsite) -> None:
    """Up to four kills per fresh target (all but the first in a resumed run), each followed by `check`; then a
    run completes the target and it passes `check --read-data`. Until 20 runs were killed mid-way."""
    rng = random.Random(20261126)
    started = time.monotonic()
    assert start(offsite).wait() == 0
    run = time.monotonic() - started  # start-up, then the whole copy into an empty store
    killed = attempts = rounds = 0
    while killed < KILLS:
        offsite.configure(f"crash-{rounds}")
        init_store(load(offsite.config), "offsite")
        rounds += 1
        for _ in range(KILLS_PER_TARGET):
            attempts += 1
            if not kill_at(offsite, rng.uniform(0.1, run)):
                break  # that run finished: the target is complete
            killed += 1
            report = check_store(offsite.store)
            assert report.healthy, report.problems
        summary = replicate(offsite.copies.primary, offsite.store)  # takes over the dead run's lock
        assert summary.complete, summary.problems
        report = check_store(offsite.store, read_data=True)
        assert report.healthy and report.snapshots == 2, report.problems
        assert attempts < 3 * KILLS, f"only {killed} of {attempts} runs were killed mid-way"
