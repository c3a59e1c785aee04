"""Self-repair: each missing or corrupt file of a store replaced from another configured store.

The work list is the store's verification state (`rtvault.copies.verify`), every key checked afresh first: a key
good again is only cleared. For each damaged key the other stores are tried in configuration order; a copy is
used only once it verifies there (objects and trees re-hashed, archive files against their id, indexes parsed
and checked against what they name). The damaged file is then deleted and the good one committed (content
through replication's checked copy, which re-hashes while reading and again on the store once written), and
the key is checked once more on the repaired store. Content goes first, then archive side files, then indexes
and manifests: the store's write order. Repair writes, so it holds the store's writer lock.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from rtvault import configured
from rtvault.config import Config
from rtvault.copies.checks import Checker, VerifyProblem, classify
from rtvault.copies.replicate import copy_content
from rtvault.copies.verify import Budget, VerifyReport, load_state, merge, recheck, save_state, verify
from rtvault.errors import ConfigError, Problem, RtvaultError, StoreError
from rtvault.events import NoProgress, Progress
from rtvault.store import Store
from rtvault.store.locks import WriterLock
from rtvault.utc import iso

CONTENT_KINDS = ("object", "tree", "tar")
ORDER = {"object": 0, "tree": 0, "tar": 0, "checksums": 1, "summary": 1, "override": 1, "destroyed": 1, "journal": 1,
         "record": 2, "receipt": 2,
         "manifest": 2}  # the store's write order: what an index names is in place before the index
NOT_COPIED = {"format": "each store has its own format file and id: restore it by hand (docs/design.md)",
              "unexpected": "a file rtvault never writes: look at it, then delete it by hand"}


@dataclass
class RepairReport:
    store: str
    repaired: list[dict[str, str]] = field(default_factory=list)  # key, kind, from (store name)
    unrepairable: list[dict[str, str]] = field(default_factory=list)  # key, kind, detail
    already_good: list[str] = field(default_factory=list)  # problems the fresh check found fixed
    warnings: list[Problem] = field(default_factory=list)  # other stores that could not be opened

    @property
    def healthy(self) -> bool:
        return not self.unrepairable

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "healthy": self.healthy, "warnings": [w.to_json() for w in self.warnings]}


class _Donors:
    """The other configured stores, opened on first need; one that cannot be opened is a warning."""

    def __init__(self, config: Config, name: str, warnings: list[Problem]) -> None:
        self.config, self.warnings = config, warnings
        self.names = [n for n in config.stores if n != name]
        self._open: dict[str, Store | None] = {}

    def stores(self) -> list[tuple[str, Store]]:
        for name in self.names:
            if name not in self._open:
                try:
                    self._open[name] = configured.open_store(self.config, name)
                except StoreError as error:
                    self._open[name] = None
                    self.warnings.append(Problem(name, f"not used for repair: {error}"))
        return [(n, s) for n in self.names if (s := self._open[n]) is not None]


def _phase(problem: VerifyProblem) -> int:
    return ORDER.get(classify(problem.key)[0], 3)


def _good_on(donor: Store, key: str) -> bool:
    if not donor.backend.exists(key):
        return False
    checker = Checker(donor, iso(datetime.now(UTC)))
    checker.check(key)
    return key not in checker.findings


def _write(store: Store, donor: Store, key: str) -> str | None:
    """Replace `key` on the store by the donor's good copy; the reason when the copy failed."""
    store.backend.delete(key)  # a commit never overwrites: the damaged file goes first
    try:
        if classify(key)[0] in CONTENT_KINDS:
            _key, _size, problem = copy_content(donor.backend, store.backend, key)
            return None if problem is None else problem.message
        store.backend.put(key, donor.backend.get(key), durable=True)
    except StoreError as error:  # the donor failed meanwhile (unmounted, S3 down): the next donor is tried
        return str(error)
    return None


def _repair_one(store: Store, donors: _Donors, problem: VerifyProblem, report: RepairReport) -> bool:
    kind = classify(problem.key)[0]
    if problem.kind == "unexpected" or kind in NOT_COPIED:
        report.unrepairable.append({"key": problem.key, "kind": problem.kind,
                                    "detail": NOT_COPIED["unexpected" if problem.kind == "unexpected" else kind]})
        return False
    tried = []
    for name, donor in donors.stores():
        if not _good_on(donor, problem.key):
            tried.append(name)
            continue
        failure = _write(store, donor, problem.key)
        checker = Checker(store, iso(datetime.now(UTC)))
        checker.check(problem.key)
        if failure is None and problem.key not in checker.findings:
            report.repaired.append({"key": problem.key, "kind": problem.kind, "from": name})
            return True
        tried.append(f"{name} (copied, but {failure or checker.findings[problem.key].detail})")
    where = ", ".join(tried) if tried else "no other store is configured or reachable"
    report.unrepairable.append({"key": problem.key, "kind": problem.kind,
                                "detail": f"no good copy found ({where})"})
    return False


def repair(config: Config, store_name: str | None, *, progress: Progress | None = None) -> RepairReport:
    """Replace every missing or corrupt file the store's verification state lists from another store."""
    progress = progress or NoProgress()
    name = _names(config, store_name)[0]
    store = configured.open_store(config, name)
    report = RepairReport(store=name)
    state = load_state(store)
    checker = Checker(store, iso(datetime.now(UTC)))
    checked, gone = recheck(checker, state.problems)
    report.already_good = sorted({p.key for p in state.problems} - checker.findings.keys())
    todo = sorted(checker.findings.values(), key=lambda p: (_phase(p), p.key))
    if not todo:
        _save(store, checked, {}, gone)
        return report
    donors = _Donors(config, name, report.warnings)
    fixed: set[str] = set()
    progress.begin(f"Repairing {name}", len(todo))
    try:
        with WriterLock(store.backend, "repair", config.backup.lock_lease_seconds, report.warnings.append) as lock:
            for index, problem in enumerate(todo):
                if index and _phase(problem) != _phase(todo[index - 1]):
                    store.backend.barrier()  # what an index names is durable before the index is written
                    lock.ensure_held()
                if _repair_one(store, donors, problem, report):
                    fixed.add(problem.key)
                progress.advance()
            store.backend.barrier()
    finally:
        progress.end()
    remaining = {k: p for k, p in checker.findings.items() if k not in fixed}
    _save(store, checked | fixed, remaining, gone)
    return report


def _save(store: Store, checked: set[str], remaining: dict[str, VerifyProblem], gone: set[str]) -> None:
    """Record what repair found and fixed in the verification state, read again now: a verify may have
    saved it meanwhile (last writer wins, as between two verifies)."""
    state = load_state(store)
    state.problems = merge(state.problems, checked, remaining, gone)
    save_state(store, state)


def _names(config: Config, store_name: str | None) -> list[str]:
    """The named store, else every configured store (the primary first) but those this host only reads
    (`read_only = true`: their own host verifies and repairs them)."""
    if not config.stores or (store_name is not None and store_name not in config.stores):
        known = f"configured: {', '.join(config.stores)}" if config.stores else "add a [stores.<name>] table"
        raise ConfigError(str(config.file), [f"no store named {store_name!r} ({known})" if store_name else
                                             f"no store configured ({known})"])
    return [store_name] if store_name else [name for name, s in config.stores.items() if not s.read_only]


def repair_stores(config: Config, store_name: str | None, *,
                  progress: Progress | None = None) -> list[RepairReport]:
    """`rtvault repair`: the named store, else every configured store."""
    reports = []
    for name in _names(config, store_name):
        reports.append(repair(config, name, progress=progress))
        _mend_keys(config, name, reports[-1])
    return reports


def _mend_keys(config: Config, name: str, report: RepairReport) -> None:
    """An encrypted store's damaged key file is rewritten from its good twin (never from another store: each
    store has its own key); with no good one left, the report says so."""
    try:
        mended = configured.damaged_key_files(config, name, mend=True)
    except StoreError as error:
        report.unrepairable.append({"key": "keys/", "kind": "corrupt", "detail": str(error)})
        return
    for key, why in mended.items():
        report.repaired.append({"key": key, "kind": _key_kind(why), "from": f"{name}'s other key file"})


def _key_kind(why: str) -> str:
    return "missing" if "is missing" in why else "corrupt"


@dataclass
class VerifyOutcome:
    """One store's verification, and its repair when `[verify] repair` is on and problems were found."""

    store: str
    report: VerifyReport | None = None
    repair: RepairReport | None = None
    error: RtvaultError | None = None  # not verified (unmounted NAS, S3 down) or not repaired (locked)

    @property
    def healthy(self) -> bool:
        return self.error is None and self.report is not None and not self.report.problems

    def to_json(self) -> dict[str, object]:
        return {**(self.report.to_json() if self.report else {}), "store": self.store,
                "repair": self.repair.to_json() if self.repair else None,
                "error": str(self.error) if self.error else None,
                "healthy": self.healthy}


def _key_problems(config: Config, name: str, now: datetime | None) -> list[VerifyProblem]:
    """The encrypted store's key files, checked at every verify: they are few, and losing both loses the store."""
    when = iso(now or datetime.now(UTC))
    return [VerifyProblem(key, _key_kind(why), when, why)
            for key, why in configured.damaged_key_files(config, name).items()]


def verify_stores(config: Config, store_name: str | None, *, budget: Budget | None = None, all: bool = False,
                  now: datetime | None = None, progress: Progress | None = None) -> list[VerifyOutcome]:
    """`rtvault verify`: the named store, else every configured store; then repair when configured."""
    outcomes = []
    for name in _names(config, store_name):
        outcome = VerifyOutcome(name)
        try:
            outcome.report = verify(configured.open_store(config, name), budget=budget,
                                    cycle_days=config.verify.cycle_days, now=now, progress=progress, all=all)
            keys = _key_problems(config, name, now)
            if (outcome.report.problems or keys) and config.verify.repair:
                outcome.repair = repair(config, name, progress=progress)
                _mend_keys(config, name, outcome.repair)
                state = load_state(configured.open_store(config, name))
                outcome.report.problems, keys = state.problems, _key_problems(config, name, now)
            outcome.report.problems = [*outcome.report.problems, *keys]
        except RtvaultError as error:
            outcome.error = error
        outcomes.append(outcome)
    return outcomes
