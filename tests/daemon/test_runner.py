"""How a job's commands run under the daemon (real child processes, a stand-in `rtvault`): the result of each exit
code, the job's summary and first error, a command refused by another writer's lock waiting its turn, a hung
job stopped at [daemon] job_timeout (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from kit.config import write_config
from kit.daemon import calls, stand_in
from rtvault.config import Config, load
from rtvault.jobs import runner
from rtvault.jobs.runner import Runner


def _config(tmp_path: Path, timeout: str = "1h") -> Config:
    return load(write_config(tmp_path / "rtvault.toml", root=tmp_path / "db",
                             stores={"primary": tmp_path / "primary",
                                     "copy": {"path": tmp_path / "copy", "copy_of": "primary"}},
                             daemon={"job_timeout": timeout, "state_dir": tmp_path / "state"}))


def test_each_exit_code_gives_its_result_and_the_first_error_is_kept(tmp_path: Path) -> None:
    executable = stand_in(tmp_path / "bin", {
        "verify --store primary": {"out": {"objects_verified": 10, "problems": []}},
        "verify --store copy": {"code": 7, "err": "rtvault: error: store copy: 1 corrupt file\n",
                                "out": {"objects_verified": 9, "problems": [{"key": "data/ab/abc", "detail": "bad"}]}},
        "backup": {"code": 8, "err": "rtvault: error: store /mnt/nas is not mounted\n"},
        "catalog sync": {"code": 1, "err": "Traceback (most recent call last):\n  ...\nKeyError: 'x'\n"},
    })
    run = Runner(_config(tmp_path), executable=executable)
    verify = run.run("verify")
    assert [s.result for s in verify.steps] == ["ok", "partial", "ok"] and verify.result == "partial"
    assert verify.steps[-1].command == ["journal", "verify"]  # the journal's chain, after the stores
    assert verify.error == "verify --store copy: rtvault: error: store copy: 1 corrupt file"
    assert verify.warnings() == ["data/ab/abc: bad"]
    assert verify.counts() == {"objects_verified": 19}
    assert verify.summary["steps"][1]["summary"]["objects_verified"] == 9
    backup = run.run("backup")
    assert backup.result == "unavailable" and "not mounted" in backup.error
    assert backup.summary == {"command": "backup"}  # the job's own JSON, as it printed it
    crash = run.run("catalog")
    assert crash.result == "failed" and "KeyError: 'x'" in crash.error
    assert calls(tmp_path / "bin") == ["verify --store primary", "verify --store copy", "journal verify", "backup",
                                       "catalog sync"]


def test_the_commands_of_each_job(tmp_path: Path) -> None:
    executable = stand_in(tmp_path / "bin", {})
    run = Runner(_config(tmp_path), executable=executable)
    for job in ("retention", "replicate", "sweep"):
        assert run.run(job).result == "ok"
    assert calls(tmp_path / "bin") == ["forget --store primary", "prune --store primary", "replicate",
                                       "archive sweep"]


def test_a_store_locked_by_another_writer_is_waited_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "LOCK_RETRY_S", 0.2)
    executable = stand_in(tmp_path / "bin", {"backup": {"codes": [6, 6, 0], "err": "store is locked by backup"}})
    lines: list[str] = []
    outcome = Runner(_config(tmp_path), executable=executable, log=lines.append).run("backup")
    assert outcome.result == "ok" and outcome.error == ""
    assert calls(tmp_path / "bin") == ["backup"] * 3
    assert outcome.steps[0].waited_s > 0 and len([line for line in lines if "locked" in line]) == 2


@pytest.mark.parametrize("deaf", [False, True], ids=["stops-on-sigterm", "needs-sigkill"])
def test_a_job_that_hangs_past_job_timeout_is_stopped_and_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 deaf: bool) -> None:
    monkeypatch.setattr(runner, "KILL_GRACE_S", 0.5)
    executable = stand_in(tmp_path / "bin", {"backup": {"sleep": 60, "ignore_term": deaf}})
    started = time.monotonic()
    outcome = Runner(_config(tmp_path, timeout="1s"), executable=executable).run("backup")
    assert time.monotonic() - started < 10
    assert outcome.result == "failed" and outcome.steps[0].exit_code is None
    assert "stopped after 1s ([daemon] job_timeout)" in outcome.error


def test_halt_ends_the_running_command_at_once(tmp_path: Path) -> None:
    executable = stand_in(tmp_path / "bin", {"backup": {"sleep": 60}})
    run = Runner(_config(tmp_path), executable=executable)
    threading.Timer(0.5, run.stop).start()
    started = time.monotonic()
    outcome = run.run("backup")
    assert time.monotonic() - started < 10
    assert outcome.result == "failed" and "killed by signal SIGTERM (the daemon was told to stop at once)" in \
        outcome.error


def test_a_copy_on_its_own_schedule_is_replicated_by_its_own_job(tmp_path: Path) -> None:
    config = load(write_config(tmp_path / "rtvault.toml", root=tmp_path / "db",
                               stores={"primary": tmp_path / "p", "nas": {"path": tmp_path / "n", "copy_of": "primary"},
                                       "offsite": {"path": tmp_path / "o", "copy_of": "primary"}},
                               schedule={"pairs": {"offsite": {"replicate": "daily 22:00"}}}))
    assert runner.commands(config, "replicate") == [["replicate", "--to", "nas"]]
    assert runner.commands(config, "replicate:offsite") == [["replicate", "--to", "offsite"]]


def test_the_protected_copys_host_pulls_and_writes_nothing_to_the_primary(tmp_path: Path) -> None:
    config = load(write_config(tmp_path / "rtvault.toml",
                               stores={"primary": {"path": tmp_path / "p", "read_only": True},
                                       "vault": {"path": tmp_path / "v", "copy_of": "primary"}},
                               schedule={"pairs": {"vault": {"replicate": "hourly"}}}))
    assert runner.commands(config, "replicate:vault") == [["replicate", "--pull", "--to", "vault"]]
    assert runner.commands(config, "backup") == runner.commands(config, "sweep") == []  # no source of its own
    assert runner.commands(config, "verify") == [["verify", "--store", "vault"], ["journal", "verify"]]
    assert runner.commands(config, "retention") == []  # the primary's host applies its retention
