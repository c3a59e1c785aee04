"""The backup programs bench/backup.py compares: how each inits, backs up, restores and checks, and how a
command of theirs is measured (wall, CPU, peak RSS, and the CPU the rest of a shared machine used meanwhile)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

EXCLUDES = (".auto.plan*", "*.ErrorLog", "*.Transcript", "*~")  # rtvault's default [source.pinnacle] exclude


@dataclass
class Measure:
    wall_s: float
    cpu_s: float
    maxrss_kb: int
    others_cpu_s: float  # CPU time the rest of the machine used meanwhile: the machine is shared


def busy_s() -> float:
    """CPU seconds the whole machine has been busy since boot (/proc/stat: all but idle and iowait)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def wait_quiet(limit_s: int = 60) -> None:
    """The machine may be shared: wait, at most limit_s, for a second in which others used < 10 % of a CPU."""
    for _ in range(limit_s):
        before = busy_s()
        time.sleep(1)
        if busy_s() - before < 0.1:
            return


class Tool:
    """One backup program: how to init, back up and restore with it; runs its commands and measures them."""

    name = ""

    def __init__(self, work: Path, db: Path) -> None:
        self.db = db
        self.repo = work / "repos" / self.name
        self.log = work / "logs" / f"{self.name}.log"
        self.env: dict[str, str] = {}
        self.init_cmd: list[str] = []

    def run(self, cmd: list[str], cwd: Path) -> Measure:
        with open(self.log, "ab") as out:
            out.write(f"\n$ {' '.join(cmd)}\n".encode())
            out.flush()
            start, busy = time.perf_counter(), busy_s()
            proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **self.env}, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=out)
            _pid, status, usage = os.wait4(proc.pid, 0)
            wall, busy = time.perf_counter() - start, busy_s() - busy
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            tail = self.log.read_text(errors="replace")[-4000:]
            raise SystemExit(f"{self.name} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")
        cpu = usage.ru_utime + usage.ru_stime
        return Measure(round(wall, 3), round(cpu, 3), usage.ru_maxrss, round(max(busy - cpu, 0), 2))

    def backup_cmd(self, tag: str) -> list[str]:
        raise NotImplementedError

    def restore_cmd(self, target: Path, patient: str | None) -> tuple[list[str], Path]:
        """The command restoring one patient (relative path) or all, and where it puts the database root."""
        raise NotImplementedError

    def check_cmd(self) -> list[str]:
        """The command reading back and verifying every byte of the repository."""
        raise NotImplementedError


class Rtvault(Tool):
    name = "rtvault"

    def __init__(self, work: Path, db: Path) -> None:
        super().__init__(work, db)
        config = work / "rtvault.toml"
        config.write_text(f'[source.pinnacle]\nroot = "{db}"\n[stores.primary]\npath = "{self.repo}"\n')
        self.base = [sys.executable, "-m", "rtvault", "--config", str(config)]
        self.init_cmd = [*self.base, "init"]

    def backup_cmd(self, tag: str) -> list[str]:
        return [*self.base, "backup"]

    def restore_cmd(self, target: Path, patient: str | None) -> tuple[list[str], Path]:
        what = ["--patient", patient] if patient else ["--all"]
        return [*self.base, "restore", *what, "--to", str(target)], target

    def check_cmd(self) -> list[str]:
        return [*self.base, "check", "--read-data"]


class Restic(Tool):
    name = "restic"

    def __init__(self, work: Path, db: Path) -> None:
        super().__init__(work, db)
        self.env = {"RESTIC_PASSWORD": "x", "RESTIC_CACHE_DIR": str(work / "cache" / "restic")}
        self.base = ["restic", "-r", str(self.repo)]
        self.init_cmd = [*self.base, "init", "--repository-version", "2"]

    def backup_cmd(self, tag: str) -> list[str]:
        excludes = [arg for pattern in EXCLUDES for arg in ("--exclude", pattern)]
        return [*self.base, "backup", str(self.db), "--compression", "auto", "--tag", tag, *excludes]

    def restore_cmd(self, target: Path, patient: str | None) -> tuple[list[str], Path]:
        include = ["--include", str(self.db / patient)] if patient else []
        return [*self.base, "restore", "latest", "--target", str(target), *include], target / self.db.relative_to("/")

    def check_cmd(self) -> list[str]:
        return [*self.base, "check", "--read-data"]


class Borg(Tool):
    name = "borg"
    last_tag = ""  # the archive to extract: the latest

    def __init__(self, work: Path, db: Path) -> None:
        super().__init__(work, db)
        self.env = {"BORG_PASSPHRASE": "x", "BORG_BASE_DIR": str(work / "cache" / "borg"),
                    "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes", "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes"}
        self.init_cmd = ["borg", "init", "--encryption=none", str(self.repo)]

    def backup_cmd(self, tag: str) -> list[str]:
        excludes = [arg for pattern in EXCLUDES for arg in ("--exclude", f"sh:**/{pattern}")]
        self.last_tag = tag
        return ["borg", "create", "--compression", "zstd,3", *excludes, f"{self.repo}::{tag}", self.db.name]

    def restore_cmd(self, target: Path, patient: str | None) -> tuple[list[str], Path]:
        paths = [f"{self.db.name}/{patient}"] if patient else []
        return ["borg", "extract", f"{self.repo}::{self.last_tag}", *paths], target / self.db.name

    def check_cmd(self) -> list[str]:
        return ["borg", "check", "--verify-data", str(self.repo)]


def ensure_tools() -> None:
    """Install restic and borg from Debian's packages when missing (needs root, non-interactive)."""
    if shutil.which("restic") and shutil.which("borg"):
        return
    if os.geteuid() != 0:
        raise SystemExit("restic or borg is missing: run as root, or `apt-get install -y restic borgbackup`")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "restic", "borgbackup"]):
        subprocess.run(cmd, check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
