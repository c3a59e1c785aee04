"""`rtvault reconcile` at scale (issue 14: under 10 s on a catalog of 100,000 patients).

    PYTHONPATH=$PWD/src .venv/bin/python bench/reconcile.py        # 100,000 patients, a 500-patient source: ~3 min
    PYTHONPATH=$PWD/src .venv/bin/python bench/reconcile.py --patients 10000 --source-patients 40 --keep --work /tmp/br

Builds, in a work directory, a site that `rtvault reconcile` reads whole: a generated Pinnacle database (`--source-
patients`, CT sets of 0.02 MB), nine patients in ten last changed two years ago and the tenth today; a primary store
and its offsite copy (`offsite = true`); backed up, the idle patients archived (`archive now --idle`), replicated,
both stores verified, all by the real commands; then the catalog filled with `--patients` synthetic patients
(`catalog fill --force`), their locations moved from the reserved store `synthetic` to `primary` and every archive
location copied to `offsite` but one in thirty (under-copied). Times `rtvault reconcile --json` in a new process:
one warm-up, then RUNS runs, the median; and, in this process, the listing of the source alone (a backup's). Target:
under 10 s. Writes bench/results-reconcile.json and its section of bench/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from health import machine  # bench/health.py
from sections import write_section  # bench/sections.py
from tools import precompile

from rtvault.catalog import open_catalog
from rtvault.jobs.source import list_source

RUNS = 5
TARGET_S = 10.0
SECTION = "# `rtvault reconcile` at scale (`bench/reconcile.py`)"
TWO_YEARS_S = 2 * 366 * 86400


def rtvault(work: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "RTVAULT_CONFIG"}
    done = subprocess.run([sys.executable, "-m", "rtvault", "--config", str(work / "rtvault.toml"), *args], cwd=work,
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"rtvault {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


def age(root: Path, share: int) -> int:
    """Every patient folder last changed two years ago, but one in `share` changed now; returns how many were aged."""
    aged = 0
    for number, patient in enumerate(sorted(root.glob("Institution_*/Mount_*/Patient_*"))):
        recent = number % share == share - 1
        when = time.time() - (0 if recent else TWO_YEARS_S)
        for current, dirs, names in os.walk(patient, topdown=False):
            for name in [*names, *dirs]:
                os.utime(Path(current, name), (when, when), follow_symlinks=False)
        os.utime(patient, (when, when))
        aged += not recent
    return aged


def real_site(work: Path, source_patients: int) -> dict[str, object]:
    (work / "rtvault.toml").write_text(
        f'[source.pinnacle]\nroot = "{work / "db"}"\n\n[stores.primary]\npath = "{work / "primary"}"\n\n'
        f'[stores.offsite]\npath = "{work / "offsite"}"\ncopy_of = "primary"\noffsite = true\n\n'
        f'[catalog]\nurl = "sqlite:///{work / "catalog.sqlite"}"\n', encoding="utf-8")
    rtvault(work, "demo", "generate", "--out", str(work / "db"), "--patients", str(source_patients), "--seed", "1",
            "--image-mb", "0.02")
    aged = age(work / "db", 10)
    for args in (("init",), ("backup",), ("archive", "now", "--idle"), ("replicate",), ("verify", "--all")):
        rtvault(work, *args)
    return {"source_patients": source_patients, "idle": aged}


def synthetic(work: Path, patients: int) -> dict[str, object]:
    """`patients` synthetic patients, their locations on `primary`, their archives also on `offsite` (but 1 in 30)."""
    filled = json.loads(rtvault(work, "catalog", "fill", "--patients", str(patients), "--force", "--json"))
    with open_catalog(f"sqlite:///{work / 'catalog.sqlite'}") as db, db.transaction():
        for table in ("locations", "indexed"):
            db.execute(f"UPDATE {table} SET store = 'primary' WHERE store = 'synthetic'")
        db.execute("INSERT INTO locations (version, patient, store, kind, ref, time, file, volume, damaged) "
                   "SELECT version, patient, 'offsite', kind, ref, time, file, volume, damaged FROM locations "
                   "WHERE store = 'primary' AND kind = 'archive' AND patient % 30 <> 0 AND file LIKE 'PINNACLE_%'")
        locations = db.one("SELECT COUNT(*) FROM locations")[0]
    return {"patients": patients, "locations": locations, "fill_s": filled.get("seconds"),
            "catalog_bytes": (work / "catalog.sqlite").stat().st_size}


def measure(work: Path) -> dict[str, object]:
    cmd = [sys.executable, "-m", "rtvault", "--config", str(work / "rtvault.toml"), "reconcile", "--json"]
    env = {k: v for k, v in os.environ.items() if k != "RTVAULT_CONFIG"}
    first = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)  # warm-up, untimed
    if first.returncode:
        raise SystemExit(f"rtvault reconcile failed ({first.returncode}): {first.stderr.strip()[-2000:]}")
    seconds = []
    for _run in range(RUNS):
        started = time.perf_counter()
        subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=True)
        seconds.append(time.perf_counter() - started)
    listing = []
    for _run in range(RUNS):
        started = time.perf_counter()
        source = list_source(work / "db", (".auto.plan*", "*.ErrorLog", "*.Transcript", "*~"))
        listing.append(time.perf_counter() - started)
    found = json.loads(first.stdout)
    return {"seconds": seconds, "median_s": statistics.median(seconds), "listing_median_s": statistics.median(listing),
            "source_files": sum(len(p.files) for p in source.patients.values()),
            "lists": {name: len(entries) for name, entries in found.items()}}


def section(results: dict) -> str:
    s, m = results["site"], results["measure"]
    verdict = "PASS" if m["median_s"] < TARGET_S else "MISS"
    machine_line = ", ".join(f"{k}: {v}" for k, v in results["machine"].items())
    lists = ", ".join(f"{name} {count:,}" for name, count in m["lists"].items())
    return "\n".join([
        SECTION, "",
        f"Generated by `python bench/reconcile.py` ({machine_line}).", "",
        f"Site: a generated Pinnacle source of {s['source_patients']:,} patients ({m['source_files']:,} files; "
        f"{s['idle']:,} last changed two years ago, the others today), backed up into `primary`, the idle ones "
        "archived (`archive now --idle`), replicated to `offsite` (`offsite = true`), both verified; then a SQLite "
        f"catalog of {s['patients']:,} more synthetic patients ({s['locations']:,} locations, "
        f"{s['catalog_bytes'] / 1e6:.0f} MB) held by `primary`, their archives also by `offsite` but one patient "
        "in thirty.", "",
        "| measure | rtvault | target | result |", "|---|---:|---|---|",
        f"| `rtvault reconcile --json`, median of {RUNS} runs (a new process each) | {m['median_s']:.2f} s | "
        f"< {TARGET_S:.0f} s | **{verdict}** |",
        f"| of which the source's listing (a backup's; in-process, median) | {m['listing_median_s']:.2f} s | — | — |",
        "", "Runs (s): " + ", ".join(f"{x:.2f}" for x in m["seconds"]) + f". Lists: {lists}.", ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000, help="synthetic patients added to the catalog")
    parser.add_argument("--source-patients", type=int, default=500, help="patients of the generated source")
    parser.add_argument("--work", type=Path, help="work directory (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent, help="where results are written")
    args = parser.parse_args()
    precompile()
    work = args.work or Path(tempfile.mkdtemp(prefix="rtvault-bench-reconcile-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        site = {**real_site(work, args.source_patients), **synthetic(work, args.patients)}
        results = {"machine": machine(), "site": site, "measure": measure(work)}
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results-reconcile.json").write_text(json.dumps(results, indent=1) + "\n")
        write_section(args.out / "results.md", "bench/reconcile.py", section(results))
        print(section(results))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
