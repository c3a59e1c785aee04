"""`rtvault health --nagios` at scale: a catalog of 100,000 patients and two stores of 1,000 snapshots each.

    PYTHONPATH=$PWD/src .venv/bin/python bench/health.py             # about 2 minutes
    PYTHONPATH=$PWD/src .venv/bin/python bench/health.py --patients 10000 --snapshots 200 --keep --work /tmp/bh

Builds, in a work directory: a small generated Pinnacle database (the source, `--source-patients`); a SQLite
catalog filled with `rtvault catalog fill --patients N` (synthetic patients: 15 % active in 14 daily snapshots,
80 % archived), their locations then moved from the reserved store name `synthetic` to `primary`, as if indexed
from it; the configured stores `primary` and its copy `copy`, each holding `--snapshots` small synthetic
manifests written through the store API, hourly, the newest ones being the catalog's 14 snapshots (so the source
check counts the last snapshot's patients in the catalog, as on a real site); the daemon's lease; 30 days of
store samples every 10 minutes; a year of the run journal (six jobs, hourly). Then times `rtvault health
--nagios` in a subprocess: one warm-up run, then RUNS runs, the median. Target: under 2 s (Centreon's default
timeout is 10 s). Writes bench/results-health.json and its section of bench/results.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sections import write_section  # bench/sections.py
from tools import precompile

from rtvault.catalog import open_catalog
from rtvault.demo.catalog import snapshots as catalog_snapshots
from rtvault.store import Store
from rtvault.store.formats import Manifest, OtherEntry, PatientEntry
from rtvault.store.locks import DAEMON_KEY, WriterLock
from rtvault.utc import iso

RUNS = 5
TARGET_S = 2.0
SECTION = "# `rtvault health --nagios` at scale (`bench/health.py`)"
JOBS = ("backup", "sweep", "replicate", "verify", "retention", "catalog")


def rtvault(*args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "RTVAULT_CONFIG"}
    done = subprocess.run([sys.executable, "-m", "rtvault", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False)
    if done.returncode:
        raise SystemExit(f"rtvault {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def manifest_ids(count: int) -> list[tuple[str, str]]:
    """(id, time) of `count` hourly snapshots ending with the catalog's 14 daily ones."""
    daily = list(catalog_snapshots())
    first = datetime.fromisoformat(daily[0][1].replace("Z", "+00:00"))
    hourly = []
    for n in range(count - len(daily), 0, -1):
        when = first - timedelta(hours=n)
        hourly.append((f"{when:%Y%m%dT%H%M%SZ}-{hashlib.sha256(str(n).encode()).hexdigest()[:6]}", iso(when)))
    return hourly + daily


def fill_store(path: Path, ids: list[tuple[str, str]]) -> None:
    """A store of small synthetic manifests (three patients each), written through the store API."""
    store, _created = Store.init(path)
    tree = hashlib.sha256(b"a synthetic tree").hexdigest()
    for n, (snapshot_id, when) in enumerate(ids):
        patients = tuple(PatientEntry(f"Institution_1/Mount_0/Patient_{n * 3 + k}", tree, n * 3 + k, "NOM",
                                      "Prenom", f"MRN{n * 3 + k}", files=10, bytes=1000) for k in range(3))
        store.save_snapshot(Manifest(snapshot_id, when.replace("Z", ".000000Z"), "bench", patients,
                                     OtherEntry(tree, 1), {"files": 31, "bytes": 3001}))


def fill_journal_and_samples(url: str, now: datetime) -> dict[str, int]:
    """The synthetic patients moved into `primary`, a year of runs and a month of samples."""
    with open_catalog(url) as db, db.transaction():
        for table in ("locations", "indexed"):
            db.execute(f"UPDATE {table} SET store = 'primary' WHERE store = 'synthetic'")
        runs = [(f"bench/{job}/{h}", job, "schedule", iso(now - timedelta(hours=h)),
                 iso(now - timedelta(hours=h) + timedelta(seconds=40)), "ok" if h % 97 else "failed", "", "host",
                 "{}") for h in range(365 * 24) for job in JOBS]
        db.many("INSERT INTO runs (id, job, trigger, started, ended, result, error, host, record) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", runs)
        samples = [(store, iso(now - timedelta(minutes=10 * i)), 10**13, 4 * 10**12 + i * 10**8, None)
                   for store in ("primary", "copy") for i in range(30 * 24 * 6)]
        db.many("INSERT INTO store_samples (store, time, total_bytes, free_bytes, store_bytes) VALUES (?, ?, ?, ?, ?)",
                samples)
    return {"runs": len(runs), "store_samples": len(samples)}


def prepare(work: Path, patients: int, snapshots: int, source_patients: int) -> tuple[Path, dict[str, object]]:
    config = work / "rtvault.toml"
    config.write_text(f'[source.pinnacle]\nroot = "{work / "db"}"\n\n[stores.primary]\npath = "{work / "primary"}"'
                      f'\n\n[stores.copy]\npath = "{work / "copy"}"\ncopy_of = "primary"\n\n'
                      f'[catalog]\nurl = "sqlite:///{work / "catalog.sqlite"}"\n')
    started = time.monotonic()
    rtvault("demo", "generate", "--out", str(work / "db"), "--patients", str(source_patients), "--seed", "1",
            "--image-mb", "0.02", cwd=work)
    filled = json.loads(rtvault("--config", str(config), "catalog", "fill", "--patients", str(patients), "--json",
                                cwd=work))
    ids = manifest_ids(snapshots)
    for store in ("primary", "copy"):
        fill_store(work / store, ids)
    lease = WriterLock(Store.open(work / "primary").backend, "daemon", 3600, key=DAEMON_KEY, renewing=False)
    lease.acquire()  # left in place: the daemon's heartbeat, as health reads it
    extra = fill_journal_and_samples(f"sqlite:///{work / 'catalog.sqlite'}", datetime.now(UTC))
    return config, {"patients": patients, "locations": filled.get("locations"), "snapshots_per_store": snapshots,
                    "stores": 2, "source_patients": source_patients, **extra,
                    "catalog_bytes": (work / "catalog.sqlite").stat().st_size,
                    "prepare_s": round(time.monotonic() - started, 1)}


def measure(config: Path, work: Path) -> dict[str, object]:
    cmd = [sys.executable, "-m", "rtvault", "--config", str(config), "health", "--nagios"]
    env = {k: v for k, v in os.environ.items() if k != "RTVAULT_CONFIG"}
    first = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)  # warm-up, untimed
    seconds, codes = [], set()
    for _run in range(RUNS):
        started = time.perf_counter()
        done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
        seconds.append(time.perf_counter() - started)
        codes.add(done.returncode)
    line = first.stdout.strip()
    return {"seconds": seconds, "median_s": statistics.median(seconds), "exit_codes": sorted(codes),
            "line": line[:600] + ("..." if len(line) > 600 else "")}


def machine() -> dict[str, str]:
    cpus = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")]
    version = subprocess.run([sys.executable, "-m", "rtvault", "--version"], capture_output=True, text=True)
    return {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "nproc": str(os.cpu_count()),
            "cpu": cpus[0] if cpus else "?", "python": platform.python_version(), "rtvault": version.stdout.strip(),
            "load average before": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def section(results: dict) -> str:
    s, m = results["site"], results["measure"]
    verdict = "PASS" if m["median_s"] < TARGET_S else "MISS"
    machine_line = ", ".join(f"{k}: {v}" for k, v in results["machine"].items())
    return "\n".join([
        SECTION, "",
        f"Generated by `python bench/health.py` ({machine_line}).", "",
        f"Site: a SQLite catalog of {s['patients']:,} synthetic patients ({s['locations']:,} locations, "
        f"{s['catalog_bytes'] / 1e6:.0f} MB), {s['runs']:,} runs in the journal, {s['store_samples']:,} store "
        f"samples; {s['stores']} directory stores of {s['snapshots_per_store']:,} snapshots each (small synthetic "
        f"manifests), the daemon's lease; a source of {s['source_patients']} generated patients.", "",
        "| measure | rtvault | target | result |", "|---|---:|---|---|",
        f"| `rtvault health --nagios`, median of {RUNS} runs (a new process each) | {m['median_s']:.2f} s | "
        f"< {TARGET_S:.0f} s | {verdict} |", "",
        "Runs (s): " + ", ".join(f"{x:.2f}" for x in m["seconds"]) + f"; exit codes {m['exit_codes']} (the "
        "synthetic site is not healthy: its snapshots are weeks old, its patients on one store). Its output:", "",
        f"```\n{m['line']}\n```", ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000, help="synthetic patients in the catalog")
    parser.add_argument("--snapshots", type=int, default=1_000, help="snapshot manifests in each store")
    parser.add_argument("--source-patients", type=int, default=50, help="patients of the generated source")
    parser.add_argument("--work", type=Path, help="work directory (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent, help="where results are written")
    args = parser.parse_args()
    precompile()
    work = args.work or Path(tempfile.mkdtemp(prefix="rtvault-bench-health-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        config, site = prepare(work, args.patients, args.snapshots, args.source_patients)
        results = {"machine": machine(), "site": site, "measure": measure(config, work)}
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results-health.json").write_text(json.dumps(results, indent=1) + "\n")
        write_section(args.out / "results.md", "bench/health.py", section(results))
        print(section(results))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
