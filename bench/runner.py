"""What the benchmarks share to run and measure commands: a child's wall time, CPU time and peak RSS (its own
rusage), every command and its output logged, caches dropped (or only written back) before a measure."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Measure:
    wall_s: float
    cpu_s: float
    maxrss_kb: int


class Runner:
    """Runs the benchmark's commands, logging their output, and measures them (the child's own rusage)."""

    def __init__(self, work: Path) -> None:
        self.work, self.log = work, work / "logs" / "commands.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.can_drop = os.access("/proc/sys/vm/drop_caches", os.W_OK)

    def run(self, cmd: list[str], stdout: Path | None = None) -> Measure:
        with open(self.log, "ab") as log, open(stdout or self.log, "wb" if stdout else "ab") as out:
            log.write(f"\n$ {' '.join(cmd)}\n".encode())
            log.flush()
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, cwd=self.work, stdin=subprocess.DEVNULL, stdout=out, stderr=log)
            _pid, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"failed: {' '.join(cmd)}\n{self.log.read_text(errors='replace')[-3000:]}")
        return Measure(round(wall, 3), round(usage.ru_utime + usage.ru_stime, 3), usage.ru_maxrss)

    def cold(self, cold: bool = True) -> None:
        """Write back everything dirty (untimed, so no command pays for the previous one), then drop caches."""
        os.sync()
        if cold and self.can_drop:
            Path("/proc/sys/vm/drop_caches").write_text("3\n")


def output(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
