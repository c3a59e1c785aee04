"""The three backup programs of bench/backup.py (rtvault, restic, borg): how each one inits, backs up, restores and
checks, and how a command is run and measured (wall, CPU, peak RSS, the rest of the machine's CPU meanwhile)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

EXCLUDES = (".auto.plan*", "*.ErrorLog", "*.Transcript", "*~")  # rtvault's default [source.pinnacle] exclude
BENCH = Path(__file__).resolve().parent
TOOLS = ("rtvault", "restic", "borg")


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


QUIET = {"limit_s": 20}  # bench/backup.py --quiet-wait


def wait_quiet() -> None:
    """The machine may be shared: wait, at most limit_s, for a second in which others used < 10 % of a CPU."""
    for _ in range(int(QUIET["limit_s"])):
        before = busy_s()
        time.sleep(1)
        if busy_s() - before < 0.1:
            return


def drop_caches() -> bool:
    """sync, then drop the page cache, dentries and inodes (root only): the next command reads from the disk."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def run_measured(cmd: list[str], cwd: Path, env: dict[str, str], log: Path, name: str) -> tuple[Measure, str]:
    """Run cmd (must succeed), its output appended to log; its measure and its stdout."""
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        capture = log.with_suffix(".stdout")
        with open(capture, "wb") as stdout:
            start, busy = time.perf_counter(), busy_s()
            proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                                    stdout=stdout, stderr=out)
            _pid, status, usage = os.wait4(proc.pid, 0)
            wall, busy = time.perf_counter() - start, busy_s() - busy
        text = capture.read_text(errors="replace")
        out.write(text.encode())
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = log.read_text(errors="replace")[-4000:]
        raise SystemExit(f"{name} failed (exit {code}): {' '.join(cmd)}\n{tail}")
    cpu = usage.ru_utime + usage.ru_stime
    return Measure(round(wall, 3), round(cpu, 3), usage.ru_maxrss, round(max(busy - cpu, 0), 2)), text


class Tool:
    """One backup program: how to init, back up, restore and check with it; runs its commands and measures them."""

    name = ""

    def __init__(self, work: Path, db: Path, repo_name: str = "") -> None:
        self.work = work
        self.db = db
        self.repo = work / "repos" / (repo_name or self.name)
        self.log = work / "logs" / f"{repo_name or self.name}.log"
        self.env: dict[str, str] = {}
        self.init_cmd: list[str] = []
        self.last_stdout = ""

    def run(self, cmd: list[str], cwd: Path | None = None) -> Measure:
        measure, self.last_stdout = run_measured(cmd, cwd or self.work, self.env, self.log, self.name)
        return measure

    def backup_cmd(self, tag: str) -> list[str]:
        raise NotImplementedError

    def restore_cmd(self, target: Path, patient: str | None) -> tuple[list[str], Path]:
        """The command restoring one patient (relative path) or all, and where it puts the database root."""
        raise NotImplementedError

    def check_cmd(self) -> list[str]:
        """The full check that re-reads every stored byte."""
        raise NotImplementedError


class Rtvault(Tool):
    name = "rtvault"

    def __init__(self, work: Path, db: Path, repo_name: str = "") -> None:
        super().__init__(work, db, repo_name)
        self.config = work / f"{repo_name or self.name}.toml"
        self.config.write_text(f'[source.pinnacle]\nroot = "{db}"\n[stores.primary]\npath = "{self.repo}"\n')
        self.base = [sys.executable, "-m", "rtvault", "--config", str(self.config)]
        self.init_cmd = [*self.base, "init"]

    def backup_cmd(self, tag: str) -> list[str]:
        return [*self.base, "backup"]

    def driven_backup_cmd(self, report: Path) -> list[str]:
        """The backup through bench/rtvault_driver.py, which times the archive of deleted patients."""
        return [sys.executable, str(BENCH / "rtvault_driver.py"), str(report), "--config", str(self.config),
                "backup", "--json"]

    def restore_cmd(self, target: Path, patient: str | None) -> tuple[list[str], Path]:
        what = ["--patient", patient] if patient else ["--all"]
        return [*self.base, "restore", *what, "--to", str(target)], target

    def check_cmd(self) -> list[str]:
        return [*self.base, "check", "--read-data"]


class Restic(Tool):
    name = "restic"

    def __init__(self, work: Path, db: Path, repo_name: str = "") -> None:
        super().__init__(work, db, repo_name)
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

    def __init__(self, work: Path, db: Path, repo_name: str = "") -> None:
        super().__init__(work, db, repo_name)
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


def make_tools(work: Path, db: Path, suffix: str = "") -> list[Tool]:
    return [cls(work, db, f"{cls.name}{suffix}") for cls in (Rtvault, Restic, Borg)]


def json_tail(text: str) -> dict:
    """The JSON object a command printed on stdout (from the first line that starts with `{`)."""
    starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n" and text[i + 1:i + 2] == "{"]
    for start in starts:
        try:
            found = json.loads(text[start:])
        except json.JSONDecodeError:
            continue
        return found if isinstance(found, dict) else {}
    return {}


def ensure_tools() -> None:
    """Install restic, borg and rsync from Debian's packages when missing (needs root, non-interactive)."""
    missing = [pkg for cmd, pkg in (("restic", "restic"), ("borg", "borgbackup"), ("rsync", "rsync"),
                                    ("strace", "strace")) if not shutil.which(cmd)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemExit(f"missing {' '.join(missing)}: run as root, or `apt-get install -y {' '.join(missing)}`")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        subprocess.run(cmd, check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def precompile() -> str:
    """Write rtvault's bytecode (`python -m compileall`) before measuring: an installed rtvault has it, but with
    PYTHONDONTWRITEBYTECODE set (as on this machine) a source tree never gets it, and every command would
    compile its ~60 modules again (~0.1 s of CPU a command)."""
    package = subprocess.run([sys.executable, "-c", "import rtvault, pathlib; print(pathlib.Path(rtvault.__file__)"
                              ".parent)"], check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=True, stdout=subprocess.DEVNULL)
    return package


def versions() -> dict[str, str]:
    def output(*cmd: str) -> str:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()

    src = output(sys.executable, "-c", "import rtvault, pathlib; print(pathlib.Path(rtvault.__file__).parents[2])")
    last = output("git", "-C", src, "log", "-1", "--format=%h %s", "--", "src")
    return {
        "rtvault": f"{output(sys.executable, '-m', 'rtvault', '--version')} from {src} (git "
                   f"{output('git', '-C', src, 'describe', '--always', '--dirty') or '?'}, "
                   f"last commit of src/: {last[:90] or '?'})",
        "restic": output("restic", "version"), "borg": output("borg", "--version"),
        "rsync": output("rsync", "--version").splitlines()[0], "tar": output("tar", "--version").splitlines()[0],
    }
