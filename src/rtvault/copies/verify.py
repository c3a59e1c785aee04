"""Rolling verification: every file of a store re-read and re-hashed once per cycle, a slice per run.

The state lives in the store itself (`verify/state.json`, the one small file a verify rewrites, atomically with
`backend.replace`): the store is the truth, whichever machine verifies it. Keys are visited in sorted order; the
cursor is the last key verified in the current cycle. Verifying only reads, so it takes no writer lock and runs
beside a backup or a prune; a file that vanishes between the listing and its reading (pruned) is no problem.
Two verifies of the same store at once both work from the state they read and the last one to save wins: no
corruption, at worst a slice verified twice.

What is checked, per kind of key:
- content objects and trees: decompressed and re-hashed against their name (`corrupt`);
- snapshot manifests: parsed and matching their integrity hash (`corrupt`), and every tree they name and every
  object those trees name exists (`missing`);
- archives: the tar hashes to its id, the index parses and names existing files and objects, the `.sha256`
  manifest agrees with the index, summaries, overrides and records of destroyed archives parse;
- run journal segments: parsed and matching their integrity hash and their name;
- the DICOM node's receipts (`dicom/receipts/`): parsed and matching their integrity hash and their name, and
  every received object they name exists (`missing`); the records of destroyed received objects
  (`dicom/destroyed/`) parse and match their name;
- an archive the store records as destroyed (`archives/destroyed/`) whose files it still holds is named in
  `pending_destruction` (not a problem of the store: the job removes it, jobs/destruction.py);
- anything else (a `data/` name that is not a SHA-256, a stray file) is `unexpected`.
A problem stays in the state until a later verify finds the key good (each run re-checks the known problems
first), or `rtvault repair` fixes it, or, for a missing key, the file that named it (checked again) no longer
does, or is gone.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from rtvault.copies.checks import Checker, VerifyProblem
from rtvault.errors import InputError
from rtvault.events import NoProgress, Progress
from rtvault.store import Store
from rtvault.utc import iso, parse

STATE_KEY = "verify/state.json"
IGNORED_PREFIXES = ("locks/", "tmp/", "verify/", "copies/", "roles/", "heads/", "dicom/spool/")  # mutable or staging
# files: never verified, never unexpected (`copies/` holds the replication records a target received, `roles/` a
# failover's record, `heads/` the journal's newest segment, `dicom/spool/` what the DICOM node has not sealed yet)
FOLDERS = ("data/", "trees/", "snapshots/", "archives/", "journal/", "catalog/", "dicom/receipts/", "dicom/destroyed/")
TOP_FILES = ("rtvault-store.json",)
WORKERS = 4  # threads checking keys: two cores are kept busy, a remote store's latency is overlapped
CHECKPOINT_S = 30.0  # a long run saves its cursor this often, so that a killed run loses little


@dataclass
class VerifyState:
    cycle_started: str | None = None
    cursor: str | None = None
    last_cycle_completed: str | None = None
    verified_this_cycle: int = 0
    problems: list[VerifyProblem] = field(default_factory=list)
    last_run: str | None = None

    @property
    def cycle_finished(self) -> bool:
        """The last run reached the end of the keys: the next one starts a new cycle."""
        return (self.cursor is None and self.cycle_started is not None and self.last_cycle_completed is not None
                and parse(self.last_cycle_completed) >= parse(self.cycle_started))  # `Z` or `+00:00`

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "problems": [p.to_json() for p in self.problems]}


def load_state(store: Store) -> VerifyState:
    """The store's verification state; a store never verified has an empty one (last_run None)."""
    if not store.backend.exists(STATE_KEY):
        return VerifyState()
    try:
        data = json.loads(store.backend.get(STATE_KEY))
        problems = [VerifyProblem(**p) for p in data.pop("problems", [])]
        return VerifyState(**data, problems=problems)
    except (ValueError, TypeError, RecursionError) as error:  # a damaged state only costs the cursor: start again
        return VerifyState(problems=[VerifyProblem(STATE_KEY, "corrupt", iso(datetime.now(UTC)),
                                                   f"unreadable verification state: {error}")])


def save_state(store: Store, state: VerifyState) -> None:
    data = json.dumps(state.to_json(), indent=1).encode() + b"\n"
    # the first save creates the file (and, on a directory, its folder, which `replace` does not)
    if not store.backend.create_exclusive(STATE_KEY, data):
        store.backend.replace(STATE_KEY, data)


@dataclass(frozen=True)
class Budget:
    """How much one run verifies: a duration, a percentage of the store, or (neither) the cycle's daily share."""

    seconds: float | None = None
    percent: float | None = None


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_budget(text: str | None) -> Budget:
    """`10m`, `90s`, `2h`, `1d` or `5%`; None or empty for the daily share of the cycle."""
    if not text:
        return Budget()
    value = text.strip().lower()
    if match := re.fullmatch(r"(\d+(?:\.\d+)?)\s*%", value):
        percent = float(match.group(1))
        if 0 < percent <= 100:
            return Budget(percent=percent)
    elif (match := re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd])", value)) and float(match.group(1)) > 0:
        return Budget(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    raise InputError(f"budget {text!r} is neither a duration (90s, 10m, 2h, 1d) nor a percentage of the store "
                     "between 0 and 100 (5%)")


@dataclass
class VerifyReport:
    location: str  # the store's directory or URL
    objects_verified: int = 0  # keys read and checked by this run
    bytes: int = 0  # stored bytes read
    total: int = 0  # keys in the store
    coverage_percent: float = 0.0  # of the current cycle, after this run
    cycle_started: str | None = None
    cycle_completed: bool = False
    duration_s: float = 0.0
    problems: list[VerifyProblem] = field(default_factory=list)  # every known problem after this run
    pending_destruction: list[str] = field(default_factory=list)  # archives recorded destroyed yet still held

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "healthy": self.healthy, "problems": [p.to_json() for p in self.problems]}


def store_keys(store: Store) -> list[str]:
    """Every key to verify, sorted: all of the store but its mutable and staging files. The folders rtvault
    writes are listed one by one, so that they are verified even on a backend whose `list("")` (the whole
    store, which finds stray files anywhere) yields nothing."""
    keys = {k.removeprefix("./") for k in store.backend.list("")}
    if not keys.issuperset(TOP_FILES):  # the whole-store listing does not work here
        keys.update(k for folder in FOLDERS for k in store.backend.list(folder))
        keys.update(k for k in TOP_FILES if store.backend.exists(k))
    return sorted(k for k in keys if not k.startswith(IGNORED_PREFIXES))


def _slice(keys: list[str], state: VerifyState, budget: Budget, cycle_days: int, everything: bool) -> list[str]:
    if everything:
        return keys
    start = bisect_right(keys, state.cursor) if state.cursor else 0
    if budget.seconds is not None:
        return keys[start:]  # cut by time while verifying
    share = len(keys) * budget.percent / 100 if budget.percent else len(keys) / cycle_days
    return keys[start:start + max(1, math.ceil(share))]


def merge(old: Iterable[VerifyProblem], checked: set[str], findings: dict[str, VerifyProblem],
          gone: Iterable[str] = ()) -> list[VerifyProblem]:
    """Known problems after a run: the findings (first-found time kept), plus the old problems of keys this
    run did not check; a checked key without finding is good again, a `gone` one is no longer a problem."""
    previous = {p.key: p for p in old}
    dropped = checked | set(gone)
    merged = {k: p for k, p in previous.items() if k not in dropped}
    for key, problem in findings.items():
        before = previous.get(key)
        merged[key] = problem if before is None or before.kind != problem.kind else \
            VerifyProblem(key, problem.kind, before.found, problem.detail, problem.needed_by)
    return sorted(merged.values(), key=lambda p: p.key)


def recheck(checker: Checker, problems: list[VerifyProblem]) -> tuple[set[str], set[str]]:
    """Check again the keys of known problems: (keys checked, keys no longer a problem without a check of their
    own: a stray file since removed, a missing key that nothing names any more). A missing key is looked for
    again through the file that named it, checked afresh: a manifest or index since fixed, or found damaged,
    no longer names it (what a damaged manifest names is not trusted), and the problem goes."""
    checked, gone = set(), set()
    for problem in problems:
        if checker.backend.exists(problem.key):
            checker.check(problem.key)
            checked.add(problem.key)
        elif problem.kind == "missing" and problem.needed_by and checker.backend.exists(problem.needed_by):
            if problem.needed_by not in checked:
                checker.check(problem.needed_by)
                checked.add(problem.needed_by)
            if problem.key not in checker.findings:
                gone.add(problem.key)
        else:
            gone.add(problem.key)
    return checked, gone


def checked_in_order(checker: Checker, keys: list[str]) -> Iterator[str]:
    """Check keys on WORKERS threads (decompressing and hashing release the GIL; S3 reads wait in parallel),
    yielding each key once checked, in order, so that the cursor only passes keys done. A few keys are checked
    ahead; when the caller stops early they finish, and what they found is kept."""
    pending = iter(keys)
    with ThreadPoolExecutor(WORKERS) as pool:
        window = deque((key, pool.submit(checker.check, key)) for key in itertools.islice(pending, 2 * WORKERS))
        while window:
            key, future = window.popleft()
            future.result()
            if (following := next(pending, None)) is not None:
                window.append((following, pool.submit(checker.check, following)))
            yield key


def _begin_cycle(state: VerifyState, now: str, everything: bool) -> None:
    if everything or state.cycle_started is None or state.cycle_finished:
        state.cycle_started, state.cursor, state.verified_this_cycle = now, None, 0


def verify(store: Store, *, budget: Budget | None = None, cycle_days: int = 30, now: datetime | None = None,
           progress: Progress | None = None, all: bool = False) -> VerifyReport:
    """Verify the next slice of the store (everything with `all`) and save the state in the store."""
    started, moment = time.monotonic(), iso(now or datetime.now(UTC))
    budget = budget or Budget()
    progress = progress or NoProgress()
    state = load_state(store)
    _begin_cycle(state, moment, all)
    keys = store_keys(store)
    checker = Checker(store, moment, set(keys))
    checked, gone = recheck(checker, [p for p in state.problems if p.key != STATE_KEY])
    gone.add(STATE_KEY)
    todo = _slice(keys, state, budget, cycle_days, all)
    last_save = time.monotonic()
    progress.begin(f"Verifying {store.location}", len(todo))
    in_order = checked_in_order(checker, todo)
    try:
        for done, key in enumerate(in_order, 1):
            checked.add(key)
            state.cursor = key
            state.verified_this_cycle += 1
            progress.advance()
            if budget.seconds is not None and not all and time.monotonic() - started >= budget.seconds:
                todo = todo[:done]
                break
            if time.monotonic() - last_save > CHECKPOINT_S:
                state.problems = merge(state.problems, checked, dict(checker.findings), gone)  # a copy: threads add
                save_state(store, state)
                last_save = time.monotonic()
    finally:
        in_order.close()  # the keys checked ahead finish before the state is merged
        progress.end()
    return _finish(store, state, keys, todo, checker, checked, gone, started)


def _finish(store: Store, state: VerifyState, keys: list[str], todo: list[str], checker: Checker,
            checked: set[str], gone: set[str], started: float) -> VerifyReport:
    completed = not keys or (bool(todo) and todo[-1] == keys[-1])
    if completed:
        state.cursor, state.last_cycle_completed = None, checker.now
    state.problems = merge(state.problems, checked, checker.findings, gone)
    state.last_run = checker.now
    save_state(store, state)
    coverage = 100.0 if completed or not keys else min(100.0, 100 * state.verified_this_cycle / len(keys))
    return VerifyReport(location=store.location, objects_verified=len(todo), bytes=checker.bytes_of(todo),
                        total=len(keys), coverage_percent=round(coverage, 1), cycle_started=state.cycle_started,
                        cycle_completed=completed, duration_s=round(time.monotonic() - started, 3),
                        problems=state.problems, pending_destruction=pending_destruction(keys))


def pending_destruction(keys: Iterable[str]) -> list[str]:
    """The archives a store records as legally destroyed (`archives/destroyed/<id>.json`) whose files it still
    holds (a destruction interrupted, or decided while the store was offline): removed by `rtvault verify` (the
    job) or `rtvault archive delete --pending`."""
    destroyed, held = set(), set()
    for key in keys:
        if key.startswith("archives/destroyed/") and key.endswith(".json"):
            destroyed.add(key.removeprefix("archives/destroyed/").removesuffix(".json"))
        elif _ARCHIVE_FILE.fullmatch(key):
            held.add(key.rsplit("/", 1)[-1].split(".", 1)[0])
    return sorted(destroyed & held)


_ARCHIVE_FILE = re.compile(r"archives/(?:[0-9a-f]{64}\.(?:json|sha256)|summaries/[0-9a-f]{64}\.json|"
                           r"tars/[0-9a-f]{2}/[0-9a-f]{64})")
