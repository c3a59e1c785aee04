"""bench/backup.py's report: the machine, one table of ratios with PASS/MISS per database kind, the counts, every
step, the verification; its own section of results.md (bench/sections.py) and results.json."""

from __future__ import annotations

import json
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from sections import write_section
from tools import EXCLUDES, TOOLS, versions

FINDINGS = Path(__file__).resolve().parent / "backup-findings.md"  # profiles of the misses, copied under the tables


def machine(work: Path) -> dict[str, str]:
    def output(*cmd: str) -> str:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()

    cpus = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")]
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "nproc": output("nproc"),
        "memory": f"{mem_kb / 2**20:.1f} GiB (MemTotal)", "cpu": cpus[0] if cpus else "?",
        "disk": "{} ({}): {} total, {} used, {} free".format(*output("df", "-hT", str(work)).split()[-7:-2]),
        "os": platform.platform(), "python": platform.python_version(), **versions(),
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def measures(kind: str, r: dict) -> list[dict]:
    """Every measure of one kind: label, rtvault, restic, borg, reference (a third program), target, key."""
    steps, day, rep = r["steps"], r["day1"], r["replication"]

    def wall(step: str) -> dict[str, float]:
        return {t: steps[step][t]["wall_s"] for t in TOOLS}

    when = "after" if day.get("archive_after_snapshot") else "before (inside the backup)"
    snapshot = {**wall("day1_backup"), "rtvault": day.get("snapshot_s")}
    rows = [
        ("first_backup", "first backup (s)", wall("first_backup"), None, 0.4 if kind == "large" else 0.7),
        ("nochange_backup", "no-change backup (s)", wall("nochange_backup"), None, 0.3),
        ("nochange_after_writes", "no-change backup right after 1.5 GB of unrelated writes (s)",
         wall("nochange_after_writes"), None, 0.3),
        ("day1_snapshot", f"one clinical day, deleted patient: snapshot, archive excluded (s) [archive ran {when}]",
         snapshot, None, 0.3),
        ("day1_backup", "one clinical day: whole backup command (s)", wall("day1_backup"), None, None),
        ("archive_job", "archive of the deleted patient vs `tar -czf` of it (s)",
         {"rtvault": day.get("archive_s")}, ("tar -czf", day.get("tar_czf_s")), 0.5),
        ("restore_patient", "restore one patient, warm cache (s)", wall("restore_patient"), None, None),
        ("restore_all", "restore everything, page cache dropped (s)", wall("restore_all"), None, 0.7),
        ("check_read_data", "check --read-data / borg check --verify-data, page cache dropped (s)",
         wall("check_read_data"), None, 0.7),
        ("replication", "incremental replication after one day vs `rsync -a` (s, median)",
         {"rtvault": rep["rtvault_s"]}, ("rsync -a", rep["rsync_s"]), 1.0),
        ("store_first", "store size after the first backup (MB)",
         {t: r["store_bytes_first"][t] / 1e6 for t in TOOLS}, None, None),
        ("store", f"store size after {r['days']} evolved day(s) (MB)",
         {t: r["store_bytes"][t] / 1e6 for t in TOOLS}, None, None),
        ("store_files_first", "files in the store after the first backup",
         {t: float(r["store_files_first"][t]) for t in TOOLS}, None, None),
        ("peak_rss", "peak RSS over all steps (MB)", {t: r["peak_rss_kb"][t] / 1024 for t in TOOLS}, None, None),
    ]
    found = []
    for key, label, v, reference, target in rows:
        base = reference[1] if reference else v.get("restic")
        ratio = _ratio(v.get("rtvault"), base)
        result = "—" if target is None else ("n/a" if ratio is None else ("PASS" if ratio <= target else "MISS"))
        found.append({"key": key, "label": label, "values": v, "reference": reference, "ratio": ratio,
                      "vs_borg": _ratio(v.get("rtvault"), v.get("borg")), "target": target, "result": result})
    return found


def summary_rows(kind: str, r: dict) -> list[str]:
    rows = ["| measure | rtvault | restic | borg | other | ratio | rtvault/borg | target | result |",
            "|---|---:|---:|---:|---:|---:|---:|---|---|"]
    digits = {"store_files_first": 0}
    for m in measures(kind, r):
        v, d = m["values"], digits.get(m["key"], 2)
        other = f"{m['reference'][0]}: {_fmt(m['reference'][1])}" if m["reference"] else ""
        against = m["reference"][0] if m["reference"] else "restic"
        ratio = "—" if m["ratio"] is None else f"{m['ratio']:.2f}× {against}"
        vs_borg = "—" if m["vs_borg"] is None else f"{m['vs_borg']:.2f}×"
        goal = "—" if m["target"] is None else f"≤ {m['target']:g}×"
        rows.append(f"| {m['label']} | {_fmt(v.get('rtvault'), d)} | {_fmt(v.get('restic'), d)} | "
                    f"{_fmt(v.get('borg'), d)} | {other} | {ratio} | "
                    f"{vs_borg} | {goal} | "
                    f"**{m['result']}** |".replace("**—**", "—"))
        r.setdefault("ratios", {})[m["key"]] = {k: m[k] for k in ("ratio", "vs_borg", "target", "result")}
    return rows


def count_rows(r: dict) -> list[str]:
    counted = r.get("first_backup_counts")
    rows = []
    if counted:
        rows += ["| first backup (strace -f -c, separate run) | fsync | fdatasync | syncfs | sync | durable writes, "
                 "total | files in the store | store MB |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for tool in TOOLS:
            c = counted[tool]
            calls = c["calls"]
            rows.append(f"| {tool} | " + " | ".join(str(calls.get(k, 0)) for k in ("fsync", "fdatasync", "syncfs",
                                                                                       "sync")) +
                        f" | {c['durable_writes']} | {c['store_files']} | {c['store_bytes'] / 1e6:.1f} |")
    s3 = r.get("s3_first_backup")
    if s3 and "skipped" not in s3:
        rows += ["", f"rtvault first backup into an S3 store (SeaweedFS on loopback): **{s3['puts']} PUT-class "
                 f"requests** ({s3['requests']} S3 calls in all: "
                 + ", ".join(f"{k} {v}" for k, v in s3["calls"].items())
                 + f"), {s3['objects']} objects in the bucket ({s3['bytes'] / 1e6:.1f} MB), {s3['wall_s']:.1f} s."]
    elif s3:
        rows += ["", f"S3 count skipped: {s3['skipped']}."]
    return rows


def step_rows(r: dict) -> list[str]:
    rows = ["| step | " + " | ".join(f"{t} wall s / cpu s / RSS MB / others' cpu s" for t in TOOLS) + " |",
            "|---|" + "---:|" * len(TOOLS)]
    for step, by_tool in r["steps"].items():
        cells = [f"{m['wall_s']:.2f} / {m['cpu_s']:.2f} / {m['maxrss_kb'] / 1024:.0f} / {m['others_cpu_s']:.2f}"
                 for m in (by_tool[t] for t in TOOLS)]
        rows.append(f"| {step} | " + " | ".join(cells) + " |")
    return rows


def _archive_line(r: dict) -> str:
    day = r["day1"]
    return (f"rtvault archived {day.get('deleted')} in {_fmt(day.get('archive_s'), 3)} s (timed by "
            f"{day.get('archive_timed_by')}) of a {_fmt(r['steps']['day1_backup']['rtvault']['wall_s'])} s command; "
            f"`tar -czf` of the same folder(s) (restored from the store, {(day.get('deleted_bytes') or 0) / 1e6:.1f} "
            f"MB, to {(day.get('tar_gz_bytes') or 0) / 1e6:.1f} MB): median {_fmt(day.get('tar_czf_s'), 3)} s of "
            f"{day.get('tar_czf_runs')}.")


def kind_lines(kind: str, r: dict) -> list[str]:
    db, day, rep = r["database"], r["day1"], r["replication"]
    archive = _archive_line(r) if day.get("deleted") else "The evolved day deleted no patient: no archive measured."
    measured = r.get("measured", {})
    return [
        f"### {r['label']}", "",
        f"- measured {measured.get('date', '?')} with {measured.get('rtvault', '?')}",
        f"- `rtvault demo generate --patients {db['patients']} --seed 1 --image-mb {db['image_mb']:g}`: "
        f"{db['bytes'] / 1e9:.3f} GB apparent, {db['files']} files; {db['backed_up_files']} files, "
        f"{db['backed_up_bytes'] / 1e9:.3f} GB once transient files are excluded",
        f"- one-patient restore: `{db['patient']}` (median size: {db['patient_files']} files, "
        f"{db['patient_bytes'] / 1e6:.1f} MB)",
        f"- {archive}",
        f"- replication: rtvault `replicate()` itself {rep['replicate_function_s']:.3f} s, interpreter start-up "
        f"{rep['startup_s']:.3f} s; copied {rep['copied'].get('objects_copied')} objects, "
        f"{rep['copied'].get('bytes_copied', 0) / 1e6:.1f} MB; the copy then passed `check --read-data`",
        "", *summary_rows(kind, r), "",
        "Durable writes and store files of a first backup (a separate, untimed first backup of the database as it "
        "stands at the end, into a scratch store):", "", *count_rows(r), "",
        "Verification (restored tree hashed file by file against the source, transient files excluded):", "",
        "| restore | " + " | ".join(TOOLS) + " |", "|---|" + "---|" * len(TOOLS),
        *(f"| {step} | " + " | ".join(done[t] for t in TOOLS) + " |" for step, done in r["verified"].items()),
        "", "Every step (wall, CPU, peak RSS of the child; others' CPU: the rest of the machine meanwhile):", "",
        *step_rows(r), "",
    ]


def write_results(results: dict, out: Path) -> str:
    info = results["machine"]
    lines = [
        "# rtvault backup vs restic and borg", "",
        f"Generated by `python {results['command']}` on {info['date']} (see bench/README.md for the method).", "",
        "## Machine", "",
        *(f"- {key}: {info[key]}" for key in ("nproc", "memory", "cpu", "disk", "os", "python")),
        f"- versions: {info['rtvault']}; {info['restic']}; {info['borg']}; {info['rsync']}; {info['tar']}",
        f"- rtvault bytecode: {results.get('bytecode', 'not compiled by the bench')}", "",
        "## Results", "",
        "Ratios are rtvault / restic unless the *other* column names the program compared with. Targets are "
        "issue 11's.", "",
    ]
    for kind, r in results["kinds"].items():
        lines += kind_lines(kind, r)
    if FINDINGS.exists():
        lines += [FINDINGS.read_text().strip(), ""]
    lines += [
        "## Conditions", "",
        "- Same database and excludes (`" + "`, `".join(EXCLUDES) + "`); zstd level-3 class everywhere: rtvault "
        "zstd (3; byte-shuffled CT at level 1), restic `--compression auto` (repository v2), borg `zstd,3`.",
        "- Encryption differs: restic always encrypts (AES-256-CTR + Poly1305, scrypt at every command); borg "
        "`--encryption=none`; rtvault's local store is not encrypted.",
        "- Page cache: `sync` (untimed) before every measured command; before *restore everything* and *check* "
        "the cache is dropped (`sync; echo 3 > /proc/sys/vm/drop_caches`), so they read the store from the disk; "
        "the other steps read the database from memory (it was just written).",
        "- *No-change backup right after 1.5 GB of unrelated writes*: a 1.5 GB file is written (untimed, not "
        "synced) outside the database on the same file system just before each tool's backup, deleted after.",
        "- *Clinical day*: `rtvault demo evolve --day 1` (deletes a patient); rtvault's snapshot time is the "
        "command's wall time minus the archive's. The tool order rotates at every step.",
        "- Incremental replication: `rtvault replicate` of the primary into a copy store vs `rsync -a` of the same "
        "store directory into a mirror, both first copied before the day (untimed), then each from the same saved "
        "state (bench/replicate.py's `measure`); no catalog configured.",
        "- The machine may be shared: \"others' cpu\" is the CPU time the rest of the machine used during a step "
        "(from /proc/stat; it includes the kernel's write-back and reclaim done for the step itself, so I/O-heavy "
        "steps show some even on a quiet machine); before each measured command the script waits for a quiet "
        "second (at most `--quiet-wait`). A small step with a large figure there was slowed by someone else.",
    ]
    text = "\n".join(lines)
    write_section(out / "results.md", "bench/backup.py", text)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return text
