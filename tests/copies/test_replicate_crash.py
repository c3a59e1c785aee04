"""Crash safety: `rtvault replicate` killed with SIGKILL at many random points leaves a target that passes
`check`, and the next run completes it into a store that passes `check --read-data`."""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from kit.copies import Copies
from rtvault.copies.replicate import replicate
from rtvault.jobs.maintenance import check_store
from rtvault.store import Store

KILLS = 20


def start(copies: Copies) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "rtvault", "--config", str(copies.config_path), "replicate"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def fresh_target(copies: Copies) -> None:
    shutil.rmtree(copies.secondary_path)
    Store.init(copies.secondary_path)


@pytest.mark.slow
def test_replicate_killed_anywhere_leaves_a_valid_target_that_the_next_run_completes(copies: Copies):
    rng = random.Random(20261125)
    durations = []
    for _ in range(2):  # start-up, then the whole copy into an empty target; the shorter (caches warm) counts:
        fresh_target(copies)  # a packed copy takes a fraction of a second, so a slow first run would leave most
        started = time.monotonic()  # kills landing after the end
        assert start(copies).wait() == 0
        durations.append(time.monotonic() - started)
    run = min(durations)
    killed = 0
    for _ in range(KILLS):
        fresh_target(copies)
        proc = start(copies)
        time.sleep(rng.uniform(0.1, run * 0.9))
        proc.send_signal(signal.SIGKILL)
        killed += proc.wait() == -signal.SIGKILL
        report = check_store(copies.secondary)
        assert report.healthy, report.problems
        summary = replicate(copies.primary, copies.secondary)  # takes over the dead run's lock
        assert summary.complete, summary.problems
        report = check_store(copies.secondary, read_data=True)
        assert report.healthy and report.snapshots == 2, report.problems
    assert killed >= KILLS // 2, "most runs should have been killed mid-way, not finished"
