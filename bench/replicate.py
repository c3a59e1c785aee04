"""Incremental replication after one evolved day: `rtvault replicate` vs `rsync -a` of the same store directory.

Side by side in one run, on the same store: a generated database is backed up into a primary store, copied to
a secondary (`rtvault replicate`) and to a mirror directory (`rsync -a`), then one `demo evolve` day is backed
up and both copy what is new. Each incremental copy starts from the same saved state of its target and is
timed `--repeat` times (median, warm page cache for both, alternating which goes first). Writes a section of
bench/results.md (replacing its previous one) and bench/results-replicate.json.

    .venv/bin/python bench/replicate.py                  # 40 patients x 8 MB images, about a minute
    .venv/bin/python bench/replicate.py --patients 10 --keep --work /tmp/bench-replicate
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
from datetime import UTC, datetime
from pathlib import Path

from sections import write_section  # bench/sections.py

BENCH = Path(__file__).resolve().parent
TARGET = 1.0


def run(*cmd: str | Path) -> tuple[float, str]:
    """Wall seconds and stdout of a command that must succeed."""
    start = time.perf_counter()
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed (exit {done.returncode}): {' '.join(map(str, cmd))}\n{done.stdout}\n{done.stderr}")
    return wall, done.stdout


def rtvault(config: Path, *args: str | Path) -> tuple[float, str]:
    return run(sys.executable, "-m", "rtvault", "--config", config, *args)


def ensure_rsync() -> str:
    if not shutil.which("rsync"):
        if os.geteuid() != 0:
            raise SystemExit("rsync is missing: apt-get install rsync (as root)")
        subprocess.run(["apt-get", "install", "-y", "-q", "rsync"], check=True, capture_output=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return subprocess.run(["rsync", "--version"], capture_output=True, text=True).stdout.splitlines()[0]


def restore_copy(saved: Path, live: Path) -> None:
    shutil.rmtree(live, ignore_errors=True)
    shutil.copytree(saved, live, symlinks=True)


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def prepare(work: Path, patients: int, image_mb: float) -> tuple[Path, dict[str, object]]:
    db, config = work / "db", work / "rtvault.toml"
    config.write_text(f'[source.pinnacle]\nroot = "{db}"\n\n[stores.primary]\npath = "{work / "primary"}"\n\n'
                      f'[stores.secondary]\npath = "{work / "secondary"}"\ncopy_of = "primary"\n\n'
                      f'[catalog]\nurl = "sqlite:///{work / "catalog.sqlite"}"\n')
    run(sys.executable, "-m", "rtvault", "demo", "generate", "--out", db, "--patients", str(patients), "--seed", "1",
        "--image-mb", str(image_mb))
    rtvault(config, "init")
    rtvault(config, "backup")
    first_replicate, _ = rtvault(config, "replicate")
    first_rsync, _ = run("rsync", "-a", f"{work / 'primary'}/", f"{work / 'mirror'}/")
    run(sys.executable, "-m", "rtvault", "demo", "evolve", "--db", db, "--day", "1")
    before = du(work / "primary")
    rtvault(config, "backup")
    for name in ("secondary", "mirror"):
        shutil.copytree(work / name, work / f"{name}.saved", symlinks=True)
    return config, {"first_replicate_s": round(first_replicate, 3), "first_rsync_s": round(first_rsync, 3),
                    "store_bytes": du(work / "primary"), "day_bytes": du(work / "primary") - before}


def measure(work: Path, config: Path, repeat: int, primary: Path | None = None) -> dict[str, object]:
    """Median of `repeat` incremental copies from `primary` (default WORK/primary) by `rtvault replicate` (into
    WORK/secondary, the configuration's copy store) and by `rsync -a` (into WORK/mirror), each round from the saved
    states WORK/secondary.saved and WORK/mirror.saved. bench/backup.py calls it too."""
    primary = primary or work / "primary"
    times: dict[str, list[float]] = {"rtvault": [], "rsync": []}
    inner: list[float] = []
    copied: dict[str, object] = {}
    for round_ in range(repeat):
        restore_copy(work / "secondary.saved", work / "secondary")
        restore_copy(work / "mirror.saved", work / "mirror")
        os.sync()  # neither tool pays for flushing the restored copies (rtvault's barrier syncs the file system)
        order = ["rtvault", "rsync"] if round_ % 2 == 0 else ["rsync", "rtvault"]
        for tool in order:
            if tool == "rsync":
                times["rsync"].append(run("rsync", "-a", f"{primary}/", f"{work / 'mirror'}/")[0])
                continue
            wall, out = rtvault(config, "replicate", "--json")
            pair = json.loads(out)["pairs"][0]
            times["rtvault"].append(wall)
            inner.append(pair["duration_s"])
            copied = {k: pair[k] for k in ("objects_copied", "trees_copied", "snapshots_copied", "archives_copied",
                                           "bytes_copied", "complete")}
    rtvault(config, "check", "--read-data", "--store", "secondary")
    startup = statistics.median(rtvault(config, "--version")[0] for _ in range(repeat))
    return {"startup_s": round(startup, 3), "rtvault_s": round(statistics.median(times["rtvault"]), 3),
            "rsync_s": round(statistics.median(times["rsync"]), 3),
            "replicate_function_s": round(statistics.median(inner), 3), "all_s": times, "copied": copied}


def section(result: dict) -> str:
    m = result["incremental"]
    ratio = m["rtvault_s"] / m["rsync_s"]
    verdict = "PASS" if ratio <= TARGET else "MISS"
    p = result["prepare"]
    return "\n".join([
        "## rtvault replicate vs rsync (`bench/replicate.py`)",
        "",
        f"Generated on {result['date']} ({result['nproc']} CPUs; {result['rsync']}). Database: "
        f"`rtvault demo generate --patients {result['patients']} --seed 1 --image-mb {result['image_mb']}`; "
        f"primary store {p['store_bytes'] / 1e6:.1f} MB after one evolved day, which added "
        f"{p['day_bytes'] / 1e6:.1f} MB. Median of {result['repeat']} runs, each from the same saved target.",
        "",
        "| measure | rtvault replicate | rsync -a | ratio | target | result |",
        "|---|---:|---:|---:|---|---|",
        f"| incremental copy after one evolved day (s) | {m['rtvault_s']:.3f} | {m['rsync_s']:.3f} | "
        f"{ratio:.3f}× | ≤ {TARGET}× | {verdict} |",
        f"| first copy into an empty target (s) | {p['first_replicate_s']:.3f} | {p['first_rsync_s']:.3f} | "
        f"{p['first_replicate_s'] / p['first_rsync_s']:.3f}× | — | — |",
        "",
        f"`rtvault replicate` is the whole command (interpreter start-up, both listings, the copy with every "
        f"object re-read and re-hashed on the target, the catalog update); its `replicate()` itself took "
        f"{m['replicate_function_s']:.3f} s ({m['replicate_function_s'] / m['rsync_s']:.2f}× rsync) and "
        f"`rtvault --version` alone takes {m['startup_s']:.3f} s (the interpreter and the command's imports). "
        f"It copied {m['copied']['objects_copied']} objects, "
        f"{m['copied']['trees_copied']} trees, {m['copied']['snapshots_copied']} snapshot(s) and "
        f"{m['copied']['archives_copied']} archive(s) ({m['copied']['bytes_copied'] / 1e6:.1f} MB); the target "
        "then passed `rtvault check --read-data`. rsync neither verifies nor orders its writes.",
    ])


def write_results(out: Path, result: dict) -> str:
    text = section(result)
    write_section(out / "results.md", "bench/replicate.py", text)
    (out / "results-replicate.json").write_text(json.dumps(result, indent=2) + "\n")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=40)
    parser.add_argument("--image-mb", type=float, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--work", type=Path, help="work directory (default: a new one under /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--out", type=Path, default=BENCH, help="where results.md goes (default bench/)")
    args = parser.parse_args()
    version = ensure_rsync()
    work = args.work or Path(tempfile.mkdtemp(prefix="rtvault-bench-replicate-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        config, prepared = prepare(work, args.patients, args.image_mb)
        result = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "nproc": os.cpu_count(),
                  "rsync": version, "patients": args.patients, "image_mb": args.image_mb, "repeat": args.repeat,
                  "prepare": prepared, "incremental": measure(work, config, args.repeat)}
        print(write_results(args.out, result))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
