#!/usr/bin/env python3
"""Side-by-side benchmark of `rtvault backup` and restore against restic and borg (see bench/README.md).

Wall time, CPU time and peak RSS (the child's own rusage) of each step for each tool on one synthetic Pinnacle
database; full restores verified byte for byte. Writes bench/results.md and bench/results.json.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from sections import write_section  # bench/sections.py
from tools import EXCLUDES, Borg, Measure, Restic, Rtvault, Tool, ensure_tools, wait_quiet  # bench/tools.py

BENCH = Path(__file__).resolve().parent
MB_PER_PATIENT = 18.9e6  # measured at --image-mb 8, seed 1: a first guess, corrected after generation
TOOLS = ("rtvault", "restic", "borg")
MEASURES: dict[str, tuple[str, str, float | None]] = {  # measure: label, unit, target for rtvault/restic
    "first_backup": ("first backup", "s", 0.5),
    "nochange_backup": ("no-change backup", "s", 0.5),
    "day1_backup": ("backup after one evolved day", "s", 0.5),
    "restore_patient": ("restore of one patient", "s", 0.5),
    "restore_all": ("restore of everything, cold cache", "s", 0.7),
    "check_read_data": ("check reading every object, cold cache", "s", 0.7),
    "store_bytes": ("store size after {days} evolved days", "MB", 1.05),
    "peak_rss_kb": ("peak RSS over all steps", "MB", 1.0),
}


def apparent_bytes(path: Path) -> int:
    return int(subprocess.run(["du", "-sb", str(path)], check=True, capture_output=True, text=True).stdout.split()[0])


def hash_tree(root: Path, skip_transient: bool) -> dict[str, tuple[int, str]]:
    """Every regular file under root: relative path -> (size, SHA-256)."""
    found = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if skip_transient and any(fnmatch.fnmatchcase(name, pattern) for pattern in EXCLUDES):
                continue
            with open(path := Path(dirpath) / name, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            found[path.relative_to(root).as_posix()] = (path.stat().st_size, digest)
    return found


def compare(expected: dict[str, tuple[int, str]], root: Path) -> str:
    got = hash_tree(root, skip_transient=False)
    missing, extra = expected.keys() - got.keys(), got.keys() - expected.keys()
    differ = [k for k in expected.keys() & got.keys() if expected[k] != got[k]]
    if not (missing or extra or differ):
        return f"verified ({len(got)} files)"
    examples = sorted(missing | extra)[:3] + differ[:3]
    return f"MISMATCH: {len(missing)} missing, {len(extra)} extra, {len(differ)} differ (e.g. {examples})"


def rtvault_cli(args: list[str], log: Path) -> None:
    with open(log, "ab") as out:
        subprocess.run([sys.executable, "-m", "rtvault", *args], check=True, stdout=out)


def generate(db: Path, size_gb: float, image_mb: float, patients: int | None, log: Path) -> dict[str, object]:
    """Generate `patients`, or at least size_gb GiB (apparent size): regenerated with more patients when short."""
    target = int(size_gb * 2**30)
    n = patients or math.ceil(target / MB_PER_PATIENT * 1.03)
    while True:
        shutil.rmtree(db, ignore_errors=True)
        rtvault_cli(["demo", "generate", "--out", str(db), "--patients", str(n), "--seed", "1",
                     "--image-mb", str(image_mb)], log)
        size = apparent_bytes(db)
        print(f"generated {n} patients, {size / 1e9:.2f} GB", flush=True)
        if patients or size >= target:
            return {"patients": n, "image_mb": image_mb, "bytes": size, "files": sum(len(f[2]) for f in os.walk(db))}
        n = math.ceil(n * target / size * 1.02)


def pick_patient(source: dict[str, tuple[int, str]]) -> tuple[str, int]:
    """The patient of median size: Institution_I/Mount_M/Patient_P and its bytes."""
    sizes: Counter[str] = Counter()
    for rel, (size, _digest) in source.items():
        if rel.count("/") >= 3:  # Institution_I/Mount_M/Patient_P/...
            sizes["/".join(rel.split("/")[:3])] += size
    ranked = sorted(sizes.items(), key=lambda item: item[1])
    return ranked[len(ranked) // 2]


class Bench:
    """The tools, the steps measured so far, and the order they run in (rotated at every step)."""

    def __init__(self, work: Path, db: Path) -> None:
        self.work = work
        self.tools: list[Tool] = [Rtvault(work, db), Restic(work, db), Borg(work, db)]
        self.steps: dict[str, dict[str, dict]] = {}
        self.verified: dict[str, dict[str, str]] = {}
        self.count = 0

    def each(self, step: str, action: Callable[[Tool], Measure], *, cold: bool = False) -> None:
        shift = self.count % len(self.tools)
        self.count += 1
        for tool in self.tools[shift:] + self.tools[:shift]:
            wait_quiet()
            os.sync()  # no tool pays for the write-back of the previous one's files (nor the generator's)
            if cold:  # every tool reads its repository from the disk, as after a disaster
                Path("/proc/sys/vm/drop_caches").write_text("3\n")
            self.steps.setdefault(step, {})[tool.name] = asdict(measure := action(tool))
            print(f"  {step:16} {tool.name:8} {measure.wall_s:8.2f} s  cpu {measure.cpu_s:8.2f} s  "
                  f"rss {measure.maxrss_kb / 1024:7.0f} MB  others {measure.others_cpu_s:6.2f} s", flush=True)

    def restore(self, step: str, expected: dict[str, tuple[int, str]], patient: str | None) -> None:
        def action(tool: Tool) -> Measure:
            target = self.work / "restore" / f"{tool.name}-{step}"
            target.mkdir(parents=True)
            cmd, root = tool.restore_cmd(target, patient)
            measure = tool.run(cmd, target)
            self.verified.setdefault(step, {})[tool.name] = compare(expected, root)
            shutil.rmtree(target)
            return measure
        self.each(step, action, cold=patient is None)


def benchmark(work: Path, size_gb: float, image_mb: float, patients: int | None, days: int) -> dict:
    for sub in ("logs", "repos", "restore", "cache"):
        (work / sub).mkdir(exist_ok=True)
    db = work / "db"
    database = generate(db, size_gb, image_mb, patients, work / "logs" / "generate.log")
    bench = Bench(work, db)
    bench.each("init", lambda tool: tool.run(tool.init_cmd, work))
    bench.each("first_backup", lambda tool: tool.run(tool.backup_cmd("day0"), work))
    first_store = {tool.name: apparent_bytes(tool.repo) for tool in bench.tools}
    bench.each("nochange_backup", lambda tool: tool.run(tool.backup_cmd("day0-again"), work))
    for day in range(1, days + 1):
        rtvault_cli(["demo", "evolve", "--db", str(db), "--day", str(day)], work / "logs" / "evolve.log")
        bench.each(f"day{day}_backup", lambda tool, day=day: tool.run(tool.backup_cmd(f"day{day}"), work))
        if day == 1:  # the restores, of the day-1 state
            source = hash_tree(db, skip_transient=True)
            patient, patient_bytes = pick_patient(source)
            in_patient = {k: v for k, v in source.items() if k.startswith(patient + "/")}
            bench.restore("restore_patient", in_patient, patient)
            bench.restore("restore_all", source, None)
            bench.each("check_read_data", lambda tool: tool.run(tool.check_cmd(), work), cold=True)
    return {
        "database": {**database, "backed_up_files": len(source), "backed_up_bytes": sum(s for s, _ in source.values()),
                     "patient": patient, "patient_bytes": patient_bytes, "patient_files": len(in_patient)},
        "steps": bench.steps, "verified": bench.verified, "days": days, "store_bytes_first": first_store,
        "store_bytes": {tool.name: apparent_bytes(tool.repo) for tool in bench.tools},
        "peak_rss_kb": {t: max(s[t]["maxrss_kb"] for s in bench.steps.values()) for t in TOOLS},
    }


def machine(work: Path) -> dict[str, str]:
    def output(*cmd: str) -> str:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()

    cpus = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")]
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    src = output(sys.executable, "-c", "import rtvault, pathlib; print(pathlib.Path(rtvault.__file__).parents[2])")
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "nproc": output("nproc"),
        "memory": f"{mem_kb / 2**20:.1f} GiB (MemTotal)", "cpu": cpus[0] if cpus else "?",
        "disk": "{} ({}): {} total, {} used, {} free".format(*output("df", "-hT", str(work)).split()[-7:-2]),
        "os": platform.platform(), "python": platform.python_version(),
        "rtvault": f"{output(sys.executable, '-m', 'rtvault', '--version')} from {src} (git "
                   f"{output('git', '-C', src, 'describe', '--always', '--dirty') or '?'})",
        "restic": output("restic", "version"), "borg": output("borg", "--version"),
    }


def values(results: dict, measure: str) -> dict[str, float]:
    """One measure per tool, in its display unit."""
    if measure in ("store_bytes", "peak_rss_kb"):
        return {t: results[measure][t] / (1e6 if measure == "store_bytes" else 1024) for t in TOOLS}
    return {t: results["steps"][measure][t]["wall_s"] for t in TOOLS}


def summary_rows(results: dict) -> list[str]:
    rows = ["| measure | rtvault | restic | borg | rtvault/restic | rtvault/borg | target (vs restic) | result |",
            "|---|---:|---:|---:|---:|---:|---|---|"]
    for measure, (label, unit, target) in MEASURES.items():
        v = values(results, measure)
        r_restic, r_borg = v["rtvault"] / v["restic"], v["rtvault"] / v["borg"]
        verdict = "—" if target is None else ("PASS" if r_restic <= target else "MISS")
        goal = "—" if target is None else f"≤ {target:g}×"
        rows.append(f"| {label.format(days=results['days'])} ({unit}) | {v['rtvault']:.2f} | {v['restic']:.2f} | "
                    f"{v['borg']:.2f} | {r_restic:.3f}× | {r_borg:.3f}× | {goal} | {verdict} |")
        results.setdefault("ratios", {})[measure] = {"vs_restic": round(r_restic, 3), "vs_borg": round(r_borg, 3),
                                                     "target": target, "result": verdict}
    return rows


def step_rows(results: dict) -> list[str]:
    rows = ["| step | " + " | ".join(f"{t} wall s / cpu s / RSS MB / others' cpu s" for t in TOOLS) + " |",
            "|---|" + "---:|" * len(TOOLS)]
    for step, by_tool in results["steps"].items():
        cells = [f"{m['wall_s']:.2f} / {m['cpu_s']:.2f} / {m['maxrss_kb'] / 1024:.0f} / {m['others_cpu_s']:.2f}"
                 for m in (by_tool[t] for t in TOOLS)]
        rows.append(f"| {step} | " + " | ".join(cells) + " |")
    return rows


def write_results(results: dict, out: Path) -> None:
    info, db = results["machine"], results["database"]
    lines = [
        "# rtvault backup vs restic and borg", "", f"Generated by `python bench/backup.py` on {info['date']} "
        "(see bench/README.md for the method).", "", "## Machine", "",
        *(f"- {key}: {info[key]}" for key in ("nproc", "memory", "cpu", "disk", "os", "python")),
        f"- versions: {info['rtvault']}; {info['restic']}; {info['borg']}", "", "## Database", "",
        f"- `rtvault demo generate --patients {db['patients']} --seed 1 --image-mb {db['image_mb']}`: "
        f"{db['bytes'] / 1e9:.3f} GB ({db['bytes'] / 2**30:.3f} GiB) apparent, {db['files']} files; "
        f"{db['backed_up_files']} files, {db['backed_up_bytes'] / 1e9:.3f} GB once transient files are excluded",
        f"- one-patient restore: `{db['patient']}` (median size: {db['patient_files']} files, "
        f"{db['patient_bytes'] / 1e6:.1f} MB)",
        f"- {results['days']} evolved days (`rtvault demo evolve --day D`), each followed by a backup with every tool",
        "", "## Results", "", *summary_rows(results), "",
        "Times are wall-clock seconds of the child process; RSS is its ru_maxrss. Store sizes are `du -sb` "
        "(apparent bytes) of each repository; first-backup store sizes: "
        + ", ".join(f"{t} {results['store_bytes_first'][t] / 1e6:.1f} MB" for t in TOOLS) + ".", "",
        "## Verification (restored tree hashed file by file against the source, transient files excluded)", "",
        "| restore | " + " | ".join(TOOLS) + " |", "|---|" + "---|" * len(TOOLS),
        *(f"| {step} | " + " | ".join(done[t] for t in TOOLS) + " |" for step, done in results["verified"].items()),
        "", "## Every step", "", *step_rows(results), "",
        "## Conditions", "",
        "- Same database and excludes (`" + "`, `".join(EXCLUDES) + "`); zstd level-3 class everywhere: rtvault "
        "zstd (3; byte-shuffled CT at its own level), restic `--compression auto` (repository v2), borg `zstd,3`.",
        "- Encryption differs: restic always encrypts (AES-256-CTR + Poly1305); borg `--encryption=none`; "
        "rtvault does not encrypt at rest in this version.",
        "- The page cache is dropped before the full restore and the check (cold), not otherwise (the database "
        "was just written, so every first backup reads it from memory); tool order rotates at every step; restic's "
        "and borg's caches are not in the store size.",
        "- The machine may be shared: \"others' cpu\" is the CPU time the rest of the machine used during a step "
        "(from /proc/stat); a step where it is large was slowed by someone else.",
    ]
    write_section(out / "results.md", "bench/backup.py", "\n".join(lines))
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=2.0, help="database size, GiB (at least; default 2)")
    parser.add_argument("--image-mb", type=float, default=8, help="CT volume size per image set (default 8)")
    parser.add_argument("--patients", type=int, help="this many patients, whatever their size (with --image-mb "
                        "0.05: a database of many small files)")
    parser.add_argument("--days", type=int, default=7, help="evolved days, each followed by a backup (default 7)")
    parser.add_argument("--work", type=Path, help="work directory, empty or new (default: a new one under /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (database, repositories)")
    parser.add_argument("--out", type=Path, default=BENCH, help="where results.md and .json go (default bench/)")
    args = parser.parse_args()
    ensure_tools()
    if args.work and args.work.exists() and any(args.work.iterdir()):
        raise SystemExit(f"{args.work} is not empty: give a new or empty work directory")
    work = (args.work or Path(tempfile.mkdtemp(prefix="rtvault-bench-", dir="/tmp"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"work directory: {work}", flush=True)
    try:
        results = {"machine": machine(work), **benchmark(work, args.size_gb, args.image_mb, args.patients, args.days)}
        args.out.mkdir(parents=True, exist_ok=True)
        write_results(results, args.out)
        print((args.out / "results.md").read_text())
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
