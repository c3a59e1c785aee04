"""Rolling verification: every file of a store re-read and re-hashed once per cycle, a slice per run.

The state lives in the store itself (`verify/state.json`, the one small file a verify rewrites, atomically with
`backend.replace`): the store is the truth, whichever machine verifies it. Keys are visited in sorted order; the
cursor is the last key verified in the current cycle. Verifying only reads, so it takes no writer lock and runs
beside a backup or a prune; a file that vanishes between the listing and its reading (pruned) is no problem.
Two verifies of the same store at once both work from the state they read and the last one to save wins: no
corruption, at worst a slice verified twice.

What is checked, per kind of key:
- content objects and trees: decompressed and re-hashed against their name (`corrupt`);
- snapshot manifests: parsed, and every tree they name and every object those trees name exists (`missing`);
- archives: the tar hashes to its id, the index parses and names existing files and objects, the `.sha256`
  manifest agrees with the index, summaries and overrides parse;
- anything else (a `data/` name that is not a SHA-256, a stray file) is `unexpected`.
A problem stays in the state until a later verify finds the key good (each run re-checks the known problems
first), or `rtvault repair` fixes it, or, for a missing key, nothing names it any more.
"""

from __future__ import annotations

import json
import math
import re
import time
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO

from rtvault.archive import records
from rtvault.errors import InputError, StoreError
from rtvault.events import NoProgress, Progress
from rtvault.store import Store
from rtvault.store.backend import Backend
from rtvault.store.objects import verify_object

STATE_KEY = "verify/state.json"
IGNORED_PREFIXES = ("locks/", "tmp/", "verify/", "copies/")  # mutable or staging files: never verified, never
# unexpected (`copies/` holds the replication records a target received)
CHECKPOINT_S = 30.0  # a long run saves its cursor this often, so that a killed run loses little
_H = "[0-9a-f]{64}"
_KINDS = (
    ("object", re.compile(rf"data/(?P<p>[0-9a-f]{{2}})/(?P<h>{_H})")),
    ("tree", re.compile(rf"trees/(?P<p>[0-9a-f]{{2}})/(?P<h>{_H})")),
    ("manifest", re.compile(r"snapshots/(?P<id>[^/]+)\.json")),
    ("tar", re.compile(rf"archives/tars/(?P<p>[0-9a-f]{{2}})/(?P<h>{_H})")),
    ("record", re.compile(rf"archives/(?P<h>{_H})\.json")),
    ("checksums", re.compile(rf"archives/(?P<h>{_H})\.sha256")),
    ("summary", re.compile(rf"archives/summaries/(?P<h>{_H})\.json")),
    ("override", re.compile(rf"archives/overrides/(?P<h>{_H})/[^/]+\.json")),
    ("format", re.compile(r"rtvault-store\.json")),
)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def classify(key: str) -> tuple[str, str]:
    """(kind, digest or id) of a store key; kind "unexpected" for anything rtvault never writes."""
    for kind, pattern in _KINDS:
        if match := pattern.fullmatch(key):
            groups = match.groupdict()
            if "p" in groups and not groups["h"].startswith(groups["p"]):
                break
            return kind, groups.get("h") or groups.get("id") or ""
    return "unexpected", ""


@dataclass
class VerifyProblem:
    key: str
    kind: str  # missing | corrupt | unexpected
    found: str  # when first found (ISO)
    detail: str
    needed_by: str | None = None  # for a missing key: the manifest or archive index that names it

    def to_json(self) -> dict[str, object]:
        return asdict(self)


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
                and self.last_cycle_completed >= self.cycle_started)

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
    except (ValueError, TypeError) as error:  # a damaged state only costs the cursor: start again
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

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "healthy": self.healthy, "problems": [p.to_json() for p in self.problems]}


class _CountedFile:
    """A stored file being read, noting how far into it the reading went."""

    def __init__(self, raw: BinaryIO, counter: CountingBackend, key: str) -> None:
        self.raw, self.counter, self.key = raw, counter, key
        self.position = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.position += len(data)
        self.counter.note(self.key, self.position)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = self.raw.seek(offset, whence)
        return self.position

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> _CountedFile:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.raw.close()


class CountingBackend:
    """A backend seen through a note of how many stored bytes of each key were read: the bytes a verify
    covered, whatever the backend, at no extra request."""

    def __init__(self, backend: Backend) -> None:
        self.inner = backend
        self.read_up_to: dict[str, int] = {}

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def note(self, key: str, position: int) -> None:
        self.read_up_to[key] = max(self.read_up_to.get(key, 0), position)

    def get(self, key: str) -> bytes:
        data = self.inner.get(key)
        self.note(key, len(data))
        return data

    def open(self, key: str) -> BinaryIO:
        return _CountedFile(self.inner.open(key), self, key)  # type: ignore[return-value]


def _detail(key: str, error: Exception) -> str:
    """The error's sentence without the key it starts with (the problem names the key already)."""
    text = str(error)
    for prefix in (f"{key} is ", f"{key}: ", f"{key} "):
        text = text.removeprefix(prefix)
    return text


class Checker:
    """Checks keys of one store; its findings may concern other keys (a manifest finds missing objects)."""

    def __init__(self, store: Store, now: str, listed: set[str] | None = None) -> None:
        self.backend = CountingBackend(store.backend)
        self.store = Store(self.backend, store.info)
        self.now = now
        self.listed = listed
        self.findings: dict[str, VerifyProblem] = {}
        self._expanded: set[str] = set()  # trees whose objects were already looked for in this run

    def bytes_of(self, keys: Iterable[str]) -> int:
        """Stored bytes of these keys read back (each counted once, however often it was read)."""
        return sum(self.backend.read_up_to.get(key, 0) for key in keys)

    def _exists(self, key: str) -> bool:
        # the listing is a cheap first answer; a key written after it was taken is confirmed by asking
        return (self.listed is not None and key in self.listed) or self.backend.exists(key)

    def _problem(self, key: str, kind: str, detail: str, needed_by: str | None = None) -> None:
        self.findings.setdefault(key, VerifyProblem(key, kind, self.now, detail, needed_by))

    def _need(self, key: str, by: str) -> bool:
        if self._exists(key):
            return True
        self._problem(key, "missing", f"{by} names it", by)
        return False

    def check(self, key: str) -> None:
        """Check one key that was listed; a key that vanished since (pruned) is no finding."""
        kind, name = classify(key)
        try:
            getattr(self, f"_check_{kind}")(key, name)
        except (StoreError, OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            if kind != "unexpected" and not self.backend.exists(key):
                return
            self._problem(key, "corrupt", _detail(key, error))

    def _check_unexpected(self, key: str, _name: str) -> None:
        if self.backend.exists(key):
            self._problem(key, "unexpected", "rtvault never writes such a file here")

    def _check_object(self, _key: str, digest: str) -> None:
        verify_object(self.backend, digest)

    def _check_tree(self, _key: str, digest: str) -> None:
        self.store.get_tree(digest)

    def _expand_tree(self, digest: str, by: str) -> None:
        tree_key = f"trees/{digest[:2]}/{digest}"
        if digest in self._expanded or not self._need(tree_key, by):
            return
        self._expanded.add(digest)
        try:
            tree = self.store.get_tree(digest)
        except (StoreError, ValueError) as error:
            self._problem(tree_key, "corrupt", _detail(tree_key, error))
            return
        for entry in tree["files"]:
            self._need(f"data/{entry['hash'][:2]}/{entry['hash']}", by)

    def _check_manifest(self, key: str, snapshot_id: str) -> None:
        manifest = json.loads(self.backend.get(key))
        if manifest.get("id") != snapshot_id or not isinstance(manifest.get("patients"), list):
            raise ValueError("not a snapshot manifest of this name (no id, or another id, or no patient list)")
        roots = [p["tree"] for p in manifest["patients"]] + ([manifest["other"]["tree"]] if manifest.get("other")
                                                              else [])
        for digest in roots:
            self._expand_tree(digest, key)

    def _check_tar(self, key: str, archive_id: str) -> None:
        if not records.verify_tar(self.store, archive_id):
            raise StoreError("damaged: the archive file does not hash to its id")

    def _record(self, archive_id: str) -> dict:
        record = json.loads(self.backend.get(f"archives/{archive_id}.json"))
        if record.get("id") != archive_id or not isinstance(record.get("members"), list):
            raise ValueError("not the index of this archive (another id, or no member list)")
        return record

    def _check_record(self, key: str, archive_id: str) -> None:
        record = self._record(archive_id)
        self._need(f"archives/tars/{archive_id[:2]}/{archive_id}", key)
        self._need(f"archives/{archive_id}.sha256", key)
        if record.get("compression") != "none":
            for member in record["members"]:
                if member.get("hash"):
                    self._need(f"data/{member['hash'][:2]}/{member['hash']}", key)

    def _check_checksums(self, key: str, archive_id: str) -> None:
        lines = self.backend.get(key).decode("utf-8", "surrogateescape").splitlines()
        found = {tuple(line.split("  ", 1)) for line in lines}
        try:
            record = self._record(archive_id)
        except (StoreError, ValueError):
            return  # judged against the index only; a broken index is the index's own problem
        wanted = {(m["hash"], m["name"]) for m in record["members"] if m.get("hash") and m.get("complete", True)}
        if found != wanted:
            raise ValueError("damaged: it does not list the members of the archive's index")

    def _check_summary(self, key: str, archive_id: str) -> None:
        if json.loads(self.backend.get(key)).get("id") != archive_id:
            raise ValueError("not the summary of this archive")

    def _check_override(self, key: str, _name: str) -> None:
        if not {"kind", "date", "reason"} <= json.loads(self.backend.get(key)).keys():
            raise ValueError("not a retention override")

    def _check_format(self, key: str, _name: str) -> None:
        if json.loads(self.backend.get(key)).get("format") != "rtvault-store":
            raise ValueError("not an rtvault store format file")


def store_keys(store: Store) -> list[str]:
    """Every key to verify, sorted: all of the store but its mutable and staging files."""
    keys = (k.removeprefix("./") for k in store.backend.list(""))
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
          gone: set[str] = frozenset()) -> list[VerifyProblem]:  # type: ignore[assignment]
    """Known problems after a run: the findings (first-found time kept), plus the old problems of keys this
    run did not check; a checked key without finding is good again, a `gone` one is no longer a problem."""
    previous = {p.key: p for p in old}
    merged = {k: p for k, p in previous.items() if k not in checked and k not in gone}
    for key, problem in findings.items():
        before = previous.get(key)
        merged[key] = problem if before is None or before.kind != problem.kind else \
            VerifyProblem(key, problem.kind, before.found, problem.detail, problem.needed_by)
    return sorted(merged.values(), key=lambda p: p.key)


def recheck(checker: Checker, problems: list[VerifyProblem]) -> tuple[set[str], set[str]]:
    """Check again the keys of known problems: (keys checked, keys no longer a problem without a check: a
    missing key that nothing names any more, a stray file since removed)."""
    checked, gone = set(), set()
    for problem in problems:
        if checker.backend.exists(problem.key):
            checker.check(problem.key)
            checked.add(problem.key)
        elif problem.kind == "missing" and problem.needed_by and checker.backend.exists(problem.needed_by):
            checker.findings.setdefault(problem.key, problem)
        else:
            gone.add(problem.key)
    return checked, gone


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
    try:
        for done, key in enumerate(todo, 1):
            checker.check(key)
            checked.add(key)
            state.cursor = key
            state.verified_this_cycle += 1
            progress.advance()
            if budget.seconds is not None and not all and time.monotonic() - started >= budget.seconds:
                todo = todo[:done]
                break
            if time.monotonic() - last_save > CHECKPOINT_S:
                state.problems = merge(state.problems, checked, checker.findings, gone)
                save_state(store, state)
                last_save = time.monotonic()
    finally:
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
                        problems=state.problems)
