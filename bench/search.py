"""Search latency at 10 thousand and 1 million synthetic patients, through HTTP and through the library.

For each size: `rtvault catalog fill` (timed) into a fresh SQLite catalog, a viewer account and an API token,
`rtvault serve` on a free loopback port, then REQUESTS requests per query type, the types interleaved, every
value drawn from the catalog's own patients (no request repeats a cached query). Each request is timed twice:
`GET /api/search` through HTTP (keep-alive, Bearer token; includes authentication and the audit record), and
`rtvault.catalog.search.search()` in this process (the database alone). Writes results-search.md,
results-search.json and the summary section of results.md (see bench/README.md).

    .venv/bin/python bench/search.py                        # 10k and 1M; about 15 minutes
    .venv/bin/python bench/search.py --sizes 10000 --keep   # a quick run, catalogs kept in --work
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sections import write_section  # bench/sections.py

from rtvault.catalog import fold as folding
from rtvault.catalog import open_catalog
from rtvault.catalog.search import Criteria, search

HERE = Path(__file__).resolve().parent
PASSWORD = "banc d'essai de la recherche"
TARGET_RATIO, TARGET_P95_MS = 2.0, 50.0
QUERY_TYPES = {
    "name_prefix": "last name: first 4 letters of a patient's surname (drawn by frequency: common names)",
    "accent_free_name": "last and first name of an accented patient, typed without accents",
    "typo_name": "last name with one letter wrong (typo tolerance)",
    "name_prefixes": "last name 5 letters + first name 3 letters",
    "first_name_prefix": "first name alone: its first 4 letters (a common first name matches tens of thousands)",
    "mrn": "MRN, exact",
    "born_physician": "birth year + physician's surname",
    "archived_year": "status archived + archived within one year (a vague query: thousands of matches)",
}


def rtvault(site: Path, *args: str, stdin: str = "") -> str:
    env = {k: v for k, v in os.environ.items() if k != "RTVAULT_CONFIG"}
    done = subprocess.run([sys.executable, "-m", "rtvault", *args], cwd=site, env=env, input=stdin,
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"rtvault {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def make_site(site: Path, patients: int, seed: int) -> dict:
    """A configuration, a filled catalog (timed), a viewer and its token."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "rtvault.toml").write_text('[source.pinnacle]\nroot = "pinnacle"\n\n[stores.primary]\npath = "store"\n\n'
                                       '[catalog]\nurl = "sqlite:///catalog.sqlite"\n', encoding="utf-8")
    started = time.monotonic()
    summary = json.loads(rtvault(site, "catalog", "fill", "--patients", str(patients), "--seed", str(seed), "--json"))
    wall = time.monotonic() - started
    rtvault(site, "user", "add", "bench", "--role", "viewer", stdin=PASSWORD + "\n")
    token = json.loads(rtvault(site, "token", "create", "--user", "bench", "--json"))["token"]
    return {"fill": summary, "fill_wall_s": round(wall, 2), "token": token,
            "size_bytes": sum(p.stat().st_size for p in site.glob("catalog.sqlite*"))}


def _typo(term: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(term) - 1)
    letter = rng.choice([c for c in "aeioulnrst" if c != term[i]])
    return term[:i] + letter + term[i + 1:]


def draw_queries(url: str, requests: int, seed: int) -> dict[str, list[dict[str, str]]]:
    """REQUESTS criteria per query type, from patients drawn at random (so common names come up often)."""
    rng = random.Random(seed)
    with open_catalog(url) as db:
        top = db.one("SELECT MAX(id) FROM patients")[0]
        ids = sorted(rng.sample(range(1, top + 1), min(top, requests * 20)))
        rows = []
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows += db.execute("SELECT last_name, first_name, mrn, birth_year, physician_fold, archived_at, status "
                               f"FROM patients WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
    rng.shuffle(rows)
    queries: dict[str, list[dict[str, str]]] = {name: [] for name in QUERY_TYPES}
    for last, first, mrn, year, physician, archived, status in rows:
        compact_last = folding.compact(last)
        candidates = {
            "name_prefix": {"last_name": compact_last[:4]} if len(compact_last) >= 4 else None,
            "accent_free_name": {"last_name": folding.fold(last), "first_name": folding.fold(first)}
            if not (last + first).isascii() else None,
            "typo_name": {"last_name": _typo(compact_last, rng)} if len(compact_last) >= 5 else None,
            "name_prefixes": {"last_name": compact_last[:5], "first_name": folding.compact(first)[:3]},
            "first_name_prefix": {"first_name": folding.compact(first)[:4]} if len(folding.compact(first)) >= 4
            else None,
            "mrn": {"mrn": mrn},
            "born_physician": {"born": str(year), "physician": physician} if year else None,
            "archived_year": {"status": "archived", "archived_after": f"{archived[:4]}-01-01",
                              "archived_before": f"{archived[:4]}-12-31"} if status == "archived" else None,
        }
        for name, criteria in candidates.items():
            if criteria and len(queries[name]) < requests:
                queries[name].append(criteria)
    return queries


def interleaved(queries: dict[str, list[dict[str, str]]]) -> list[tuple[str, dict[str, str]]]:
    """Round robin over the query types, so that no type runs only while the machine is busy."""
    order = []
    for i in range(max(len(v) for v in queries.values())):
        order += [(name, values[i]) for name, values in queries.items() if i < len(values)]
    return order


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """`rtvault serve` in a subprocess on a free loopback port, stopped by `stop()`."""

    def __init__(self, site: Path) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "RTVAULT_CONFIG"}
        self.process = subprocess.Popen([sys.executable, "-m", "rtvault", "serve", "--host", "127.0.0.1", "--port",
                                         str(self.port)], cwd=site, env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(f"{self.base}/api/search", timeout=2).status_code == 401:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise SystemExit(f"rtvault serve did not answer on port {self.port}: {self.process.stderr.read()[-2000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(site: Path, token: str, order: list[tuple[str, dict[str, str]]]) -> tuple[dict, float, float]:
    """Milliseconds per request, by query type, through HTTP and through the library, and totals found; the
    CPU seconds the rest of the machine used meanwhile (it may be shared), and the wall time."""
    times: dict[str, dict[str, list[float]]] = {name: {"http": [], "library": [], "total": []} for name in QUERY_TYPES}
    server = Server(site)
    wait_quiet()
    busy, own, started = busy_s(), os.times(), time.monotonic()
    try:
        with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client, \
                open_catalog(f"sqlite:///{site / 'catalog.sqlite'}") as db:
            for _, criteria in order[:40]:  # warm-up: imports, connections, caches; not counted
                client.get("/api/search", params=criteria).raise_for_status()
                search(db, Criteria(**criteria))
            for name, criteria in order:
                sent = time.perf_counter()
                answer = client.get("/api/search", params=criteria)
                times[name]["http"].append((time.perf_counter() - sent) * 1000)
                answer.raise_for_status()
                sent = time.perf_counter()
                found = search(db, Criteria(**criteria))
                times[name]["library"].append((time.perf_counter() - sent) * 1000)
                times[name]["total"].append(found.total)
                if found.total != answer.json()["total"]:
                    raise SystemExit(f"HTTP and library disagree on {criteria}")
        mine = sum(os.times()[:2]) - sum(own[:2]) + process_cpu_s(server.process.pid)
        others = busy_s() - busy - mine
    finally:
        server.stop()
    return times, max(0.0, others), time.monotonic() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def stats(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": round(percentile(values, 0.50), 2), "p95": round(percentile(values, 0.95), 2),
            "p99": round(percentile(values, 0.99), 2), "mean": round(sum(values) / len(values), 2)}


def run_size(work: Path, size: int, requests: int, seed: int, reuse: bool) -> dict:
    site = work / f"sqlite-{size}"
    if reuse and (site / "run.json").is_file():
        made = json.loads((site / "run.json").read_text())
    else:
        shutil.rmtree(site, ignore_errors=True)
        made = make_site(site, size, seed)
        (site / "run.json").write_text(json.dumps(made))
    queries = draw_queries(f"sqlite:///{site / 'catalog.sqlite'}", requests, seed)
    times, others, wall = measure(site, made["token"], interleaved(queries))
    return {"dialect": "sqlite", "patients": size, "fill": made["fill"], "fill_wall_s": made["fill_wall_s"],
            "catalog_bytes": made["size_bytes"], "others_cpu_s": round(others, 1), "measure_wall_s": round(wall, 1),
            "queries": {name: {"http_ms": stats(t["http"]), "library_ms": stats(t["library"]),
                               "mean_total": round(sum(t["total"]) / len(t["total"]), 1),
                               "examples": queries[name][:3]} for name, t in times.items()}}


def machine(work: Path) -> dict[str, str]:
    def output(*cmd: str) -> str:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()

    cpus = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")]
    src = output(sys.executable, "-c", "import rtvault, pathlib; print(pathlib.Path(rtvault.__file__).parents[2])")
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "nproc": output("nproc"),
        "memory": f"{int(Path('/proc/meminfo').read_text().split()[1]) / 2**20:.1f} GiB (MemTotal)",
        "cpu": cpus[0] if cpus else "?",
        "disk": "{} ({}): {} total, {} used, {} free".format(*output("df", "-hT", str(work)).split()[-7:-2]),
        "os": platform.platform(), "python": platform.python_version(),
        "sqlite": __import__("sqlite3").sqlite_version,
        "rtvault": f"{output(sys.executable, '-m', 'rtvault', '--version')} from {src} (git "
                   f"{output('git', '-C', src, 'describe', '--always', '--dirty') or '?'})",
    }


def verdicts(runs: list[dict]) -> list[dict]:
    """Per query type: p95 at the largest size vs the smallest (≤ 2×), and p95 at the largest (< 50 ms)."""
    small, large = min(runs, key=lambda r: r["patients"]), max(runs, key=lambda r: r["patients"])
    rows = []
    for name in QUERY_TYPES:
        row = {"query": name}
        for channel in ("http_ms", "library_ms"):
            p_small, p_large = small["queries"][name][channel]["p95"], large["queries"][name][channel]["p95"]
            row[channel] = {"p95_small": p_small, "p95_large": p_large, "ratio": round(p_large / p_small, 2)}
        row["ratio_result"] = "PASS" if row["http_ms"]["ratio"] <= TARGET_RATIO else "MISS"
        row["p95_result"] = "PASS" if row["http_ms"]["p95_large"] < TARGET_P95_MS else "MISS"
        rows.append(row)
    return rows


def summary_table(results: dict) -> list[str]:
    runs = results["runs"]
    small, large = min(runs, key=lambda r: r["patients"]), max(runs, key=lambda r: r["patients"])
    lines = [f"| query | p50 / p95 / p99 ms at {small['patients']:,} | p50 / p95 / p99 ms at {large['patients']:,} | "
             f"p95 ratio | ≤ {TARGET_RATIO:g}× | p95 < {TARGET_P95_MS:g} ms | library p95 ms ({small['patients']:,} → "
             f"{large['patients']:,}) | mean total found ({small['patients']:,} → {large['patients']:,}) |",
             "|---|---:|---:|---:|---|---|---:|---:|"]
    for row in results["verdicts"]:
        name = row["query"]
        cells = [" / ".join(f"{r['queries'][name]['http_ms'][p]:.1f}" for p in ("p50", "p95", "p99"))
                 for r in (small, large)]
        lib = row["library_ms"]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} | {row['http_ms']['ratio']:.2f}× | {row['ratio_result']} | "
                     f"{row['p95_result']} | {lib['p95_small']:.2f} → {lib['p95_large']:.2f} | "
                     f"{small['queries'][name]['mean_total']:g} → {large['queries'][name]['mean_total']:g} |")
    return lines


def write_results(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results-search.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    m = results["machine"]
    fills = [f"- {r['patients']:,} patients: `rtvault catalog fill --patients {r['patients']} --seed "
             f"{results['seed']}` {r['fill_wall_s']:.1f} s wall ({r['fill']['seconds']:.1f} s in fill()), "
             f"{r['fill']['versions']:,} versions, {r['fill']['locations']:,} locations, {r['fill']['terms']:,} "
             f"terms, {r['fill']['distinct_last_names']:,} distinct last names, catalog "
             f"{r['catalog_bytes'] / 2**30:.2f} GiB; others' CPU during the measurements "
             f"{r['others_cpu_s']:.1f} s of {r['measure_wall_s']:.0f} s" for r in results["runs"]]
    sizes = " and ".join(f"{r['patients']:,}" for r in results["runs"])
    section = [
        f"# Search latency at {sizes} patients", "",
        f"Generated by `python bench/search.py` on {m['date']} (method in bench/README.md). SQLite catalog filled "
        f"with synthetic patients; {results['requests']} requests per query type, interleaved, values drawn from "
        "the catalog; `GET /api/search` through `rtvault serve` (uvicorn, keep-alive, Bearer token, audit "
        "record included); the library column is `search()` alone on the same queries.", "",
        *summary_table(results), "", *fills, "",
    ]
    queries = [f"- {name}: {text}; e.g. " + "; ".join(
        "`" + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in q.items()) + "`"
        for q in results["runs"][-1]["queries"][name]["examples"][:2]) for name, text in QUERY_TYPES.items()]
    full = [*section, "## Queries", "", *queries, "", "## Machine", "",
            *[f"- {k}: {v}" for k, v in m.items() if k != "date"], ""]
    write_section(out / "results-search.md", "search measurements", "\n".join(full))  # notes after it are kept
    demoted = ["#" + line if line.startswith("# ") else line for line in section]
    demoted.append("Queries and machine: results-search.md.")
    write_section(out / "results.md", "search benchmark", "\n".join(demoted))


def busy_s() -> float:
    """CPU seconds the whole machine has been busy since boot (/proc/stat: all but idle and iowait)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def wait_quiet(limit_s: int = 120) -> None:
    """The machine may be shared: wait, at most limit_s, for a second in which it used < 10 % of a CPU."""
    for _ in range(limit_s):
        before = busy_s()
        time.sleep(1)
        if busy_s() - before < 0.1:
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,1000000", help="catalog sizes, comma-separated")
    parser.add_argument("--requests", type=int, default=200, help="requests per query type and size")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, help="where the catalogs go (default: a new temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--reuse", action="store_true", help="reuse catalogs filled by an earlier run in --work")
    parser.add_argument("--out", type=Path, default=HERE, help="where the results go")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="rtvault-bench-search-"))
    runs = []
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            print(f"{size:,} patients ...", file=sys.stderr, flush=True)
            runs.append(run_size(work, size, args.requests, args.seed, args.reuse))
        results = {"seed": args.seed, "requests": args.requests, "machine": machine(work), "runs": runs,
                   "verdicts": verdicts(runs)}
        write_results(results, args.out)
        print("\n".join(summary_table(results)))
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
