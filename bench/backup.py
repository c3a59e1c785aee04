#!/usr/bin/env python3
"""Side-by-side benchmark of rtvault against restic and borg on two kinds of database (see bench/README.md).

One run measures, for each kind ("large": large CT images; "small": 2,000 patients of small files) and each tool:
init, first backup, no-change backup (quiet disk, then right after 1.5 GB of unrelated writes), one clinical day
with a deleted patient (rtvault's archive timed apart, beside `tar -czf` of that patient), restores (everything
with the page cache dropped) verified byte for byte, the full data check, store sizes, the durable writes and
store files of a first backup (and rtvault's S3 requests), and incremental replication against `rsync -a`.
Writes its section of bench/results.md and bench/results.json.
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
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import counts
import replicate
from report import machine, write_results
from tools import (
    QUIET,
    TOOLS,
    Measure,
    Rtvault,
    Tool,
    drop_caches,
    ensure_tools,
    json_tail,
    make_tools,
    precompile,
    wait_quiet,
)
from trees import (
    apparent_bytes,
    compare,
    file_count,
    generate_patients,
    generate_size,
    hash_tree,
    patient_dirs,
    pick_patient,
    rtvault_cli,
)

BENCH = Path(__file__).resolve().parent
KINDS = {"large": "large images", "small": "many small files"}
UNRELATED_BYTES = 1_500_000_000  # "right after 1.5 GB of unrelated writes to the same file system"


class Bench:
    """The tools on one database, the steps measured so far, and the order they run in (rotated at every step)."""

    def __init__(self, work: Path, db: Path) -> None:
        self.work, self.db = work, db
        self.tools: list[Tool] = make_tools(work, db)
        self.steps: dict[str, dict[str, dict]] = {}
        self.verified: dict[str, dict[str, str]] = {}
        self.count = 0

    def tool(self, name: str) -> Tool:
        return next(t for t in self.tools if t.name == name)

    def each(self, step: str, action: Callable[[Tool], Measure], *, cold: bool = False,
             before: Callable[[Tool], None] | None = None, after: Callable[[Tool], None] | None = None) -> None:
        shift = self.count % len(self.tools)
        self.count += 1
        for tool in self.tools[shift:] + self.tools[:shift]:
            wait_quiet()
            dropped = drop_caches() if cold else os.sync()  # nobody pays for the previous one's write-back
            if before:
                before(tool)
            measure = action(tool)
            if after:
                after(tool)
            self.steps.setdefault(step, {})[tool.name] = {**asdict(measure), **({"cold": dropped} if cold else {})}
            print(f"  {step:22} {tool.name:8} {measure.wall_s:8.2f} s  cpu {measure.cpu_s:8.2f} s  "
                  f"rss {measure.maxrss_kb / 1024:7.0f} MB  others {measure.others_cpu_s:6.2f} s", flush=True)

    def restore(self, step: str, expected: dict[str, tuple[int, str]], patient: str | None, cold: bool) -> None:
        def action(tool: Tool) -> Measure:
            target = self.work / "restore" / f"{tool.name}-{step}"
            target.mkdir(parents=True)
            cmd, root = tool.restore_cmd(target, patient)
            measure = tool.run(cmd, target)
            self.verified.setdefault(step, {})[tool.name] = compare(expected, root)
            shutil.rmtree(target)
            return measure
        self.each(step, action, cold=cold)


def write_unrelated(path: Path) -> None:
    """UNRELATED_BYTES of another program's data, left dirty in the page cache (no sync)."""
    block = os.urandom(1 << 20) * 16
    with open(path, "wb") as f:
        for _ in range(UNRELATED_BYTES // len(block) + 1):
            f.write(block)


def clinical_day(bench: Bench, work: Path, db: Path) -> dict[str, object]:
    """`demo evolve --day 1` then a backup with each tool; rtvault's archive of the deleted patient timed apart
    (from its --json `archive_s` when it reports one, else by bench/rtvault_driver.py), and `tar -czf` of it."""
    before = patient_dirs(db)
    rtvault_cli(["demo", "evolve", "--db", str(db), "--day", "1"], work / "logs" / "evolve.log")
    deleted = sorted(before - patient_dirs(db))
    day: dict[str, object] = {"deleted": deleted}

    def action(tool: Tool) -> Measure:
        if not isinstance(tool, Rtvault):
            return tool.run(tool.backup_cmd("day1"))
        report = work / "logs" / "day1-driver.json"
        measure = tool.run(tool.driven_backup_cmd(report))
        out, driven = json_tail(tool.last_stdout), json.loads(report.read_text())
        reported = "archive_s" in out
        archive_s = float(out["archive_s"] if reported else driven.get("archive_s", 0.0))
        day.update(archive_s=archive_s, archived=out.get("archived"), duration_s=out.get("duration_s"),
                   archive_after_snapshot=reported, snapshot_s=round(measure.wall_s - archive_s, 3),
                   archive_timed_by="backup --json archive_s" if reported else
                   driven.get("archive_hook", "bench/rtvault_driver.py (time in jobs.backup.archive_deleted)"))
        return measure

    bench.each("day1_backup", action)
    if deleted:  # tar -czf of the deleted patient(s), restored untimed from rtvault's store
        target = work / "restore" / "deleted"
        for path in deleted:
            tool = bench.tool("rtvault")
            tool.run([*tool.base, "restore", "--patient", path, "--to", str(target)])
        runs = []
        for _ in range(3):
            wait_quiet()
            os.sync()
            runs.append(counts.tar_czf(deleted, target, work / "deleted.tar.gz", work / "logs" / "tar.log").wall_s)
        day.update(tar_czf_s=round(statistics.median(runs), 3), tar_czf_runs=runs,
                   tar_gz_bytes=(work / "deleted.tar.gz").stat().st_size, deleted_bytes=apparent_bytes(target))
        shutil.rmtree(target)
        print(f"  archive job {day.get('archive_s')} s vs tar -czf {day['tar_czf_s']} s", flush=True)
    return day


def replication_config(work: Path, db: Path, primary: Path) -> Path:
    config = work / "replicate" / "rtvault.toml"
    config.parent.mkdir(exist_ok=True)
    config.write_text(f'[source.pinnacle]\nroot = "{db}"\n\n[stores.primary]\npath = "{primary}"\n\n'
                      f'[stores.secondary]\npath = "{work / "replicate" / "secondary"}"\ncopy_of = "primary"\n')
    return config


def run_kind(kind: str, work: Path, args: argparse.Namespace) -> dict:
    for sub in ("logs", "repos", "restore", "cache"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    db, log = work / "db", work / "logs" / "generate.log"
    print(f"== {KINDS[kind]} ({work})", flush=True)
    if kind == "large":
        database = generate_size(db, args.size_gb, args.image_mb, log)
    else:
        database = generate_patients(db, args.small_patients, args.small_image_mb, log)
    bench = Bench(work, db)
    bench.each("init", lambda tool: tool.run(tool.init_cmd))
    bench.each("first_backup", lambda tool: tool.run(tool.backup_cmd("day0")))
    first_store = {t.name: apparent_bytes(t.repo) for t in bench.tools}
    first_files = {t.name: file_count(t.repo) for t in bench.tools}
    bench.each("nochange_backup", lambda tool: tool.run(tool.backup_cmd("day0-again")))
    unrelated = work / "unrelated.bin"  # outside the database, on the same file system
    bench.each("nochange_after_writes", lambda tool: tool.run(tool.backup_cmd("day0-after-writes")),
               before=lambda tool: write_unrelated(unrelated), after=lambda tool: unrelated.unlink())

    primary = bench.tool("rtvault").repo  # replication: both copies made before the day (untimed)
    config = replication_config(work, db, primary)
    replicate.rtvault(config, "init")
    replicate.rtvault(config, "replicate")
    replicate.run("rsync", "-a", f"{primary}/", f"{work / 'replicate' / 'mirror'}/")

    day = clinical_day(bench, work, db)
    for name in ("secondary", "mirror"):
        shutil.copytree(work / "replicate" / name, work / "replicate" / f"{name}.saved", symlinks=True)
    wait_quiet()
    replication = replicate.measure(work / "replicate", config, args.repeat, primary)
    print(f"  replication rtvault {replication['rtvault_s']} s vs rsync -a {replication['rsync_s']} s", flush=True)
    shutil.rmtree(work / "replicate", ignore_errors=True)

    source = hash_tree(db, skip_transient=True)  # the restores, of the day-1 state
    patient, patient_bytes = pick_patient(source)
    in_patient = {k: v for k, v in source.items() if k.startswith(patient + "/")}
    bench.restore("restore_patient", in_patient, patient, cold=False)
    bench.restore("restore_all", source, None, cold=True)
    bench.each("check_read_data", lambda tool: tool.run(tool.check_cmd()), cold=True)
    for n in range(2, args.days + 1):
        rtvault_cli(["demo", "evolve", "--db", str(db), "--day", str(n)], work / "logs" / "evolve.log")
        bench.each(f"day{n}_backup", lambda tool, n=n: tool.run(tool.backup_cmd(f"day{n}")))
    result = {
        "label": KINDS[kind],
        "database": {**database, "backed_up_files": len(source), "backed_up_bytes": sum(s for s, _ in source.values()),
                     "patient": patient, "patient_bytes": patient_bytes, "patient_files": len(in_patient)},
        "steps": bench.steps, "verified": bench.verified, "days": args.days, "day1": day,
        "replication": replication, "store_bytes_first": first_store, "store_files_first": first_files,
        "store_bytes": {t.name: apparent_bytes(t.repo) for t in bench.tools},
        "store_files": {t.name: file_count(t.repo) for t in bench.tools},
        "peak_rss_kb": {t: max(s[t]["maxrss_kb"] for s in bench.steps.values()) for t in TOOLS},
    }
    if not args.no_counts:
        result["first_backup_counts"] = counts.first_backup_counts(work, db)
    if kind in args.s3:
        result["s3_first_backup"] = counts.s3_first_backup(work, db)
        print(f"  s3 first backup {result['s3_first_backup']}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default="large,small", help="which databases, comma-separated (default both)")
    parser.add_argument("--size-gb", type=float, default=2.0, help="large images: size, GiB (at least; default 2)")
    parser.add_argument("--image-mb", type=float, default=8, help="large images: CT set size, MB (default 8)")
    parser.add_argument("--small-patients", type=int, default=2000, help="many small files: patients (default 2000)")
    parser.add_argument("--small-image-mb", type=float, default=0.05, help="many small files: CT set, MB (0.05)")
    parser.add_argument("--days", type=int, default=1, help="evolved days, each followed by a backup (default 1)")
    parser.add_argument("--repeat", type=int, default=3, help="incremental replication runs (median; default 3)")
    parser.add_argument("--s3", default="small", help="kinds whose first backup also goes to SeaweedFS to count "
                        "S3 requests, comma-separated, or none (default small)")
    parser.add_argument("--no-counts", action="store_true", help="skip the strace'd first backups (fsync counts)")
    parser.add_argument("--quiet-wait", type=int, default=20, help="wait at most this long for a quiet second "
                        "before each measured command (default 20 s)")
    parser.add_argument("--work", type=Path, help="work directory, empty or new (default: a new one under /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (databases, repositories)")
    parser.add_argument("--out", type=Path, default=BENCH, help="where results.md and .json go (default bench/)")
    parser.add_argument("--merge", action="store_true", help="keep the kinds not measured now from OUT/results.json "
                        "(each kind is named with the date and rtvault version it was measured with)")
    parser.add_argument("--report-only", action="store_true", help="measure nothing: write results.md again from "
                        "OUT/results.json (after editing bench/backup-findings.md)")
    args = parser.parse_args()
    if args.report_only:
        print(write_results(json.loads((args.out / "results.json").read_text()), args.out))
        return
    args.s3 = [] if args.s3 == "none" else args.s3.split(",")
    kinds = args.kinds.split(",")
    if unknown := set(kinds) - set(KINDS):
        raise SystemExit(f"unknown kind(s) {sorted(unknown)}: choose from {sorted(KINDS)}")
    QUIET["limit_s"] = args.quiet_wait
    ensure_tools()
    compiled = precompile()
    if args.work and args.work.exists() and any(args.work.iterdir()):
        raise SystemExit(f"{args.work} is not empty: give a new or empty work directory")
    work = (args.work or Path(tempfile.mkdtemp(prefix="rtvault-bench-", dir="/tmp"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"work directory: {work}", flush=True)
    try:
        results = {"machine": machine(work), "command": " ".join(["bench/backup.py", *sys.argv[1:]]),
                   "bytecode": f"compiled before measuring (python -m compileall {compiled})", "kinds": {}}
        earlier = json.loads((args.out / "results.json").read_text()) if args.merge else {}
        for kind in KINDS:
            if kind in kinds:
                results["kinds"][kind] = {**run_kind(kind, work / kind, args), "measured": results["machine"]}
                if not args.keep:
                    shutil.rmtree(work / kind, ignore_errors=True)
            elif kind in earlier.get("kinds", {}):
                results["kinds"][kind] = {"measured": earlier["machine"], **earlier["kinds"][kind]}
        args.out.mkdir(parents=True, exist_ok=True)
        print(write_results(results, args.out))
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        subprocess.run(["sync"], check=False)


if __name__ == "__main__":
    main()
