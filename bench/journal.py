"""The journal of actions (issue 14: appending costs at most 2 ms per action; `journal verify` of 1,000,000
entries under 30 s).

1. Appending, on a site of two directory stores and a SQLite catalog: a web action (`WebActions.record`: the
   audit row, the entry batched and spooled as one segment per second or 200 entries, as `rtvault serve` does),
   and a command line action (`record_command`: one segment written to both stores, fsynced, and indexed), each
   beside what a site would otherwise keep: one JSON line appended to a log file and fsynced (an application's
   audit log, or syslog with sync).
2. Verifying: `--entries` entries (default 1,000,000) written as the web writes them (segments of 200), chained,
   in one store; then `rtvault journal verify` (a process, as run by the daemon) beside `sha256sum` of the same
   files (a plain checksum pass, which proves nothing about order or removal).
Writes a section of bench/results.md and bench/results-journal.json.

    .venv/bin/python bench/journal.py                   # about 2 minutes
    .venv/bin/python bench/journal.py --entries 100000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sections import write_section  # bench/sections.py

from rtvault.config import load
from rtvault.configured import init_stores, open_catalog_for
from rtvault.jobs.actions import BATCH, WebActions, entry, record_command
from rtvault.jobs.journal import Journal, flush_spool

BENCH = Path(__file__).resolve().parent
APPEND_TARGET_MS = 2.0
VERIFY_TARGET_S = 30.0


def site(work: Path, stores: tuple[str, ...]) -> Path:
    work.mkdir(parents=True)
    config = work / "rtvault.toml"
    lines = [f'[stores.{name}]\npath = "{name}"\n' + ('copy_of = "primary"\n' if i else "")
             for i, name in enumerate(stores)]
    config.write_text("\n".join(lines) + f'\n[catalog]\nurl = "sqlite:///{work / "catalog.sqlite"}"\n'
                      f'\n[daemon]\nstate_dir = "{work / "state"}"\n')
    init_stores(load(config))
    return config


def appending(work: Path, web_count: int, cli_count: int) -> dict[str, float]:
    config = load(site(work, ("primary", "copy")))
    web = WebActions(config)
    with open_catalog_for(config) as db:
        start = time.perf_counter()
        for n in range(web_count):
            web.record(db, user="anne", address="192.0.2.7", action="view", patient=f"Institution_1/Mount_0/"
                       f"Patient_{n}", detail={"snapshot": "20261207T090000Z-abcdef"})
        web.flush()
        web_ms = (time.perf_counter() - start) * 1000 / web_count
    start = time.perf_counter()
    flush_spool(config)  # what the daemon's heartbeat then does, once for all
    flush_ms = (time.perf_counter() - start) * 1000 / web_count
    start = time.perf_counter()
    for n in range(cli_count):
        record_command(config, "restore", {"key": f"Institution_1/Mount_0/Patient_{n}", "to": "/tmp/r"}, "ok")
    cli_ms = (time.perf_counter() - start) * 1000 / cli_count
    log = work / "audit.log"
    start = time.perf_counter()
    with log.open("a", encoding="utf-8") as out:
        for n in range(cli_count):
            out.write(json.dumps(entry(user="anne", via="cli", action="restore", patient=f"P{n}")) + "\n")
            out.flush()
            os.fsync(out.fileno())
    log_ms = (time.perf_counter() - start) * 1000 / cli_count
    return {"web_ms": web_ms, "web_flush_ms": flush_ms, "cli_ms": cli_ms, "log_line_ms": log_ms}


def verifying(work: Path, entries: int) -> dict[str, float]:
    config_path = site(work, ("primary",))
    config = load(config_path)
    writer = Journal(config)
    item = entry(user="anne", via="web", action="view", patient="Institution_1/Mount_0/Patient_1", address="192.0.2.7")
    start = time.perf_counter()
    for first in range(0, entries, BATCH):
        writer.append({"kind": "actions", "entries": [item] * min(BATCH, entries - first)}, index=False)
    written_s = time.perf_counter() - start
    files = sorted(str(p) for p in (work / "primary" / "journal").glob("*/*.json"))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "rtvault", "--config", str(config_path), "journal", "verify",
                           "--json"], capture_output=True, text=True, check=False)
    verify_s = time.perf_counter() - start
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["stores"][0]["entries"] == entries, done.stderr[-2000:]
    start = time.perf_counter()
    for chunk in range(0, len(files), 2000):
        subprocess.run(["sha256sum", *files[chunk:chunk + 2000]], capture_output=True, check=True)
    sha_s = time.perf_counter() - start
    return {"entries": entries, "segments": len(files), "write_s": written_s, "verify_s": verify_s,
            "sha256sum_s": sha_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--web", type=int, default=5000, help="web actions appended")
    parser.add_argument("--cli", type=int, default=200, help="command line actions appended")
    parser.add_argument("--out", type=Path, default=BENCH)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rtvault-bench-journal-") as tmp:
        append = appending(Path(tmp) / "append", args.web, args.cli)
        verify = verifying(Path(tmp) / "verify", args.entries)
    results = {**append, **verify}
    (args.out / "results-journal.json").write_text(json.dumps(results, indent=1) + "\n")
    ok = "**met**"
    web_ratio, cli_ratio = append["web_ms"] / append["log_line_ms"], append["cli_ms"] / append["log_line_ms"]
    text = f"""## The journal of actions (`bench/journal.py`)

Two directory stores on the same disk, SQLite catalog, 2 cores; {args.web} web actions, {args.cli} command line
actions; then {verify['entries']:,} entries in {verify['segments']:,} segments (200 entries each, as the web
spools them) in one store.

| Appending one action | ms | vs a JSON line appended to a log and fsynced |
|---|---|---|
| web (audit row + batched segment, spooled) | {append['web_ms']:.3f} | {web_ratio:.2f}× |
| web, the daemon writing the spool to both stores afterwards | {append['web_flush_ms']:.3f} | — |
| command line (one segment to both stores, fsynced, indexed) | {append['cli_ms']:.2f} | {cli_ratio:.2f}× |
| JSON line + fsync (peer) | {append['log_line_ms']:.3f} | 1× |

Target ≤ {APPEND_TARGET_MS:.0f} ms per action: web {ok if append['web_ms'] <= APPEND_TARGET_MS else '**missed**'}
(the actions a site makes by the thousand: sign-ins, searches, views); a command line action costs one fsynced
segment per store ({'within' if append['cli_ms'] <= APPEND_TARGET_MS else 'over'} the target; a command line
action is a process of its own that takes far longer than its record).

| Verifying | seconds |
|---|---|
| `rtvault journal verify` of {verify['entries']:,} entries (chain, seals, head, catalog) | {verify['verify_s']:.1f} |
| `sha256sum` of the same files (peer: a checksum pass, order and removal unchecked) | {verify['sha256sum_s']:.1f} |

Target under {VERIFY_TARGET_S:.0f} s: {ok if verify['verify_s'] < VERIFY_TARGET_S else '**missed**'}
({verify['verify_s'] / max(verify['sha256sum_s'], 1e-9):.1f}× the checksum pass).
"""
    write_section(args.out / "results.md", "bench/journal.py", text)
    print(text)


if __name__ == "__main__":
    main()
