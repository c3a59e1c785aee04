#!/usr/bin/env python3
"""Side-by-side benchmark of `rtvault archive ingest` and of a one-patient restore from an archive, against
`sha256sum && cp`, `tar -xf`, `tar -xzf` and ratarmount, and of the archive job against `tar -czf`
(bench/archive_job.py); writes bench/results-archive.{md,json} (method at the top of each part). Run as root: it
installs what it needs (apt-get, pip in a venv), drops caches, mounts FUSE."""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from archive_job import job_lines, run_job_bench
from runner import Measure, Runner, output
from sections import write_section

BENCH = Path(__file__).resolve().parent
MIN_TAR = 5.0e9  # apparent bytes of the uncompressed tar, at least
NEED_FREE = 25e9
_LOCAL_CLI = Path(sys.executable).parent / "rtvault"  # the console script, without a pyenv shim in front
RTVAULT = [str(_LOCAL_CLI)] if _LOCAL_CLI.exists() else [sys.executable, "-m", "rtvault"]
# (label, rtvault measure, other measure, target ratio or None)
ROWS: list[tuple[str, str, str, float | None]] = [
    ("ingest big.tar vs `sha256sum && cp`", "ingest_tar", "copy_tar", 1.5),
    ("ingest big.tar vs `sha256sum && cp && sync`", "ingest_tar", "copy_sync_tar", None),
    ("ingest big.tar.gz vs `sha256sum && cp`", "ingest_gz", "copy_gz", None),
    ("restore one patient (tar archive) vs `tar -xf`", "restore_tar", "tar_x", 2.0),
    ("restore one patient (tar.gz archive) vs `tar -xzf`", "restore_gz", "tar_xz", 0.05),
    ("restore one patient (tar archive) vs `tar -xzf`", "restore_tar", "tar_xz", None),
    ("restore (tar) vs ratarmount tar, 1st access (index build)", "restore_tar", "ratar_tar_1st", None),
    ("restore (tar) vs ratarmount tar, 2nd access", "restore_tar", "ratar_tar_2nd", None),
    ("restore (tar.gz) vs ratarmount tar.gz, 1st access (index build)", "restore_gz", "ratar_gz_1st", None),
    ("restore (tar.gz) vs ratarmount tar.gz, 2nd access", "restore_gz", "ratar_gz_2nd", None),
]
RATAR_API = """import os, shutil, stat, sys
from ratarmountcore.mountsource.factory import open_mount_source
archive, index, recreate, inner, out = sys.argv[1:6]
def copy(source, path, target):
    info = source.lookup(path)
    if not stat.S_ISDIR(info.mode):
        with source.open(info) as src, open(target, "wb") as dst:
            return shutil.copyfileobj(src, dst, 1 << 20)
    os.makedirs(target, exist_ok=True)
    for name in source.list(path):
        copy(source, path + "/" + name, os.path.join(target, name))
with open_mount_source(archive, indexFilePath=index, recreateIndex=recreate == "1") as source:
    copy(source, "/" + inner, os.path.join(out, os.path.basename(inner)))
"""  # without FUSE: ratarmount's own library, random access through its index


def ensure_tools(work: Path) -> Path:
    """pigz and fuse3 from Debian when missing; ratarmount in its own venv under WORK. Returns its bin dir."""
    missing = [pkg for pkg, exe in (("pigz", "pigz"), ("fuse3", "fusermount3")) if not shutil.which(exe)]
    if missing:
        subprocess.run(["sh", "-c", f"apt-get update -qq && apt-get install -y -qq {' '.join(missing)} >/dev/null"],
                       check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    venv = work / "rm"
    if not (venv / "bin" / "ratarmount").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "ratarmount"], check=True)
    return venv / "bin"


def apparent_bytes(path: Path) -> int:
    return int(output("du", "-sb", "--apparent-size", str(path)).split()[0])


def build(run: Runner, patients: int, image_mb: float) -> dict:
    """Generate the database (more patients while the tar would be under 5 GB), then big.tar and big.tar.gz."""
    work, db = run.work, run.work / "db"
    while True:
        shutil.rmtree(db, ignore_errors=True)
        gen = run.run([*RTVAULT, "demo", "generate", "--out", str(db), "--patients", str(patients), "--seed", "1",
                       "--image-mb", str(image_mb)])
        size = apparent_bytes(db)
        if size >= MIN_TAR * 1.01:
            break
        patients = math.ceil(patients * MIN_TAR * 1.05 / size)
    shutil.copyfile(db / "Institution_1" / "Institution", db / "Institution")
    run.cold(False)
    tar = run.run(["tar", "-cf", str(work / "big.tar"), "-C", str(db), "Institution", "Institution_1/Mount_0"])
    run.cold(False)
    gz = run.run(["tar", "-I", "pigz", "-cf", str(work / "big.tar.gz"), "-C", str(db), "Institution",
                  "Institution_1/Mount_0"])
    sizes = {f"Institution_1/Mount_0/{p.name}": (apparent_bytes(p), sum(1 for f in p.rglob("*") if f.is_file()))
             for p in (db / "Institution_1" / "Mount_0").iterdir()}
    tar_bytes = (work / "big.tar").stat().st_size
    path = min(sizes, key=lambda p: abs(sizes[p][0] - 0.01 * tar_bytes))
    return {"command": f"rtvault demo generate --patients {patients} --seed 1 --image-mb {image_mb}",
            "patients": patients, "db_bytes": size, "db_files": sum(1 for f in db.rglob("*") if f.is_file()),
            "tar_bytes": tar_bytes, "gz_bytes": (work / "big.tar.gz").stat().st_size,
            "tar_members": len(output("tar", "-tf", str(work / "big.tar")).splitlines()),
            "patient": {"path": path, "bytes": sizes[path][0], "files": sizes[path][1],
                        "share": sizes[path][0] / tar_bytes},
            "times": {"generate": asdict(gen), "tar": asdict(tar), "tar_gz_pigz": asdict(gz)}}


def new_store(run: Runner, name: str) -> Path:
    """A fresh store (each ingest must find an empty one) and its config file."""
    store, config = run.work / "stores" / name, run.work / "stores" / f"{name}.toml"
    shutil.rmtree(store, ignore_errors=True)
    store.parent.mkdir(exist_ok=True)
    config.write_text(f'[stores.primary]\npath = "{store}"\n')
    run.run([*RTVAULT, "--config", str(config), "init"])
    return config


def ingest_round(run: Runner, rep: int, results: dict[str, list[dict]]) -> tuple[Path, dict[str, str]]:
    """One measurement of each ingest and its baseline (the order rotates every round); returns the store."""
    work, copy, ids = run.work, run.work / "copy", {}
    config = new_store(run, "bench")
    copy.mkdir(exist_ok=True)

    def ingest(kind: str, name: str) -> None:
        out = work / "logs" / f"ingest-{kind}-{rep}.json"
        run.cold()
        results[f"ingest_{kind}"].append(asdict(run.run([*RTVAULT, "--config", str(config), "archive", "ingest",
                                                        str(work / name), "--json"], stdout=out)))
        ids[kind] = json.loads(out.read_text())["archives"][0]["id"]

    def baseline(kind: str, name: str) -> None:
        (copy / name).unlink(missing_ok=True)
        run.cold()
        measure = run.run(["sh", "-c", f'sha256sum "{work / name}" && cp "{work / name}" "{copy}/"'])
        synced = run.run(["sync"])
        results[f"copy_{kind}"].append(asdict(measure))
        results[f"copy_sync_{kind}"].append(asdict(Measure(round(measure.wall_s + synced.wall_s, 3),
                                                           round(measure.cpu_s + synced.cpu_s, 3), measure.maxrss_kb)))

    steps = [lambda: ingest("tar", "big.tar"), lambda: baseline("tar", "big.tar"),
             lambda: ingest("gz", "big.tar.gz"), lambda: baseline("gz", "big.tar.gz")]
    for step in steps[rep % 4:] + steps[: rep % 4]:
        step()
    shutil.rmtree(copy, ignore_errors=True)
    return config, ids


def ratar_cmd(bin_dir: Path, archive: Path, index: Path, first: bool, inner: str, out: Path) -> list[str]:
    """Mount (or, without FUSE, open through ratarmountcore), copy the patient out, unmount."""
    if not Path("/dev/fuse").exists():
        return [str(bin_dir / "python"), "-c", RATAR_API, str(archive), str(index), str(int(first)), inner, str(out)]
    mnt = index.with_suffix(".mnt")
    mnt.mkdir(exist_ok=True)
    ratar = f'"{bin_dir / "ratarmount"}"'
    start = f'rm -f "{index}"\n{ratar} --recreate-index' if first else ratar
    return ["bash", "-ec", f'{start} --index-file "{index}" "{archive}" "{mnt}"\n'
            f'trap \'fusermount3 -u "{mnt}"\' EXIT\ncp -a "{mnt}/{inner}" "{out}/"']


Restore = tuple[list[str], Path, Path]  # the command, its output directory, where the patient's tree lands


def restore_cmds(run: Runner, bin_dir: Path, config: Path, ids: dict[str, str], patient: str,
                 outs: Path) -> dict[str, Restore]:
    """Each one-patient restore, measured from the same archives."""
    work, name = run.work, Path(patient).name
    (work / "rm-index").mkdir(exist_ok=True)
    base = [*RTVAULT, "--config", str(config), "restore", "--patient", patient]
    cmds = {f"restore_{k}": ([*base, "--to", str(outs / k), "--from-archive", ids[k]], outs / k, outs / k / patient)
            for k in ("tar", "gz")}
    for key, flag, archive in (("tar_x", "-xf", "big.tar"), ("tar_xz", "-xzf", "big.tar.gz")):
        cmds[key] = (["tar", "-C", str(outs / key), flag, str(work / archive), patient], outs / key,
                     outs / key / patient)
    for kind, archive in (("tar", work / "big.tar"), ("gz", work / "big.tar.gz")):
        for first, nth in ((True, "1st"), (False, "2nd")):
            key, index = f"ratar_{kind}_{nth}", work / "rm-index" / f"{kind}.index.sqlite"
            cmds[key] = (ratar_cmd(bin_dir, archive, index, first, patient, outs / key), outs / key,
                         outs / key / name)
    return cmds


def restore_round(run: Runner, cmds: dict[str, Restore], cold: bool, suffix: str,
                  results: dict[str, list[dict]]) -> None:
    for key, (cmd, out, _tree) in cmds.items():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        run.cold(cold)
        results[key + suffix].append(asdict(run.run(cmd)))


def hash_tree(root: Path) -> dict[str, str]:
    return {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


def verify(cmds: dict[str, Restore]) -> dict[str, str]:
    """Every restored patient tree against `tar -xf`'s extraction, file by file (SHA-256 of the content)."""
    expected, verdicts = hash_tree(cmds["tar_x"][2]), {}
    for key, (_cmd, _out, where) in cmds.items():
        got = hash_tree(where)
        missing, extra = expected.keys() - got.keys(), got.keys() - expected.keys()
        differ = [n for n in expected.keys() & got.keys() if expected[n] != got[n]]
        verdicts[key] = (f"identical ({len(got)} files)" if expected and not (missing or extra or differ) else
                         f"MISMATCH: {len(missing)} missing, {len(extra)} extra, {len(differ)} differ")
    return verdicts


def profile(run: Runner, config: Path, ids: dict[str, str], patient: str) -> dict[str, str]:
    """cProfile (warm, one run each) of both ingests into a fresh store and of a restore from each archive."""
    fresh, out = new_store(run, "profile"), {}
    jobs = {f"ingest_{k}": ["--config", str(fresh), "archive", "ingest", str(run.work / name)]
            for k, name in (("tar", "big.tar"), ("gz", "big.tar.gz"))}
    jobs.update({f"restore_{k}": ["--config", str(config), "restore", "--patient", patient, "--to",
                                  str(run.work / "profile-out" / k), "--from-archive", ids[k]] for k in ("tar", "gz")})
    for name, args in jobs.items():
        prof = run.work / "logs" / f"{name}.prof"
        run.cold(False)
        run.run([sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "rtvault", *args])
        text = output(sys.executable, "-c", "import pstats, sys; pstats.Stats(sys.argv[1]).sort_stats('tottime')"
                      ".print_stats(14)", str(prof))
        out[name] = text[text.find("function calls"):]
    shutil.rmtree(fresh.with_suffix(""), ignore_errors=True)
    return out


def machine(run: Runner, ratar: Path) -> dict[str, str]:
    cpu = output("sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")
    src = output(sys.executable, "-c", "import rtvault, pathlib; print(pathlib.Path(rtvault.__file__).parents[2])")
    disk = output("df", "-hT", str(run.work)).splitlines()[-1].split()
    return {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "nproc": output("nproc"),
            "memory": f"{int(Path('/proc/meminfo').read_text().split()[1]) / 2**20:.1f} GiB (MemTotal)",
            "cpu": cpu or "?", "disk": f"{disk[0]} ({disk[1]}): {disk[2]} total, {disk[4]} free",
            "os": platform.platform(), "python": platform.python_version(),
            "rtvault": f"{output(*RTVAULT, '--version')} from {src} (git "
                       f"{output('git', '-C', src, 'describe', '--always', '--dirty') or '?'})",
            "tar": output("tar", "--version").splitlines()[0], "pigz": output("pigz", "--version"),
            "sha256sum": output("sha256sum", "--version").splitlines()[0],
            "ratarmount": " ".join(line for line in output(str(ratar / "ratarmount"), "--version").splitlines()
                                   if line.startswith(("ratarmount", "rapidgzip", "indexed_gzip")))}


def medians(runs: dict[str, list[dict]]) -> dict[str, float]:
    return {key: round(statistics.median(m["wall_s"] for m in ms), 3) for key, ms in runs.items() if ms}


def table(med: dict[str, float], suffix: str) -> list[str]:
    lines = ["| comparison | rtvault s | other s | ratio | target | result |", "|---|---:|---:|---:|---|---|"]
    for label, mine, other, target in ROWS:
        if mine + suffix not in med:
            continue
        a, b = med[mine + suffix], med[other + suffix]
        goal, verdict = ("—", "—") if target is None else (f"≤ {target}×", "PASS" if a / b <= target else "MISS")
        lines.append(f"| {label} | {a:.2f} | {b:.2f} | {a / b:.3f}× | {goal} | {verdict} |")
    return lines


def save_json(out: Path, key: str | None, results: dict) -> None:
    """results-archive.json: the ingest part at the top level, the archive job under "archive_job"; a run of one
    part keeps the other's figures."""
    path = out / "results-archive.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    new = {**old, key: results} if key else {**results, **({"archive_job": old["archive_job"]} if "archive_job" in
                                                           old else {})}
    path.write_text(json.dumps(new, indent=1) + "\n")


def write_job(results: dict, out: Path) -> None:
    save_json(out, "archive_job", results)
    text = "\n".join(job_lines(results))
    write_section(out / "results-archive.md", "bench/archive.py: archive job", text)
    write_section(out / "results.md", "bench/archive.py: archive job", text)


def write_results(results: dict, out: Path) -> None:
    save_json(out, None, results)
    b, m, med = results["build"], results["machine"], results["medians"]
    state = "cold (page cache dropped before each)" if results["cold"] else "page cache NOT dropped (not root?)"
    lines = [
        "# rtvault archive ingest and one-patient restore vs sha256sum+cp, tar and ratarmount", "",
        "## Method", "",
        f"Generated by `python bench/archive.py` on {m['date']}. A synthetic database (`{b['command']}`) is put in "
        "Pinnacle's archive layout (`Institution` copied to the root) and tarred twice: `tar -cf big.tar -C db "
        "Institution Institution_1/Mount_0`, and the same with `-I pigz` (a standard gzip). Then, in one run:", "",
        "- ingest: `rtvault --config F archive ingest ARCHIVE --json` into a fresh store (`init` untimed) vs "
        "`sha256sum ARCHIVE && cp ARCHIVE copy/` (not fsynced: the `&& sync` row adds a `sync` run right after "
        "it, as rtvault fsyncs what it stores). For big.tar.gz rtvault also decompresses the archive and stores "
        "every member as a zstd object (random access later); sha256sum and cp only read and copy the gzip file.",
        "- one-patient restore: `rtvault --config F restore --patient P --to OUT --from-archive ID` (ID: the "
        "ingested big.tar, or big.tar.gz; rtvault also writes a filtered `Institution` file at OUT) vs "
        "`tar -C OUT -xf big.tar P`, `tar -C OUT -xzf big.tar.gz P`, and ratarmount: `ratarmount "
        "[--recreate-index] --index-file I ARCHIVE MNT; cp -a MNT/P OUT/; fusermount3 -u MNT`, all three "
        "timed (the cpu column misses ratarmount's daemon). 1st access: no index file, `--recreate-index` "
        "(builds the index; for the tar.gz, decompresses all of it); 2nd access: the index file exists.",
        f"- each measure {results['repeat']} times, the median of the wall-clock times; ingest steps rotate their "
        f"order each round; every measured command runs {state}, after an untimed `sync` (no command pays for "
        "the write-back of the one before). The restores are repeated warm (no drop) in a second table. "
        f"Process start-up is always included; rtvault runs as `{' '.join(RTVAULT)}`.",
        "- verification: each restored patient tree is hashed file by file (SHA-256) and compared with "
        "`tar -xf`'s extraction of the same path (names and contents).", "",
        "## Machine", "", *[f"- {k}: {v}" for k, v in m.items() if k != "date"], "",
        "## Archives", "",
        f"- database: {b['db_bytes'] / 1e9:.3f} GB apparent, {b['db_files']} files, {b['patients']} patients",
        f"- big.tar: {b['tar_bytes']:,} bytes ({b['tar_bytes'] / 1e9:.3f} GB), {b['tar_members']} members; "
        f"rtvault indexed {results['members']['tar']} members",
        f"- big.tar.gz: {b['gz_bytes']:,} bytes ({b['gz_bytes'] / 1e9:.3f} GB), same members; rtvault indexed "
        f"{results['members']['gz']} members",
        f"- builds (warm, once): generate {b['times']['generate']['wall_s']:.1f} s, tar -cf "
        f"{b['times']['tar']['wall_s']:.1f} s, tar -I pigz -cf {b['times']['tar_gz_pigz']['wall_s']:.1f} s",
        f"- patient restored: `{b['patient']['path']}`: {b['patient']['files']} files, "
        f"{b['patient']['bytes'] / 1e6:.1f} MB ({100 * b['patient']['share']:.2f} % of big.tar)", "",
        f"## Results ({'cold' if results['cold'] else 'warm'}, median of {results['repeat']})", "",
        *table(med, ""), "", "## One-patient restores, warm (page cache not dropped)", "", *table(med, "_warm"), "",
        "## Every measure (median wall s; cpu s and peak RSS MB of the median run)", "",
        "| measure | wall s | all runs (wall s) | cpu s | RSS MB |", "|---|---:|---|---:|---:|",
    ]
    for key, runs in results["runs"].items():
        mid = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
        walls = ", ".join(f"{r['wall_s']:.2f}" for r in runs)
        lines.append(f"| {key} | {med[key]:.3f} | {walls} | {mid['cpu_s']:.2f} | {mid['maxrss_kb'] / 1024:.0f} |")
    lines += ["", "## Verification (restored patient tree vs `tar -xf`'s, SHA-256 file by file)", "",
              *[f"- {k}: {v}" for k, v in results["verification"].items()]]
    for name, text in results.get("profiles", {}).items():
        lines += ["", f"## cProfile: {name} (warm, one run, top 14 by own time)", "", "```", text, "```"]
    write_section(out / "results-archive.md", "bench/archive.py: ingest and restore", "\n".join(lines))


def benchmark(work: Path, args: argparse.Namespace) -> dict:
    run = Runner(work)
    bin_dir = ensure_tools(work)
    results: dict = {"repeat": args.repeat, "cold": run.can_drop, "machine": machine(run, bin_dir)}
    print("building the archives ...", flush=True)
    results["build"] = build(run, args.patients, args.image_mb)
    shutil.rmtree(work / "db")
    runs: defaultdict[str, list[dict]] = defaultdict(list)
    for rep in range(args.repeat):
        print(f"ingest round {rep + 1}/{args.repeat} ...", flush=True)
        config, ids = ingest_round(run, rep, runs)
    patient = results["build"]["patient"]["path"]
    cmds = restore_cmds(run, bin_dir, config, ids, patient, work / "out")
    for suffix, cold in (("", True), ("_warm", False)):
        for rep in range(args.repeat):
            print(f"restore round {rep + 1}/{args.repeat}{suffix} ...", flush=True)
            restore_round(run, cmds, cold, suffix, runs)
    results["verification"] = verify(cmds)
    results["members"] = {k: len(json.loads(output(*RTVAULT, "--config", str(config), "archive", "show", ids[k],
                                                   "--json"))["members"]) for k in ("tar", "gz")}
    results.update(runs=runs, medians=medians(runs), ids=ids)
    if args.profile:
        print("profiling ...", flush=True)
        results["profiles"] = profile(run, config, ids, patient)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("all", "ingest", "job"), default="all",
                        help="ingest: archive ingest and one-patient restores; job: the archive job and the clinical "
                             "day before it (bench/archive_job.py); all: both.")
    parser.add_argument("--work", type=Path, help="Work directory (default: a new /tmp/rtvault-archive-*).")
    parser.add_argument("--keep", action="store_true", help="Keep the work directory at the end.")
    parser.add_argument("--patients", type=int, default=193, help="Patients to generate (raised if under 5 GB).")
    parser.add_argument("--image-mb", type=float, default=12.0, help="CT image set size per patient, MB.")
    parser.add_argument("--job-patients", type=int, default=118, help="Patients of the archive job's database.")
    parser.add_argument("--job-image-mb", type=float, default=8.0, help="Its CT image set size per patient, MB.")
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each measure (median reported).")
    parser.add_argument("--no-profile", dest="profile", action="store_false", help="Skip the cProfile runs.")
    parser.add_argument("--out", type=Path, default=BENCH, help="Where to write the results files.")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: apt-get, drop_caches and FUSE need it")
    work = (args.work or Path(tempfile.mkdtemp(prefix="rtvault-archive-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.part != "job" and shutil.disk_usage(work).free < NEED_FREE:
        raise SystemExit(f"{work}: {shutil.disk_usage(work).free / 1e9:.1f} GB free, {NEED_FREE / 1e9:.0f} needed")
    try:
        if args.part != "job":
            write_results(benchmark(work, args), args.out)
        if args.part != "ingest":
            write_job(run_job_bench(Runner(work), args.job_patients, args.job_image_mb, args.repeat), args.out)
        print((args.out / "results-archive.md").read_text())
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
