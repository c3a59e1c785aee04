#!/usr/bin/env python3
"""The DICOM node's memory per object (issue 16, item 1): the peak resident memory (VmHWM) of `rtvault dicom
serve` while dcmtk's storescu sends it one large object (a synthetic ~1 GiB Multi-frame Secondary Capture, noise:
incompressible), until the node has spooled and sealed it; the time storescu took. `--src` runs the node from
another checkout (e.g. the main branch, for a before/after figure).

    PYTHONPATH=src:tests .venv/bin/python bench/dicom_large.py [--size-mb 1024] [--src /path/to/src] [--write]
`--write` puts the line(s) in bench/results.md's DICOM section (`dicom-large`), one per --label given.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent / "src"), str(BENCH.parent / "tests"), str(BENCH)]

from sections import write_section  # noqa: E402

from kit.dicom_large import data_set_digest, peak_rss, write_large  # noqa: E402
from kit.dicom_node import _wait_port, call, held, make_site  # noqa: E402


def run(work: Path, size: int, src: Path) -> dict:
    site = make_site(work)
    big = work / "large.dcm"
    write_large(big, size)
    sent_digest = data_set_digest(big)
    env = {**os.environ, "PYTHONPATH": str(src)}
    with (work / "serve.log").open("w") as log:
        child = subprocess.Popen([sys.executable, "-m", "rtvault", "--config", str(site.config_path), "dicom",
                                  "serve"], stdout=subprocess.DEVNULL, stderr=log, env=env)
    try:
        _wait_port(site.port, child)
        idle = peak_rss(child.pid)
        started = time.monotonic()
        sent = call("storescu", site, files=[big], timeout=1800)
        took = time.monotonic() - started
        spool = site.store / "dicom" / "spool"
        deadline = time.monotonic() + 600
        while list(spool.glob("*.spool")) and time.monotonic() < deadline:
            time.sleep(0.5)
        peak = peak_rss(child.pid)
    finally:
        child.terminate()
        child.wait(timeout=120)
    big.unlink()
    stored = held(site)  # the bench's own process reads it back (not measured)
    identical = len(stored) == 1 and sent.returncode == 0
    if identical:
        copy = work / "back.dcm"
        copy.write_bytes(next(iter(stored.values())))
        identical = data_set_digest(copy) == sent_digest
    return {"size_mb": size >> 20, "idle_rss_mb": idle >> 20, "peak_rss_mb": peak >> 20,
            "storescu_s": round(took, 2), "stored_identical": identical}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--src", type=Path, default=BENCH.parent / "src")
    parser.add_argument("--label", default="this branch")
    parser.add_argument("--work", type=Path, default=None, help="a folder on the disk to measure (default: /tmp)")
    parser.add_argument("--write", action="append", default=[], metavar="LABEL=JSON",
                        help="write results.md's line(s) from earlier runs' JSON instead of running")
    args = parser.parse_args()
    if args.write:
        lines = ["One object of ~1 GiB (synthetic Multi-frame Secondary Capture, noise) sent by dcmtk storescu to "
                 "`rtvault dicom serve`; the node's peak resident memory (VmHWM) until it is spooled and sealed "
                 "(bench/dicom_large.py):", ""]
        for given in args.write:
            label, _, text = given.partition("=")
            r = json.loads(text)
            lines.append(f"- {label}: peak RSS **{r['peak_rss_mb']} MB** (idle {r['idle_rss_mb']} MB) for a "
                         f"{r['size_mb']} MB object, storescu {r['storescu_s']} s, stored byte for byte: "
                         f"{'yes' if r['stored_identical'] else 'NO'}")
        lines.append(f"\nMeasured on {datetime.now(UTC):%Y-%m-%d} on the 2-core machine.")
        write_section(BENCH / "results.md", "dicom-large", "\n".join(lines))
        return
    work = Path(tempfile.mkdtemp(prefix="rtvault-dicom-large-", dir=args.work))
    try:
        print(json.dumps(run(work, args.size_mb << 20, args.src.resolve())))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
