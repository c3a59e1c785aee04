"""Crash safety: backups and prunes killed with SIGKILL at many random points leave a store that passes
`check --read-data`, and the next run completes."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kit.cli import run_cli
from kit.config import KEEP_LAST, write_config

KILLS = 16  # kill points spread evenly over a backup (one at random in each sixteenth): the whole run is covered
PRUNE_KILLS = 10  # each costs a backup, a forget and two checks besides


def spread(rng: random.Random, low: float, high: float, count: int = KILLS) -> list[float]:
    """`count` delays between low and high, one at random in each of `count` equal slices, in random order."""
    delays = [low + (high - low) * (i + rng.random()) / count for i in range(count)]
    rng.shuffle(delays)
    return delays


def rtvault(config: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, config=config, expect=0 if check else None, timeout=300)


def kill_at(config: Path, delay: float, *args: str) -> int:
    proc = subprocess.Popen([sys.executable, "-m", "rtvault", "--config", str(config), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    return proc.wait()


def change_a_big_file(db: Path, rng: random.Random) -> None:
    """New bytes for the backup to store: a 6 MB file rewritten in one patient's directory."""
    patients = sorted(db.glob("Institution_1/Mount_0/Patient_*"))
    target = rng.choice(patients) / "ImageSet_9.img"
    target.write_bytes(rng.randbytes(6 << 20))


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    db = tmp_path / "db"
    run_cli("demo", "generate", "--out", db, "--patients", "4", "--seed", "11", "--image-mb", "0.5")
    config = write_config(tmp_path / "rtvault.toml", root=db, stores={"primary": tmp_path / "store"},
                          retention=KEEP_LAST)
    rtvault(config, "init")
    return db, config


def healthy(config: Path) -> None:
    proc = rtvault(config, "check", "--read-data", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_backup_killed_anywhere_leaves_a_healthy_store(setup):
    db, config = setup
    rng = random.Random(20261124)
    rtvault(config, "backup")
    change_a_big_file(db, rng)
    started = time.monotonic()
    rtvault(config, "backup")
    run = time.monotonic() - started  # what each killed run would take: start-up, then one changed file
    killed = 0
    for delay in spread(rng, 0.05, run):
        change_a_big_file(db, rng)
        if kill_at(config, delay, "backup") == -signal.SIGKILL:
            killed += 1
        healthy(config)
    assert killed >= KILLS // 2, "most runs should have been killed mid-way, not finished"
    rtvault(config, "backup")  # completes, taking over the dead runs' lock
    healthy(config)
    restored = db.parent / "restored"
    rtvault(config, "restore", "--all", "--to", str(restored))
    source = {p.relative_to(db): p.read_bytes() for p in db.rglob("ImageSet_9.img")}
    assert source and all((restored / rel).read_bytes() == data for rel, data in source.items())


def test_prune_killed_anywhere_leaves_a_healthy_store(setup):
    db, config = setup
    rng = random.Random(7)
    change_a_big_file(db, rng)
    rtvault(config, "backup")
    change_a_big_file(db, rng)
    rtvault(config, "backup")
    rtvault(config, "forget")
    started = time.monotonic()
    rtvault(config, "prune")
    full = time.monotonic() - started
    killed = 0
    for delay in spread(rng, 0.05, full, PRUNE_KILLS):
        change_a_big_file(db, rng)
        rtvault(config, "backup")
        rtvault(config, "forget")
        if kill_at(config, delay, "prune") == -signal.SIGKILL:
            killed += 1
        healthy(config)
        rtvault(config, "prune")
        healthy(config)
    assert killed >= PRUNE_KILLS // 3
    staging = list((db.parent / "store" / "tmp").iterdir())
    assert staging == [], "a completed prune cleans what killed runs staged"
