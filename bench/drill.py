"""Restore drills (issue 13): what a drill costs over a plain restore of the same patient, and how close its
extrapolated full-restore time comes to a real full restore.

A generated database (default 118 patients with 8 MB image sets: about 2.3 GB, as bench/backup.py's large
kind) is backed up into a store. Then, side by side in one run:
1. overhead: `rtvault drill --store primary --json` (a random patient restored into scratch space, every file
   re-hashed, the run journalled) against `rtvault restore --patient KEY --snapshot S --to DIR` of the very
   patient the drill chose, each command timed whole (wall clock, interpreter start included), warm page
   cache for both, alternating which goes first; the median ratio of `--repeat` pairs (target ≤ 1.2×);
2. extrapolation: `rtvault drill --store primary --full --json`: the patient drill's `full_estimate_s` against
   the full drill's measured `seconds` of the same run (target: within 25 %).
Writes a section of bench/results.md and bench/results-drill.json.

    .venv/bin/python bench/drill.py                          # about 5 minutes
    .venv/bin/python bench/drill.py --patients 20 --image-mb 2 --repeat 3    # a quick look
"""

from __future__ import annotations

import argparse
import json
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
OVERHEAD_TARGET, ESTIMATE_TARGET = 1.2, 0.25


def _run(config: Path | None, *args: str) -> tuple[float, str]:
    command = [sys.executable, "-m", "rtvault", *(["--config", str(config)] if config else []), *args]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 9):
        raise SystemExit(f"{' '.join(args)}: exit {done.returncode}\n{done.stderr}")
    return seconds, done.stdout


def prepare(work: Path, patients: int, image_mb: float) -> tuple[Path, dict[str, object]]:
    _run(None, "demo", "generate", "--out", str(work / "pinnacle"), "--patients", str(patients), "--seed", "1",
         "--image-mb", str(image_mb))
    config = work / "rtvault.toml"
    config.write_text('[source.pinnacle]\nroot = "pinnacle"\n[stores.primary]\npath = "store"\n'
                      '[catalog]\nurl = "sqlite:///catalog.sqlite"\n[continuity]\ndrill_dir = "drills"\n')
    _run(config, "init")
    _, out = _run(config, "backup", "--json")
    summary = json.loads(out)
    return config, {"patients": patients, "image_mb": image_mb, "bytes": summary.get("bytes_read") or summary}


def overhead(config: Path, work: Path, repeat: int) -> dict[str, object]:
    """Pairs of the same patient, each command warmed once untimed, alternating which goes first."""
    pairs = []
    for index in range(repeat):
        _, out = _run(config, "drill", "--store", "primary", "--json")  # a random patient; warms the cache
        patient = next(d for d in json.loads(out)["drills"] if d["kind"] == "patient")
        target = work / f"restore-{index}"

        def restore(target: Path = target, patient: dict = patient) -> float:
            shutil.rmtree(target, ignore_errors=True)
            seconds, _ = _run(config, "restore", "--patient", patient["key"], "--snapshot", patient["snapshot"],
                              "--to", str(target))
            return seconds

        def drill(patient: dict = patient) -> float:
            return _run(config, "drill", "--store", "primary", "--patient", patient["key"])[0]

        restore()  # warm
        if index % 2:
            restore_s, drill_s = restore(), drill()
        else:
            drill_s, restore_s = drill(), restore()
        pairs.append({"patient": patient["key"], "bytes": patient["bytes"], "drill_s": round(drill_s, 3),
                      "restore_s": round(restore_s, 3), "ratio": round(drill_s / restore_s, 3)})
        shutil.rmtree(target, ignore_errors=True)
    return {"pairs": pairs, "median_ratio": statistics.median(p["ratio"] for p in pairs)}


def extrapolation(config: Path, repeat: int) -> dict[str, object]:
    runs = []
    for _ in range(repeat):
        _, out = _run(config, "drill", "--store", "primary", "--full", "--json")
        drills = json.loads(out)["drills"]
        patient = next(d for d in drills if d["kind"] == "patient")
        full = next(d for d in drills if d["kind"] == "full")
        runs.append({"patient": patient["key"], "patient_bytes": patient["bytes"],
                     "estimate_s": patient["full_estimate_s"], "full_s": full["seconds"],
                     "error": round(abs(patient["full_estimate_s"] - full["seconds"]) / full["seconds"], 3)})
    return {"runs": runs, "median_error": statistics.median(r["error"] for r in runs)}


def report(result: dict) -> str:
    o, e, site = result["overhead"], result["extrapolation"], result["site"]
    o_ok, e_ok = o["median_ratio"] <= OVERHEAD_TARGET, e["median_error"] <= ESTIMATE_TARGET
    lines = ["# Restore drills", "",
             f"Generated by `python bench/drill.py` on {result['when']}: a generated database of {site['patients']} "
             f"patients with {site['image_mb']:g} MB image sets, backed up into a directory store.", "",
             "| measure | rtvault | compared with | ratio / error | target | result |", "|---|---:|---:|---:|---|---|",
             f"| `drill --store primary` vs `restore --patient` of the same patient (s, median of {len(o['pairs'])}) "
             f"| {statistics.median(p['drill_s'] for p in o['pairs']):.2f} | "
             f"{statistics.median(p['restore_s'] for p in o['pairs']):.2f} | {o['median_ratio']:.2f}× | "
             f"≤ {OVERHEAD_TARGET}× | **{'PASS' if o_ok else 'MISS'}** |",
             f"| extrapolated full restore vs a real `--full` drill (s, median of {len(e['runs'])}) | "
             f"{statistics.median(r['estimate_s'] for r in e['runs']):.2f} | "
             f"{statistics.median(r['full_s'] for r in e['runs']):.2f} | {100 * e['median_error']:.0f} % | "
             f"≤ {100 * ESTIMATE_TARGET:.0f} % | **{'PASS' if e_ok else 'MISS'}** |", ""]
    lines += [f"- pair: {p['patient']} ({p['bytes'] / 1e6:.1f} MB): drill {p['drill_s']} s, restore "
              f"{p['restore_s']} s" for p in o["pairs"]]
    lines += [f"- extrapolation from {r['patient']} ({r['patient_bytes'] / 1e6:.1f} MB): {r['estimate_s']} s "
              f"estimated, {r['full_s']} s measured" for r in e["runs"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=118)
    parser.add_argument("--image-mb", type=float, default=8.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=BENCH)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rtvault-bench-drill-") as scratch:
        work = Path(scratch)
        config, site = prepare(work, args.patients, args.image_mb)
        result = {"when": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "site": site,
                  "overhead": overhead(config, work, args.repeat), "extrapolation": extrapolation(config, 3)}
    (args.out / "results-drill.json").write_text(json.dumps(result, indent=1) + "\n")
    text = report(result)
    write_section(args.out / "results.md", "bench/drill.py", text)
    print(text)


if __name__ == "__main__":
    main()
