"""Run one rtvault command in this process, counting what the benchmark needs and the command does not print.

    python bench/rtvault_driver.py REPORT.json RTVAULT-ARGS...

REPORT.json gets: `archive_s`, the seconds spent in `rtvault.jobs.backup.archive_deleted` (the archives of the
patients gone from the source: inside the backup before the snapshot is saved, or after it, depending on the
version; absent when that function is not there), and `s3_calls`, the S3 API calls by operation name (botocore's
`_make_api_call`: PutObject, UploadPart, GetObject, ListObjectsV2, ...), counted when BENCH_COUNT_S3=1.
Nothing of rtvault is changed: functions are wrapped, then rtvault's own `main()` runs.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]  # bench/ out
report_path = Path(sys.argv[1])
report: dict[str, object] = {}
s3_calls: Counter[str] = Counter()


def write_report() -> None:
    if s3_calls:
        report["s3_calls"] = dict(sorted(s3_calls.items()))
    report_path.write_text(json.dumps(report, indent=2) + "\n")


def time_archives() -> None:
    try:
        import rtvault.jobs.backup as backup_job
        original = backup_job.archive_deleted
    except (ImportError, AttributeError):
        report["archive_hook"] = "rtvault.jobs.backup.archive_deleted not found"
        return

    def timed(*args: object, **kwargs: object) -> object:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            report["archive_s"] = round(float(report.get("archive_s", 0.0)) + time.perf_counter() - started, 3)

    backup_job.archive_deleted = timed


def count_s3() -> None:
    import botocore.client

    original = botocore.client.BaseClient._make_api_call

    def counted(self: object, operation_name: str, api_params: dict) -> object:
        s3_calls[operation_name] += 1
        return original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = counted


def main() -> None:
    atexit.register(write_report)
    time_archives()
    if os.environ.get("BENCH_COUNT_S3") == "1":
        count_s3()
    from rtvault.cli import main as rtvault_main

    sys.argv = ["rtvault", *sys.argv[2:]]
    rtvault_main()


if __name__ == "__main__":
    main()
