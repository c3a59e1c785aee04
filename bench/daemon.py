"""The idle daemon: CPU and memory of `rtvault daemon` between its jobs (issue 12: CPU ≤ 0.5 % of one core and
RSS ≤ 80 MB over 10 minutes).

A synthetic database with a primary store and its copy; the daemon is started with the default schedule and a
1-minute health interval (so that it writes its heartbeat and runs its periodic checks, as in production), its
catch-up runs are let finish, then the daemon process alone is sampled every 5 s for `--minutes` (its jobs run
in child processes, none while idle): CPU from /proc/PID/stat (user + system time over wall time), RSS from
/proc/PID/status (VmRSS, and the peak VmHWM). Side by side, the same figures for `sleep` (the floor of a
resident process) and, when it runs on the machine, `cron` (what borgmatic users rely on instead of a daemon).
Writes a section of bench/results.md and bench/results-daemon.json.

    .venv/bin/python bench/daemon.py                 # 10 minutes, a catalog of 100,000 patients
    .venv/bin/python bench/daemon.py --minutes 1 --catalog-patients 0    # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sections import write_section  # bench/sections.py

BENCH = Path(__file__).resolve().parent
CPU_TARGET, RSS_TARGET = 0.5, 80.0
TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def _status_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _rtvault(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rtvault", "--config", str(config), *args], check=True,
                          capture_output=True, text=True)


def _sample(pid: int, minutes: float) -> dict[str, float]:
    cpu0, wall0, rss = _cpu_s(pid), time.monotonic(), []
    end = wall0 + minutes * 60
    while time.monotonic() < end:
        time.sleep(5)
        rss.append(_status_mb(pid, "VmRSS"))
    wall = time.monotonic() - wall0
    return {"cpu_percent": round(100 * (_cpu_s(pid) - cpu0) / wall, 3), "rss_mb_max": round(max(rss), 1),
            "rss_mb_mean": round(sum(rss) / len(rss), 1), "peak_hwm_mb": round(_status_mb(pid, "VmHWM"), 1),
            "seconds": round(wall, 1)}


def fill_catalog(config: Path, patients: int) -> None:
    """`rtvault catalog fill`'s synthetic patients, moved from their reserved store name to `primary` as if indexed
    from it (what the daemon's health checks then count every interval)."""
    from rtvault.catalog import open_catalog

    _rtvault(config, "catalog", "fill", "--patients", str(patients), "--force")  # beside the 20 generated
    with open_catalog(f"sqlite:///{config.parent / 'catalog.sqlite'}") as db, db.transaction():
        for table in ("locations", "indexed"):
            db.execute(f"UPDATE {table} SET store = 'primary' WHERE store = 'synthetic'")


def measure(work: Path, minutes: float, catalog_patients: int = 0) -> dict[str, object]:
    _rtvault_plain = [sys.executable, "-m", "rtvault"]
    subprocess.run([*_rtvault_plain, "demo", "generate", "--out", str(work / "pinnacle"), "--patients", "20",
                    "--seed", "3", "--image-mb", "1"], check=True, capture_output=True)
    config = work / "rtvault.toml"
    config.write_text('[source.pinnacle]\nroot = "pinnacle"\n[stores.primary]\npath = "primary"\n'
                      '[stores.copy]\npath = "copy"\ncopy_of = "primary"\n[catalog]\nurl = "sqlite:///catalog.sqlite"\n'
                      '[daemon]\nstate_dir = "state"\n'
                      + ('' if not catalog_patients else  # nothing that would re-index `primary` fires meanwhile
                         '[schedule]\nbackup = "0 3 1 1 *"\nverify = "0 3 1 1 *"\nretention = "0 3 1 1 *"\n'
                         'catalog = "0 3 1 1 *"\n'))
    _rtvault(config, "init")
    daemon = subprocess.Popen([sys.executable, "-m", "rtvault", "--config", str(config), "daemon"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sleeper = subprocess.Popen(["sleep", "100000"])
    try:
        deadline = time.monotonic() + 300
        while len(json.loads(_rtvault(config, "runs", "--json").stdout)) < 6 and time.monotonic() < deadline:
            time.sleep(2)  # the catch-up runs of a new site: every job once
        if catalog_patients:
            fill_catalog(config, catalog_patients)
        time.sleep(5)
        result: dict[str, object] = {"rtvault daemon": _sample(daemon.pid, minutes)}
        result["sleep"] = {"rss_mb_max": round(_status_mb(sleeper.pid, "VmRSS"), 1)}
        cron = subprocess.run(["pgrep", "-xo", "cron"], capture_output=True, text=True).stdout.strip()
        if cron:
            result["cron"] = {"rss_mb_max": round(_status_mb(int(cron), "VmRSS"), 1)}
        return result
    finally:
        sleeper.kill()
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(120)


def report(result: dict, minutes: float) -> str:
    mine = result["rtvault daemon"]
    cpu_ok, rss_ok = mine["cpu_percent"] <= CPU_TARGET, mine["rss_mb_max"] <= RSS_TARGET
    lines = [
        "# The idle daemon", "",
        f"Generated by `python bench/daemon.py --minutes {minutes:g}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: "
        "`rtvault daemon` on a 20-patient synthetic database with a primary store and its copy, "
        + (f"a catalog holding {result['catalog_patients']:,} more synthetic patients (as if indexed from the "
           "primary store: what the health checks count every interval), no job due during the measure, "
           if result.get("catalog_patients") else "default schedule, ")
        + "1-minute health interval, sampled every 5 s once its catch-up runs ended (its jobs run in child "
        "processes: none while idle).", "",
        "| measure | rtvault daemon | sleep | cron | target | result |", "|---|---:|---:|---:|---|---|",
        f"| CPU, % of one core over {mine['seconds']:.0f} s | {mine['cpu_percent']} | — | — | ≤ {CPU_TARGET} | "
        f"**{'PASS' if cpu_ok else 'MISS'}** |",
        f"| RSS, MB (max of samples; mean {mine['rss_mb_mean']}, VmHWM {mine['peak_hwm_mb']}) | "
        f"{mine['rss_mb_max']} | {result['sleep']['rss_mb_max']} | {result.get('cron', {}).get('rss_mb_max', '—')} | "
        f"≤ {RSS_TARGET:g} | **{'PASS' if rss_ok else 'MISS'}** |",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--catalog-patients", type=int, default=100_000,
                        help="synthetic patients added to the catalog, which health counts every interval (0: none)")
    parser.add_argument("--out", type=Path, default=BENCH)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rtvault-bench-daemon-") as scratch:
        result = measure(Path(scratch), args.minutes, args.catalog_patients)
    result["catalog_patients"] = args.catalog_patients
    (args.out / "results-daemon.json").write_text(json.dumps(result, indent=1) + "\n")
    text = report(result, args.minutes)
    write_section(args.out / "results.md", "bench/daemon.py", text)
    print(text)


if __name__ == "__main__":
    main()
