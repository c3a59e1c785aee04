"""The store's writer lock (`locks/writer.json`) is a lease: a live writer blocks other writers (exit 6), a
dead or expired one is taken over with a warning, readers never wait, and two backups never interleave."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import rtvault.jobs.backup as backup_module
from kit.cli import rtvault
from kit.config import write_config
from rtvault.config import load
from rtvault.demo import generate_database
from rtvault.errors import ExitCode, LockBusy, Problem
from rtvault.jobs.backup import run_backup
from rtvault.jobs.source import list_source
from rtvault.store import Store
from rtvault.store.locks import LOCK_KEY, WriterLock


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated database that the tests only read."""
    root = tmp_path_factory.mktemp("locks") / "db"
    generate_database(root, patients=4, seed=3, image_mb=0.2)
    return root


class Setup:
    def __init__(self, root: Path, directory: Path) -> None:
        self.root = root
        self.store_path = directory / "store"
        self.config_path = directory / "rtvault.toml"
        write_config(self.config_path, root=root, stores={"primary": self.store_path})
        self.store, _ = Store.init(self.store_path)
        self.lock_file = self.store_path / LOCK_KEY

    def backup(self, **options: object):
        return run_backup(load(self.config_path), self.store, **options)  # type: ignore[arg-type]

    def cli(self, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
        return rtvault(self.config_path, *args, expect=expect)

    def snapshots(self) -> list[str]:
        return sorted(p.name for p in (self.store_path / "snapshots").glob("*.json"))

    def hold(self, *, pid: int | None = None, host: str | None = None, expires_in: float = 3600,
             operation: str = "prune") -> bytes:
        """Write the lock file as another writer would."""
        now = time.time()
        record = json.dumps({"operation": operation, "host": host or socket.gethostname(),
                             "pid": os.getpid() if pid is None else pid, "token": "someone-else",
                             "acquired": now - 10, "expires": now + expires_in}).encode()
        self.lock_file.parent.mkdir(exist_ok=True)
        self.lock_file.write_bytes(record)
        return record


@pytest.fixture
def setup(database: Path, tmp_path: Path) -> Setup:
    return Setup(database, tmp_path)


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


# --- the lock object --------------------------------------------------------------------------------------

def test_the_lock_names_its_holder_and_goes_away_on_release(setup: Setup) -> None:
    with WriterLock(setup.store.backend, "backup", 60) as lock:
        record = json.loads(setup.lock_file.read_bytes())
        assert (record["operation"], record["pid"], record["host"]) == ("backup", os.getpid(), socket.gethostname())
        assert time.time() < record["expires"] <= time.time() + 60
        assert lock.held()
    assert not setup.lock_file.exists()


def test_a_live_holder_on_this_host_blocks(setup: Setup) -> None:
    record = setup.hold()
    with pytest.raises(LockBusy) as caught:
        WriterLock(setup.store.backend, "backup", 60).acquire()
    message = str(caught.value)
    assert str(os.getpid()) in message and socket.gethostname() in message and "prune" in message
    assert setup.lock_file.read_bytes() == record


def test_a_live_lease_from_another_host_blocks(setup: Setup) -> None:
    """The process of another host cannot be checked: only its lease's end frees the lock."""
    setup.hold(pid=dead_pid(), host="pinnacle-nas-2")
    with pytest.raises(LockBusy, match="pinnacle-nas-2"):
        WriterLock(setup.store.backend, "backup", 60).acquire()


def test_a_lock_whose_process_is_gone_is_taken_over_with_a_warning(setup: Setup) -> None:
    pid = dead_pid()
    setup.hold(pid=pid)
    warnings: list[Problem] = []
    with WriterLock(setup.store.backend, "backup", 60, warnings.append) as lock:
        assert lock.held()
        assert json.loads(setup.lock_file.read_bytes())["pid"] == os.getpid()
    assert len(warnings) == 1 and str(pid) in warnings[0].message and "gone" in warnings[0].message


def test_an_expired_lease_from_another_host_is_taken_over(setup: Setup) -> None:
    setup.hold(pid=1, host="old-backup-server", expires_in=-60)
    warnings: list[Problem] = []
    with WriterLock(setup.store.backend, "backup", 60, warnings.append):
        pass
    assert len(warnings) == 1
    assert "old-backup-server" in warnings[0].message and "expired" in warnings[0].message


def test_the_lease_is_renewed_while_the_lock_is_held(setup: Setup) -> None:
    with WriterLock(setup.store.backend, "backup", 0.6):
        first = json.loads(setup.lock_file.read_bytes())["expires"]
        time.sleep(1.0)  # well past the first lease
        renewed = json.loads(setup.lock_file.read_bytes())["expires"]
        assert renewed > first and renewed > time.time()
        with pytest.raises(LockBusy):
            WriterLock(setup.store.backend, "backup", 0.6).acquire()
    assert not setup.lock_file.exists()


def test_a_writer_that_was_judged_stale_knows_it(setup: Setup) -> None:
    lock = WriterLock(setup.store.backend, "backup", 60)
    lock.acquire()
    setup.hold(operation="backup")  # another run took the lock over
    assert not lock.held()
    with pytest.raises(LockBusy, match="lost its writer lock"):
        lock.ensure_held()
    lock.release()
    assert json.loads(setup.lock_file.read_bytes())["token"] == "someone-else"  # not ours to delete


def test_an_old_half_written_lock_file_is_taken_over(setup: Setup) -> None:
    setup.lock_file.write_bytes(b"")
    os.utime(setup.lock_file, (time.time() - 7200, time.time() - 7200))
    with WriterLock(setup.store.backend, "backup", 60):
        pass
    assert not setup.lock_file.exists()


def test_a_lock_file_being_written_right_now_is_not_taken_over(setup: Setup) -> None:
    setup.lock_file.write_bytes(b"")  # created by another writer's O_EXCL open, its record not written yet
    with pytest.raises(LockBusy):
        WriterLock(setup.store.backend, "backup", 60).acquire()


# --- backups and the lock ---------------------------------------------------------------------------------

def test_backup_on_a_locked_store_exits_6_naming_the_holder(setup: Setup) -> None:
    record = setup.hold(operation="prune")

    done = setup.cli("backup", expect=ExitCode.LOCKED)

    assert str(os.getpid()) in done.stderr and socket.gethostname() in done.stderr and "prune" in done.stderr
    assert setup.snapshots() == []
    assert setup.lock_file.read_bytes() == record
    as_json = json.loads(setup.cli("backup", "--json", expect=ExitCode.LOCKED).stdout)
    assert as_json["error"]["exit_code"] == ExitCode.LOCKED and str(os.getpid()) in as_json["error"]["message"]


def test_backup_takes_over_the_lock_of_a_dead_process(setup: Setup) -> None:
    pid = dead_pid()
    setup.hold(pid=pid, operation="backup")

    summary = json.loads(setup.cli("backup", "--json").stdout)

    [warning] = [w for w in summary["warnings"] if w["file"] == LOCK_KEY]
    assert "stale" in warning["message"] and str(pid) in warning["message"]
    assert setup.snapshots() == [f"{summary['snapshot']}.json"]
    assert not setup.lock_file.exists()
    manifest = json.loads((setup.store_path / "snapshots" / f"{summary['snapshot']}.json").read_text())
    assert any(w["file"] == LOCK_KEY for w in manifest["warnings"])


def test_backup_takes_over_an_expired_lease_from_another_host(setup: Setup) -> None:
    setup.hold(pid=4242, host="decommissioned-host", expires_in=-5)

    summary = json.loads(setup.cli("backup", "--json").stdout)

    assert any("decommissioned-host" in w["message"] and "expired" in w["message"] for w in summary["warnings"])
    assert not setup.lock_file.exists()


def test_the_lock_is_released_after_a_backup_and_after_a_refused_one(setup: Setup, tmp_path: Path) -> None:
    setup.backup()
    assert not setup.lock_file.exists()
    empty = tmp_path / "unmounted"
    (empty / "lost+found").mkdir(parents=True)
    setup.config_path.write_text(setup.config_path.read_text().replace(str(setup.root), str(empty)))
    setup.cli("backup", expect=ExitCode.SOURCE_REFUSED)
    assert not setup.lock_file.exists()
    assert list((setup.store_path / "locks").iterdir()) == []


def test_readers_work_while_a_writer_holds_the_lock(setup: Setup, tmp_path: Path) -> None:
    first = setup.backup().snapshot
    second = setup.backup().snapshot
    record = setup.hold(operation="backup")
    entry = setup.store.manifests()[-1].patients[0]

    listed = json.loads(setup.cli("snapshots", "--json").stdout)["snapshots"]
    assert [s["id"] for s in listed] == [first, second]
    versions = json.loads(setup.cli("snapshots", "--patient", entry.mrn, "--json").stdout)["versions"]
    assert len(versions) == 2
    setup.cli("diff", first, second, "--json")
    setup.cli("restore", "--patient", entry.mrn, "--to", str(tmp_path / "one"))
    setup.cli("restore", "--all", "--to", str(tmp_path / "all"))
    assert (tmp_path / "one" / entry.path / "Patient").read_bytes() == (setup.root / entry.path / "Patient"
                                                                           ).read_bytes()
    assert (tmp_path / "all" / "Institution_1" / "Institution").is_file()
    assert setup.lock_file.read_bytes() == record


def test_a_backup_that_loses_its_lock_commits_no_snapshot(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    setup.backup()
    before = setup.snapshots()

    def listed_while_taken_over(root, exclude):
        setup.hold(operation="backup")  # another run judged this one stale and took the lock
        return list_source(root, exclude)

    monkeypatch.setattr(backup_module, "list_source", listed_while_taken_over)
    with pytest.raises(LockBusy, match="lost its writer lock"):
        setup.backup()
    assert setup.snapshots() == before
    assert json.loads(setup.lock_file.read_bytes())["token"] == "someone-else"


def test_a_second_backup_started_while_one_runs_gets_lock_busy(setup: Setup, monkeypatch) -> None:
    inside, may_finish = threading.Event(), threading.Event()

    def slow_listing(root, exclude):
        inside.set()
        may_finish.wait(30)
        return list_source(root, exclude)

    monkeypatch.setattr(backup_module, "list_source", slow_listing)
    results: list[object] = []
    first = threading.Thread(target=lambda: results.append(setup.backup()))
    first.start()
    try:
        assert inside.wait(30)
        with pytest.raises(LockBusy, match="locked by backup"):
            setup.backup()
    finally:
        may_finish.set()
        first.join(60)
    assert len(results) == 1 and setup.snapshots() == [f"{results[0].snapshot}.json"]
    assert not setup.lock_file.exists()


def test_concurrent_backup_processes_never_interleave(database: Path, tmp_path: Path) -> None:
    """Three `rtvault backup` at once, then again after a change: each either commits a whole snapshot or exits 6."""
    root = tmp_path / "db"
    shutil.copytree(database, root)
    big = root / "Institution_1" / "Mount_0"
    big = sorted(big.iterdir())[0] / "ImageSet_0.img"
    big.write_bytes(os.urandom(16 << 20))  # long enough a backup for the runs to overlap
    setup = Setup(root, tmp_path)
    committed = []
    for round_ in range(2):
        if round_:
            big.write_bytes(os.urandom(16 << 20))
        command = [sys.executable, "-m", "rtvault", "--config", str(setup.config_path), "backup", "--json"]
        runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(3)]
        outputs = []
        for run in runs:
            out, err = run.communicate(timeout=120)
            outputs.append((run.returncode, out, err))
        for code, out, err in outputs:
            assert "Traceback" not in out + err
            assert code in (0, ExitCode.LOCKED), err
            if code == 0:
                committed.append(json.loads(out)["snapshot"])
            else:  # refused at the start, or (a lost lease) refused before committing
                assert "lock" in err
        assert any(code == 0 for code, _, _ in outputs)
    assert sorted(f"{s}.json" for s in committed) == setup.snapshots()
    assert not setup.lock_file.exists()
    assert list((setup.store_path / "tmp").iterdir()) == []
    setup.cli("check", "--read-data")
    latest = tmp_path / "restored"
    setup.cli("restore", "--all", "--to", str(latest))
    assert (latest / big.relative_to(root)).read_bytes() == big.read_bytes()
    assert (latest / "Institution_1" / "Institution").read_bytes() == (root / "Institution_1" / "Institution"
                                                                       ).read_bytes()


def test_a_run_failing_on_a_store_remounted_read_only_says_its_lock_stays(tmp_path: Path) -> None:
    """The store goes read-only under a running writer: its error also says that the lock could not be
    released and when another host may take it over (the run prints only its error)."""
    from rtvault.errors import StoreError
    from rtvault.store.backend import DirectoryBackend
    from rtvault.store.locks import WriterLock

    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {done.stderr.strip()}")
    try:
        backend = DirectoryBackend(disk)
        with pytest.raises(StoreError) as failed, WriterLock(backend, "backup", 900):
            subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
            backend.put("data/x", b"x")
        message = str(failed.value)
        assert message.startswith(f"cannot write {disk}/tmp") and "read-only" in message
        assert "also, could not release the writer lock" in message and "then any host takes it over" in message
        assert (disk / "locks" / "writer.json").exists()
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
