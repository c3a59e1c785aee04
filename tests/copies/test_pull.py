"""A copy the backup host cannot destroy: `rtvault replicate --pull`, run on the host that keeps the protected copy
(docs/design.md, "Pull replication").

Two hosts are played by two users: the primary's host (its own uid, its own configuration naming only its store)
and the vault's host (another uid, owning the vault directory; its configuration names the primary `read_only`
and the vault `copy_of` it). The tests run as root, so each command runs through setpriv as its host's user,
without root's power over file permissions."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kit.cli import run_cli
from kit.config import write_config
from kit.copies import Copies, restore_everything
from kit.faults import can_drop_read_capabilities
from rtvault.archive import records
from rtvault.config import load
from rtvault.configured import destruction_elsewhere
from rtvault.copies.replicate import replicate
from rtvault.store import Store
from rtvault.store.locks import WriterLock

PRIMARY_UID, VAULT_UID = 51702, 51703


def as_user(uid: int) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]


@dataclass
class Hosts:
    """The primary's host and the vault's host, each with its configuration, catalog and state directory."""

    copies: Copies
    primary_config: Path
    vault: Path
    vault_config: Path

    def primary_host(self, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, config=self.primary_config, expect=expect, via=as_user(PRIMARY_UID))

    def vault_host(self, *args: str, expect: int | None = 0, timeout: float = 120
                   ) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, config=self.vault_config, expect=expect, via=as_user(VAULT_UID), timeout=timeout)

    def vault_files(self) -> dict[str, str]:
        return {p.relative_to(self.vault).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in self.vault.rglob("*") if p.is_file() and p.relative_to(self.vault).parts[0]
                not in ("locks", "tmp", "copies", "verify", "heads")}


def _open_path_to(path: Path) -> None:
    """Let the two users reach `path`: pytest makes its temporary folders owner-only."""
    for folder in [path, *path.parents]:
        if folder == Path("/tmp") or folder == Path("/"):
            return
        folder.chmod(folder.stat().st_mode | 0o755)


def _chown_tree(path: Path, uid: int) -> None:
    for item in [path, *path.rglob("*")]:
        os.lchown(item, uid, uid)


@pytest.fixture
def hosts(copies: Copies, tmp_path: Path) -> Hosts:
    if reason := can_drop_read_capabilities():
        pytest.skip(reason)
    _open_path_to(tmp_path)
    shutil.rmtree(copies.secondary_path)  # the vault is made by its own host, below
    primary_home, vault_home = tmp_path / "primary-host", tmp_path / "vault-host"
    primary_home.mkdir()
    vault_home.mkdir(mode=0o700)
    _chown_tree(copies.primary_path, PRIMARY_UID)
    copies.primary_path.chmod(0o755)  # shared for reading with the vault host (`init` makes a store owner-only)
    _chown_tree(copies.root, PRIMARY_UID)
    os.chown(primary_home, PRIMARY_UID, PRIMARY_UID)
    os.chown(vault_home, VAULT_UID, VAULT_UID)
    primary_config = write_config(primary_home / "rtvault.toml", root=copies.root,
                                  stores={"primary": copies.primary_path},
                                  catalog={"url": f"sqlite:///{primary_home / 'catalog.sqlite'}"},
                                  daemon={"state_dir": primary_home / "state"})
    vault = vault_home / "vault"
    vault_config = write_config(vault_home / "rtvault.toml",
                                stores={"primary": {"path": copies.primary_path, "read_only": True},
                                        "vault": {"path": vault, "copy_of": "primary"}},
                                catalog={"url": f"sqlite:///{vault_home / 'catalog.sqlite'}"},
                                daemon={"state_dir": vault_home / "state"})
    for config in (primary_config, vault_config):
        os.chown(config, PRIMARY_UID if config == primary_config else VAULT_UID, -1)
    made = Hosts(copies, primary_config, vault, vault_config)
    made.vault_host("init")
    return made


@pytest.mark.slow
def test_pull_copies_everything_from_a_read_only_primary_and_health_reports_the_lag(hosts: Hosts,
                                                                                   tmp_path: Path) -> None:
    before = json.loads(hosts.vault_host("health", "--json", expect=None).stdout)
    (lag,) = [c for c in before["checks"] if c["name"] == "replication:vault"]
    assert "vault lacks 2 snapshot(s) of primary" in lag["message"], lag
    pulled = hosts.vault_host("replicate", "--pull", "--json")
    report = json.loads(pulled.stdout)
    (pair,) = report["pairs"]
    assert (pair["from"], pair["to"], pair["pull"], pair["complete"]) == ("primary", "vault", True, True)
    assert pair["snapshots_copied"] == 2 and pair["archives_copied"] == 1
    assert restore_everything(Store.open(hosts.vault), tmp_path / "v") == \
        restore_everything(hosts.copies.primary, tmp_path / "p")
    health = json.loads(hosts.vault_host("health", "--json", expect=None).stdout)
    (check,) = [c for c in health["checks"] if c["name"] == "replication:vault"]
    assert check["status"] == "OK" and check["value"] == 0, check
    # nothing this host did wrote to the primary: its files are the primary host's alone, and this host's journal
    # records wait for no write there
    assert not (hosts.vault_config.parent / "state" / "spool" / "primary").exists()
    assert all(p.stat().st_uid == PRIMARY_UID for p in hosts.copies.primary_path.rglob("*"))


def test_the_vault_host_writes_nothing_to_the_read_only_primary(hosts: Hosts) -> None:
    done = hosts.vault_host("backup", "--store", "primary", expect=None)
    assert done.returncode == 8 and "read-only on this host (read_only = true)" in done.stderr, done.stderr
    done = hosts.vault_host("replicate", "--from", "vault", "--to", "primary", expect=3)
    assert "store primary is read-only on this host" in done.stderr
    done = hosts.vault_host("prune", "--store", "primary", expect=None)
    assert done.returncode == 8 and "read-only on this host" in done.stderr, done.stderr
    done = hosts.vault_host("replicate", "--pull", "--to", "vault", "--from", "vault", expect=3)
    assert "--pull: no copy" in done.stderr


def test_the_primary_host_cannot_destroy_the_pulled_copy(hosts: Hosts) -> None:
    hosts.vault_host("replicate", "--pull")
    kept = hosts.vault_files()
    assert any(key.startswith("data/") or key.startswith("packs/") for key in kept)
    # its configuration does not name the vault: nothing of rtvault on that host can reach it
    done = hosts.primary_host("replicate", "--to", "vault", expect=3)
    assert "no store named 'vault'" in done.stderr
    # and its user, whatever it runs, cannot delete nor overwrite the vault's files
    victim = hosts.vault / next(iter(kept))
    attempts = [["rm", "-rf", str(hosts.vault)], ["sh", "-c", f"echo ransom > {victim}"],
                ["sh", "-c", f"find {hosts.vault} -type f -delete"], ["mv", str(hosts.vault), "/tmp/taken"]]
    for attempt in attempts:
        done = subprocess.run([*as_user(PRIMARY_UID), *attempt], capture_output=True, text=True)
        assert done.returncode != 0, attempt
    # the primary's own store wiped by its host (a ransomware, an operator's mistake): the next pull copies no
    # deletion, says the primary is unreachable (exit 8), and the vault keeps every byte
    subprocess.run([*as_user(PRIMARY_UID), "sh", "-c", f"rm -rf {hosts.copies.primary_path}/*"], check=True)
    done = hosts.vault_host("replicate", "--pull", expect=8)
    assert "cannot pull into vault: the primary store primary is unreachable from this host" in done.stderr
    assert kept.items() <= hosts.vault_files().items()  # every file, byte for byte (and this host's journal)
    check = hosts.vault_host("check", "--store", "vault", "--read-data", expect=None)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_pull_with_the_primary_unreachable_says_so_and_exits_8(hosts: Hosts) -> None:
    hosts.copies.primary_path.rename(hosts.copies.primary_path.with_name("unmounted"))
    done = hosts.vault_host("replicate", "--pull", expect=8)
    assert done.stderr.count("\n") <= 3, done.stderr
    assert "the primary store primary is unreachable from this host" in done.stderr
    assert "replicate --pull` again" in done.stderr


@pytest.mark.slow
def test_a_pull_killed_anywhere_resumes_cleanly(hosts: Hosts) -> None:
    command = [*as_user(VAULT_UID), sys.executable, "-m", "rtvault", "--config", str(hosts.vault_config),
               "replicate", "--pull"]
    started = time.monotonic()
    hosts.vault_host("replicate", "--pull")
    run = time.monotonic() - started
    rng = random.Random(14)
    for _ in range(4):
        shutil.rmtree(hosts.vault)
        hosts.vault_host("init")
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, run * 0.9))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert hosts.vault_host("check", "--store", "vault", expect=None).returncode == 0  # valid at every instant
        done = json.loads(hosts.vault_host("replicate", "--pull", "--json").stdout)  # takes over the dead lock
        assert done["pairs"][0]["complete"], done
        assert hosts.vault_host("check", "--store", "vault", "--read-data", expect=None).returncode == 0


def test_two_pulls_at_once_one_waits_for_the_other(hosts: Hosts) -> None:
    with WriterLock(Store.open(hosts.vault).backend, "replicate", 600):  # a pull under way (this process)
        done = hosts.vault_host("replicate", "--pull", expect=6)
        assert "lock" in done.stderr and str(hosts.vault) in done.stderr, done.stderr
        assert not list((hosts.vault / "snapshots").glob("*")), "nothing copied while another pull writes"
    assert json.loads(hosts.vault_host("replicate", "--pull", "--json").stdout)["pairs"][0]["complete"]


@pytest.mark.slow
def test_the_journal_verifies_on_the_vault_host_before_and_after_a_pull(hosts: Hosts) -> None:
    hosts.vault_host("replicate", "--pull")
    hosts.copies.evolve(2)
    _chown_tree(hosts.copies.root, PRIMARY_UID)
    hosts.primary_host("backup")  # its journal record is on the primary only, until the next pull
    hosts.vault_host("journal", "verify")  # a record not pulled yet is lag, not a removal
    hosts.vault_host("replicate", "--pull")
    hosts.vault_host("journal", "verify")


def test_an_archive_destroyed_on_the_copy_is_never_copied_back(replicated: Copies) -> None:
    vault = replicated.secondary
    (record,) = records.all_records(vault)
    records.remember_destroyed(vault, record, datetime.now(UTC))  # as `archive delete` does, on the copy's host
    for key in (records.record_key, records.summary_key, records.checksum_key, records.tar_key):
        vault.backend.delete(key(record.id))
    summary = replicate(replicated.primary, vault)  # the primary still holds it
    assert summary.complete and summary.archives_copied == 0 and summary.destroyed_skipped >= 2
    assert not records.exists(vault, record.id) and records.exists(replicated.primary, record.id)


def test_legal_destruction_on_a_protected_copy_is_left_to_the_host_that_owns_it(tmp_path: Path) -> None:
    config = load(write_config(tmp_path / "rtvault.toml",
                               stores={"primary": {"path": tmp_path / "p", "read_only": True},
                                       "vault": {"path": tmp_path / "v", "copy_of": "primary"},
                                       "offsite": {"url": "s3://b/p", "copy_of": "vault", "object_lock_days": 30}}))
    assert destruction_elsewhere(config, "vault") is None
    assert "its own host destroys the archive there" in (destruction_elsewhere(config, "primary") or "")
    assert "30 days after it was written" in (destruction_elsewhere(config, "offsite") or "")
