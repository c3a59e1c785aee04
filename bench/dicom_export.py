#!/usr/bin/env python3
"""The DICOM-RT export of one plan of a 100-slice CT patient: `rtvault export dicom` against `pymedphys pinnacle
export` (0.41), side by side on the same synthetic patient (issue 15: rtvault in at most half pymedphys' time).

A one-patient demo database (`rtvault.demo`, `--seed`) whose image sets have `--slices` slices (the generator
sizes a CT by megabytes: it is generated again with the size corrected until the plan's CT has that many
slices), backed up into a directory store. Then, `--repeat` times each, alternating, into a new directory each
time, both as a user runs them (a new process; wall and CPU time of the child from `os.wait4`, peak RSS from
GNU time):

- `rtvault export dicom --patient PATH --plan ID --to DIR` (read from the snapshot in the store: no restore);
- `pymedphys pinnacle export -m CT -m RTSTRUCT -m RTPLAN -m RTDOSE -p NAME -o DIR PATIENT_DIR` (read from the
  Pinnacle directory itself).

pymedphys lives in its own virtual environment (`--pm-venv`, created when missing with `pymedphys==0.41.*`,
`pydicom<3`, `numpy<2` and `pyyaml`, which it needs beside it and does not declare), patched so it runs on
these files (`PATCHES`, each named in the results). Both interpreters get their bytecode written first (the
machine sets PYTHONDONTWRITEBYTECODE, which would make every rtvault command compile its modules again). Every
file written is then checked with `dciodvfy` (errors counted per modality) when dicom3tools is installed.
Writes its section of bench/results.md and bench/results-dicom-export.json.

    PYTHONPATH=src:tests .venv/bin/python bench/dicom_export.py --repeat 5
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent / "src"), str(BENCH.parent / "tests"), str(BENCH)]

from sections import write_section  # noqa: E402

from kit.config import write_config  # noqa: E402
from rtvault.config import load  # noqa: E402
from rtvault.configured import init_stores  # noqa: E402
from rtvault.demo import generate_database  # noqa: E402
from rtvault.jobs.backup import run_backup  # noqa: E402
from rtvault.pinnacle.treatment import DirectorySource, read_treatment  # noqa: E402
from rtvault.store import Store  # noqa: E402

PYMEDPHYS = ("pymedphys==0.41.*", "pydicom<3", "numpy<2", "pyyaml")
# (file under pymedphys/_pinnacle, text, replacement, why): the fixes pymedphys needs to run on these files
PATCHES = (
    ("rtplan.py", 'beam["SSD"] * 10', '(beam["SSD"] * 10 if "SSD" in beam else None)',
     'a beam without `SSD` in plan.Trial (the demo generator writes none) crashed the RTPLAN with KeyError: '
     'SourceToSurfaceDistance left empty instead'),
    ("rtplan.py", 'plan.primary_image.image["StudyID"]', 'plan.primary_image.image.get("StudyID", "")',
     "`KeyError 'StudyID'` on image sets without a StudyID (the issue's older Patient files; the demo writes one, "
     "so this run does not depend on it): empty StudyID instead"),
    ("rtdose.py", 'plan.primary_image.image["StudyID"]', 'plan.primary_image.image.get("StudyID", "")',
     "the same in the RTDOSE"),
    ("rtstruct.py", 'plan.primary_image.image["StudyID"]', 'plan.primary_image.image.get("StudyID", "")',
     "the same in the RTSTRUCT"),
)


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    maxrss_mb: float
    files: dict[str, int]
    megabytes: float


def run(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """Run a command to its end; its wall time, CPU time (user + system) and peak RSS (MB). SystemExit when it
    fails, with the end of its output. The peak RSS is GNU time's (`%M`) when installed: a child's own
    `ru_maxrss` starts from its parent's at the fork (Linux keeps it across exec), which here is this process's,
    grown by the CT it generated; without GNU time it is left out (NaN)."""
    rss_file = log.with_name("maxrss")
    timer = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file)] if Path("/usr/bin/time").exists() else []
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        started = time.perf_counter()
        child = subprocess.Popen([*timer, *cmd], stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)
        _pid, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{log.read_text(errors='replace')[-3000:]}")
    rss = float(rss_file.read_text().split()[-1]) / 1024 if timer else float("nan")
    return wall, usage.ru_utime + usage.ru_stime, rss


def pymedphys_venv(venv: Path, log: Path) -> tuple[str, list[str]]:
    """The environment pymedphys runs in (made when missing) with PATCHES applied; its version and the patches
    that changed something in this run or an earlier one."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        with open(log, "ab") as out:
            subprocess.run([str(python), "-m", "pip", "install", "-q", *PYMEDPHYS], check=True, stdout=out,
                           stderr=out)
    package = Path(subprocess.run([str(python), "-c", "import pymedphys, os; print(os.path.dirname("
                                   "pymedphys.__file__))"], capture_output=True, text=True, check=True)
                   .stdout.strip()) / "_pinnacle"
    applied = []
    for name, text, replacement, why in PATCHES:
        path = package / name
        source = path.read_text(encoding="utf-8")
        if replacement not in source and text in source:
            path.write_text(source.replace(text, replacement), encoding="utf-8")
        if replacement in path.read_text(encoding="utf-8"):
            applied.append(f"`{name}`: {why}")
    version = subprocess.run([str(python), "-c", "import pymedphys; print(pymedphys.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run([str(python), "-m", "compileall", "-q", str(package.parent)], check=False,
                   stdout=subprocess.DEVNULL)
    return version, applied


def demo_patient(root: Path, slices: int, seed: int) -> tuple[Path, int, str, tuple[int, int, int]]:
    """A one-patient database whose first plan's CT has `slices` slices: its directory, the plan's id and name,
    and the CT's dimensions."""
    image_mb = slices * 512 * 512 * 2 / 1e6
    for _ in range(4):
        db = root / "pinnacle"
        shutil.rmtree(db, ignore_errors=True)
        generate_database(db, patients=1, seed=seed, image_mb=image_mb)
        patient = next(p for p in db.rglob("Patient_*") if p.is_dir())
        treatment = read_treatment(DirectorySource(patient))
        plan = treatment.plans[0]
        dims = treatment.image_set(plan.primary_image_set_id).dims
        if dims[2] == slices:
            return patient, plan.id, plan.name, dims
        image_mb *= slices / dims[2]
    raise SystemExit(f"the demo generator gave {dims[2]} slices, not {slices}: try another --seed")


def written(directory: Path) -> tuple[dict[str, int], float]:
    import pydicom

    counts: dict[str, int] = {}
    size = 0
    for path in (p for p in directory.rglob("*") if p.is_file()):
        size += path.stat().st_size
        modality = "DICOMDIR" if path.name == "DICOMDIR" else str(
            pydicom.dcmread(path, stop_before_pixels=True).Modality)
        counts[modality] = counts.get(modality, 0) + 1
    return dict(sorted(counts.items())), size / 1e6


def dciodvfy_counts(directory: Path) -> dict[str, list[int]] | None:
    """Per modality, the number of dciodvfy errors of each file (None without dicom3tools)."""
    if shutil.which("dciodvfy") is None:
        return None
    import pydicom

    from kit.dicom import dciodvfy_errors

    found: dict[str, list[int]] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != "DICOMDIR"):
        modality = str(pydicom.dcmread(path, stop_before_pixels=True).Modality)
        found.setdefault(modality, []).append(len(dciodvfy_errors(path)))
    return found


def errors_text(counts: dict[str, list[int]] | None) -> str:
    if counts is None:
        return "dciodvfy not installed"
    return "; ".join(f"{m} {min(v)}–{max(v)}" if min(v) != max(v) else f"{m} {v[0]}" for m, v in counts.items())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slices", type=int, default=100)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pm-venv", type=Path, default=Path("/tmp/rtvault-bench-pymedphys-venv"))
    parser.add_argument("--out", type=Path, default=BENCH)
    args = parser.parse_args()
    rtvault_src = Path(__import__("rtvault").__file__).resolve().parent
    with tempfile.TemporaryDirectory(prefix="rtvault-bench-dicom-") as folder:
        root = Path(folder)
        log = root / "commands.log"
        version, applied = pymedphys_venv(args.pm_venv, log)
        patient, plan_id, plan_name, dims = demo_patient(root, args.slices, args.seed)
        config_path = write_config(root / "rtvault.toml", root="pinnacle", stores={"primary": "store"},
                                   catalog={"url": "sqlite:///catalog.sqlite"})
        config = load(config_path)
        init_stores(config)
        run_backup(config, Store.open(config.stores["primary"].path))
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(rtvault_src)], check=False,
                       stdout=subprocess.DEVNULL)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(rtvault_src.parent), *os.environ.get(
            "PYTHONPATH", "").split(os.pathsep)]).rstrip(os.pathsep)}
        relative = str(patient.relative_to(root / "pinnacle"))
        commands = {
            "rtvault": lambda out: [sys.executable, "-m", "rtvault", "--config", str(config_path), "export",
                                    "dicom", "--patient", relative, "--plan", str(plan_id), "--to", str(out)],
            "pymedphys": lambda out: [str(args.pm_venv / "bin" / "pymedphys"), "pinnacle", "export", "-m", "CT",
                                      "-m", "RTSTRUCT", "-m", "RTPLAN", "-m", "RTDOSE", "-p", plan_name,
                                      "-o", str(out), str(patient)],
        }
        runs: dict[str, list[Run]] = {tool: [] for tool in commands}
        last: dict[str, Path] = {}
        for attempt in range(args.repeat):
            for tool in (commands if attempt % 2 == 0 else reversed(list(commands))):
                out = root / f"{tool}-{attempt}"
                out.mkdir()
                os.sync()
                wall, cpu, rss = run(commands[tool](out), log, env if tool == "rtvault" else None)
                files, megabytes = written(out)
                runs[tool].append(Run(wall, cpu, rss, files, megabytes))
                if tool in last:
                    shutil.rmtree(last[tool])
                last[tool] = out
        checked = {tool: dciodvfy_counts(path) for tool, path in last.items()}
    figures = {"when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "slices": args.slices, "dims": dims,
               "seed": args.seed, "plan": plan_name, "repeat": args.repeat, "pymedphys": version,
               "patches": applied, "runs": {t: [vars(r) for r in rs] for t, rs in runs.items()},
               "dciodvfy_errors": checked}
    median = {t: {k: statistics.median(getattr(r, k) for r in rs) for k in ("wall_s", "cpu_s", "maxrss_mb")}
              for t, rs in runs.items()}
    figures["median"] = median
    ratio = median["rtvault"]["wall_s"] / median["pymedphys"]["wall_s"]
    figures["ratio"] = round(ratio, 3)
    (args.out / "results-dicom-export.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    rows = "\n".join(
        f"| {tool} | {median[tool]['wall_s']:.2f} s | {min(r.wall_s for r in runs[tool]):.2f}–"
        f"{max(r.wall_s for r in runs[tool]):.2f} s | {median[tool]['cpu_s']:.2f} s | "
        f"{median[tool]['maxrss_mb']:.0f} MB | {', '.join(f'{m} {n}' for m, n in runs[tool][-1].files.items())} "
        f"({runs[tool][-1].megabytes:.1f} MB) | {errors_text(checked[tool])} |" for tool in commands)
    patches = "\n".join(f"- {p}" for p in applied) or "- none were needed"
    verdict = "met" if ratio <= 0.5 else "NOT met"
    text = f"""# DICOM-RT export of one plan: rtvault vs pymedphys

Generated by `python bench/dicom_export.py --repeat {args.repeat}` on {figures['when']} (method in the script's
docstring): one synthetic patient (`--seed {args.seed}`), plan "{plan_name}", CT {dims[0]}×{dims[1]}×{dims[2]}
voxels; each export run {args.repeat} times in a new process, alternating, the median reported. rtvault reads the
patient from its store's snapshot (no restore), pymedphys {version} from the Pinnacle directory.

| tool | wall (median) | wall (range) | CPU | peak RSS | written | dciodvfy errors per file |
|---|---:|---:|---:|---:|---|---|
{rows}

rtvault / pymedphys wall time: **{ratio:.2f}×** (target ≤ 0.5×: {verdict}).

Not the same work: rtvault writes every trial of the plan, an RTDOSE per beam beside the trial's sum, and a
DICOMDIR; pymedphys the first trial and one RTDOSE. pymedphys ran in its own environment with `pydicom<3`,
`numpy<2` and `pyyaml` (which it needs and does not declare), and these fixes to its code:

{patches}
"""
    write_section(args.out / "results.md", "bench/dicom_export.py", text)
    print(text)


if __name__ == "__main__":
    main()
