"""The archive job and the clinical day it follows, side by side (`python bench/archive.py --part job`).

A database is backed up by rtvault and by restic, then one clinical day is played (`rtvault demo evolve --day 1`:
plans edited, a patient admitted, one finished patient deleted). From fresh copies of the day-0 stores, each
measure is taken `repeat` times (median reported):

- the clinical day: `rtvault backup --json` against `restic backup`. rtvault saves its snapshot first and then
  archives the deleted patient; its snapshot time is the process's wall time less `archive_s` (the archive
  built after the snapshot was saved, reported by the backup itself).
- the archive job: `rtvault archive sweep --json`, archiving the deleted patient from the day-1 snapshot (a
  store copy whose archive was removed, as after a backup killed before archiving), against `tar -czf` of the
  same patient (its directory restored from the day-0 snapshot: the same bytes, modes and mtimes), and, for
  information, `tar -I pigz -cf`. Cold (page cache dropped before each) and warm.

The archive is checked: `tar -xzf` of the stored archive gives the patient's files byte for byte. rtvault's
modules are compiled to bytecode first, as an installed package has them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from backup import EXCLUDES, wait_quiet  # bench/backup.py: restic's excludes, the wait for a quiet machine
from runner import Runner, output

RTVAULT = [sys.executable, "-m", "rtvault"]
RESTIC_ENV = {"RESTIC_PASSWORD": "x"}
QUIET_WAIT_S = 15  # on a shared machine, at most this long waiting for a quiet second before each measure
TARGETS = {"day_snapshot": 0.3, "archive_job": 0.5}  # rtvault / restic, rtvault / tar -czf


class JobBench:
    """The job bench's database, stores and measures (runs per measure, in order)."""

    def __init__(self, run: Runner, patients: int, image_mb: float) -> None:
        self.run, self.work = run, run.work / "job"
        self.db, self.stores = self.work / "db", self.work / "stores"
        self.patients, self.image_mb = patients, image_mb
        self.runs: dict[str, list[dict]] = {}

    def restic(self, *args: str, repo: Path) -> list[str]:
        return ["env", *(f"{k}={v}" for k, v in RESTIC_ENV.items()), f"RESTIC_CACHE_DIR={self.work / 'cache'}",
                "restic", "-r", str(repo), *args]

    def rtvault(self, store: Path, *args: str) -> list[str]:
        config = store.with_suffix(".toml")
        config.write_text(f'[source.pinnacle]\nroot = "{self.db}"\n[stores.primary]\npath = "{store}"\n'
                          f'[catalog]\nurl = "sqlite:///{store.with_suffix(".sqlite")}"\n')
        return [*RTVAULT, "--config", str(config), *args]

    def prepare(self) -> dict:
        """Day 0 backed up by both tools (pristine copies kept), day 1 played; the deleted patient restored."""
        shutil.rmtree(self.work, ignore_errors=True)
        self.stores.mkdir(parents=True)
        # bytecode compiled once, as an installed package has it (PYTHONDONTWRITEBYTECODE would otherwise make
        # every rtvault command compile its modules again)
        self.run.run([sys.executable, "-m", "compileall", "-q", output(
            sys.executable, "-c", "import rtvault, pathlib; print(pathlib.Path(rtvault.__file__).parent)")])
        self.run.run([*RTVAULT, "demo", "generate", "--out", str(self.db), "--patients", str(self.patients),
                      "--seed", "1", "--image-mb", str(self.image_mb)])
        day0 = {"rtvault": self.stores / "rtvault-day0", "restic": self.stores / "restic-day0"}
        self.run.run(self.rtvault(day0["rtvault"], "init"))
        first = self.run.run(self.rtvault(day0["rtvault"], "backup"))
        self.run.run(self.restic("init", "--repository-version", "2", repo=day0["restic"]))
        excludes = [arg for pattern in EXCLUDES for arg in ("--exclude", pattern)]
        self.restic_backup = ["backup", str(self.db), "--compression", "auto", *excludes]
        self.run.run(self.restic(*self.restic_backup, repo=day0["restic"]))
        before = {p.relative_to(self.db).as_posix() for p in self.db.glob("Institution_*/Mount_*/Patient_*")}
        self.run.run([*RTVAULT, "demo", "evolve", "--db", str(self.db), "--day", "1"])
        gone = sorted(before - {p.relative_to(self.db).as_posix()
                                for p in self.db.glob("Institution_*/Mount_*/Patient_*")})
        if len(gone) != 1:
            raise SystemExit(f"day 1 should delete one patient, it deleted {gone}")
        self.patient, self.day0 = gone[0], day0
        self.original = self.work / "patient"
        self.run.run(self.rtvault(day0["rtvault"], "restore", "--patient", self.patient, "--to", str(self.original)))
        size = int(output("du", "-sb", "--apparent-size", str(self.original / self.patient)).split()[0])
        files = sum(1 for f in (self.original / self.patient).rglob("*") if f.is_file())
        return {"command": f"rtvault demo generate --patients {self.patients} --seed 1 --image-mb {self.image_mb}",
                "db_bytes": int(output("du", "-sb", "--apparent-size", str(self.db)).split()[0]),
                "patient": {"path": self.patient, "bytes": size, "files": files}, "first_backup": asdict(first)}

    def copy(self, tool: str) -> Path:
        """A fresh copy of the tool's day-0 store (rtvault's with its catalog)."""
        target = self.stores / tool
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run(["cp", "-a", str(self.day0[tool]), str(target)], check=True)
        if tool == "rtvault":
            shutil.copyfile(self.day0[tool].with_suffix(".sqlite"), target.with_suffix(".sqlite"))
        return target

    def measure(self, key: str, cmd: list[str], *, cold: bool, stdout: Path | None = None) -> dict:
        wait_quiet(QUIET_WAIT_S)
        self.run.cold(cold)
        result = asdict(self.run.run(cmd, stdout))
        self.runs.setdefault(key, []).append(result)
        return result

    def day(self, rep: int) -> Path:
        """The day-1 backup with each tool, from day-0 copies (order rotating); returns rtvault's store."""
        store, repo, out = self.copy("rtvault"), self.copy("restic"), self.work / f"day-{rep}.json"
        steps = [lambda: self.measure("day_rtvault", self.rtvault(store, "backup", "--json"), cold=False,
                                      stdout=out),
                 lambda: self.measure("day_restic", self.restic(*self.restic_backup, repo=repo), cold=False)]
        for step in steps[rep % 2:] + steps[:rep % 2]:
            step()
        summary = json.loads(out.read_text())
        if summary["not_archived"] or len(summary["archived"]) != 1:
            raise SystemExit(f"the day-1 backup should archive one patient: {summary}")
        whole = self.runs["day_rtvault"][-1]
        self.runs.setdefault("day_rtvault_snapshot", []).append(
            {**whole, "wall_s": round(whole["wall_s"] - summary["archive_s"], 3)})
        self.runs.setdefault("day_rtvault_archive_s", []).append({**whole, "wall_s": summary["archive_s"]})
        self.archive_id = summary["archived"][0]
        return store

    def unarchived(self, store: Path) -> None:
        """The day-1 store as a backup killed right after its snapshot leaves it: the archive's files removed."""
        root, aid = store / "archives", self.archive_id
        for path in (root / "tars" / aid[:2] / aid, root / f"{aid}.json", root / f"{aid}.sha256",
                     root / "summaries" / f"{aid}.json"):
            path.unlink()

    def sweep(self, store: Path, key: str, cold: bool) -> None:
        """The archive job, on the day-1 store without its archive; the archive it builds is the next to remove."""
        self.unarchived(store)
        out = self.work / "sweep.json"
        self.measure(key, self.rtvault(store, "archive", "sweep", "--json"), cold=cold, stdout=out)
        archived = json.loads(out.read_text())["archived"]
        if len(archived) != 1:
            raise SystemExit(f"the sweep should archive one patient: {archived}")
        self.archive_id = archived[0]["id"]

    def job(self, store: Path, rep: int, cold: bool, suffix: str) -> None:
        out = self.work / "out.tar.gz"
        steps = [
            lambda: self.sweep(store, "job_rtvault" + suffix, cold),
            lambda: (out.unlink(missing_ok=True), self.measure(
                "job_tar_czf" + suffix, ["tar", "-czf", str(out), "-C", str(self.original), self.patient],
                cold=cold)),
            lambda: (out.unlink(missing_ok=True), self.measure(
                "job_tar_pigz" + suffix, ["tar", "-I", "pigz", "-cf", str(out), "-C", str(self.original),
                                          self.patient], cold=cold)),
        ]
        for step in steps[rep % 3:] + steps[:rep % 3]:
            step()

    def profile(self, store: Path) -> dict[str, str]:
        """cProfile (warm, once) of the archive job and of the day-1 backup, top 14 by own time."""
        out: dict[str, str] = {}
        self.unarchived(store)
        for name, cmd in (("archive sweep", lambda: self.rtvault(store, "archive", "sweep", "--json")),
                          ("day-1 backup", lambda: self.rtvault(self.copy("rtvault"), "backup", "--json"))):
            prof = self.work / "job.prof"
            self.run.cold(False)
            self.run.run([sys.executable, "-m", "cProfile", "-o", str(prof), *cmd()[1:]], self.work / "profiled.json")
            text = output(sys.executable, "-c", "import pstats, sys; pstats.Stats(sys.argv[1]).sort_stats('tottime')"
                          ".print_stats(14)", str(prof))
            out[name] = text[text.find("function calls"):]
        return out

    def verify(self, store: Path) -> str:
        """`tar -xzf` of the stored archive against the patient's files, SHA-256 file by file."""
        aid = self.archive_id
        stored = store / "archives" / "tars" / aid[:2] / aid
        if hashlib.sha256(stored.read_bytes()).hexdigest() != aid:
            return "MISMATCH: the archive's bytes do not match its id"
        extracted = self.work / "extracted"
        shutil.rmtree(extracted, ignore_errors=True)
        extracted.mkdir()
        subprocess.run(["tar", "-xzf", str(stored), "-C", str(extracted)], check=True)

        def tree(root: Path) -> dict[str, str]:
            return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                    for p in root.rglob("*") if p.is_file()}
        want, got = tree(self.original / self.patient), tree(extracted / self.patient)
        ratio = stored.stat().st_size / sum((self.original / self.patient / n).stat().st_size for n in want)
        return (f"identical ({len(got)} files; gzip {ratio:.3f} of the files' size)" if want == got else
                f"MISMATCH: {len(want.keys() ^ got.keys())} files differ in name, "
                f"{sum(want[n] != got[n] for n in want.keys() & got.keys())} in content")


def ensure_tools() -> None:
    """restic and pigz from Debian's packages when missing (root, non-interactive)."""
    missing = [name for name in ("restic", "pigz") if not shutil.which(name)]
    if missing:
        subprocess.run(["sh", "-c", f"apt-get update -qq && apt-get install -y -qq {' '.join(missing)} >/dev/null"],
                       check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def run_job_bench(run: Runner, patients: int, image_mb: float, repeat: int) -> dict:
    ensure_tools()
    bench = JobBench(run, patients, image_mb)
    print("archive job: preparing (generate, day-0 backups, day 1) ...", flush=True)
    results: dict = {"build": bench.prepare(), "repeat": repeat, "cold": run.can_drop,
                     "restic": output("restic", "version"), "pigz": output("pigz", "--version")}
    for rep in range(repeat):
        print(f"archive job: round {rep + 1}/{repeat} ...", flush=True)
        store = bench.day(rep)
        for cold, suffix in ((True, ""), (False, "_warm")):
            bench.job(store, rep, cold, suffix)
    results["verification"] = bench.verify(store)
    results["profiles"] = bench.profile(store)
    results["runs"] = bench.runs
    results["medians"] = {k: round(statistics.median(r["wall_s"] for r in v), 3) for k, v in bench.runs.items()}
    shutil.rmtree(bench.work, ignore_errors=True)
    return results


def walls(runs: list[dict]) -> str:
    return ", ".join(f"{r['wall_s']:.2f}" for r in runs)


def job_lines(results: dict) -> list[str]:
    """The markdown section of the archive job's results."""
    b, med = results["build"], results["medians"]

    def row(label: str, mine: str, other: str, target: float | None) -> str:
        a, o = med[mine], med[other]
        goal = "—" if target is None else f"≤ {target}×"
        verdict = "—" if target is None else ("PASS" if a / o <= target else "MISS")
        return f"| {label} | {a:.2f} | {o:.2f} | {a / o:.3f}× | {goal} | {verdict} |"

    return [
        "# The archive job, and the clinical day it follows (`bench/archive.py --part job`)", "",
        __doc__.split("\n\n", 1)[1].strip(), "",
        f"Database: `{b['command']}`, {b['db_bytes'] / 1e9:.2f} GB; the patient deleted on day 1: "
        f"`{b['patient']['path']}`, {b['patient']['files']} files, {b['patient']['bytes'] / 1e6:.1f} MB. "
        f"{results['restic']}; pigz {results['pigz']}. Median of {results['repeat']}.", "",
        "| comparison | rtvault s | other s | ratio | target | result |", "|---|---:|---:|---:|---|---|",
        row("clinical day: snapshot saved (archive excluded) vs `restic backup`", "day_rtvault_snapshot",
            "day_restic", TARGETS["day_snapshot"]),
        row("clinical day: whole `rtvault backup` (archive included) vs `restic backup`", "day_rtvault",
            "day_restic", None),
        row("archive job (`archive sweep`) vs `tar -czf`, cold", "job_rtvault", "job_tar_czf",
            TARGETS["archive_job"]),
        row("archive job (`archive sweep`) vs `tar -czf`, warm", "job_rtvault_warm", "job_tar_czf_warm",
            TARGETS["archive_job"]),
        row("archive job vs `tar -I pigz -cf`, cold", "job_rtvault", "job_tar_pigz", None),
        row("archive job vs `tar -I pigz -cf`, warm", "job_rtvault_warm", "job_tar_pigz_warm", None), "",
        f"The archive built inside the day-1 backup, after its snapshot: {med['day_rtvault_archive_s']:.2f} s "
        "(`archive_s`). Verification: " + results["verification"] + ".", "",
        "| measure | median wall s | all runs (wall s) |", "|---|---:|---|",
        *[f"| {key} | {med[key]:.3f} | {walls(runs)} |" for key, runs in results["runs"].items()],
    ] + [line for name, text in results.get("profiles", {}).items()
         for line in ("", f"cProfile of the {name} (warm, once, top 14 by own time):", "", "```", text, "```")]
