"""`rtvault journal verify`: the journal followed segment by segment in every store (docs/design.md, "The journal
of actions"): each stream numbered without a gap, each segment sealed and naming the one before it, the same
bytes in every store, and every record the catalog indexes still in a store (or waiting in the spool).

A segment changed after it was written breaks its own seal; one put in another's place, or a stream re-sealed
from some point on, breaks the chain or differs from the other stores' copy; one removed leaves a gap, or a record
the catalog knows and no store holds. The first problem of each stream is named, with what follows from it.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from rtvault.catalog import runs as catalog_runs
from rtvault.config import Config
from rtvault.configured import open_catalog_for, open_store
from rtvault.errors import ExitCode, RtvaultError, StoreError
from rtvault.jobs.actions import FLUSH_S
from rtvault.jobs.journal import spooled
from rtvault.report import Line, Report, Verdict, err
from rtvault.store import Store, journal

# A running web server or DICOM node indexes each action in the catalog at once, with the id of the segment it
# spools within FLUSH_S (and the daemon moves spooled segments into the stores): a record the catalog names and
# no store nor the spool holds is looked for again after this long before it is said removed.
SETTLE_S = FLUSH_S + 4.0


@dataclass
class StoreChain:
    """One store's journal as followed: counts, each segment's integrity hash, and the problems found."""

    store: str
    segments: int = 0
    entries: int = 0  # actions entries, runs and alerts: each record counts once, a batch of actions per entry
    streams: int = 0
    unchained: int = 0  # version 1 segments, written before the chain
    problems: list[str] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)  # key: integrity
    links: dict[str, tuple[str, str]] = field(default_factory=dict)  # a stream's first key: (the key it hangs on,
    # that segment's integrity as it was named)
    head: tuple[str, str] | None = None  # the store's newest segment, as its head file says
    roots: list[str] = field(default_factory=list)  # chained streams' first segments that hang on nothing
    old: list[str] = field(default_factory=list)  # version 1 segments (written before the chain), their keys
    error: str = ""  # the store could not be listed or read

    def to_json(self) -> dict[str, object]:
        return {"store": self.store, "segments": self.segments, "entries": self.entries, "streams": self.streams,
                "unchained": self.unchained, "problems": self.problems, "error": self.error or None}


def follow(name: str, store: Store) -> StoreChain:
    """Every stream of one store's journal, in order."""
    found = StoreChain(name)
    streams: dict[str, dict[int, str]] = defaultdict(dict)
    for key in store.backend.list(journal.FOLDER):
        record_id = journal.id_of(key)
        if record_id is None:
            continue  # not a segment's name: verify reports it as unexpected
        streams[record_id.split("/")[0]][journal.seq_of(record_id)] = key
    found.streams = len(streams)
    head = journal.read_head(store.backend)
    found.head = (journal.segment_key(head[0]), head[1]) if head else None
    for writer in sorted(streams):
        problem = _stream(store, streams[writer], found)
        if problem:
            found.problems.append(problem)
    found.problems += _head_problems(found, streams)
    return found


def _beginnings(found: StoreChain, theirs: set[str]) -> list[str]:
    """Only the journal's first chained stream may hang on nothing: every later one names the store's head when
    it began (`after`). Nor does rtvault write a version 1 segment once the chain has begun. So a stream written
    into the store by someone without its history (who did not chain it) is named, with the first stream: the
    one the most streams descend from, then the oldest (writer names begin with their time).
    `theirs`: the beginnings of the other hosts' journals, which a pull brought into this store (design.md)."""
    roots = [key for key in found.roots if key not in theirs]
    if not roots:
        return []
    first, *others = sorted(roots, key=lambda key: (-_descendants(found, key), key))
    problems = [f"{key} hangs on no earlier segment, though this store's journal began at {first}: only the "
                "journal's first stream may (it was forged, or written while no store's head could be read)"
                for key in others]
    problems += [f"{key} is a segment from before the chain (version 1), though the chain began earlier at {first}: "
                 "rtvault no longer writes those (it was forged)"
                 for key in found.old if _stream_of(key) > _stream_of(first) and key not in theirs]
    return problems


def _beginnings_elsewhere(chains: list[StoreChain], read_only: frozenset[str]
                          ) -> list[tuple[StoreChain, set[str]]]:
    """Each store with the segments of another journal it may hold: a store this host writes holds, once pulled,
    the journal of the host whose store it only reads (begun there: every segment a read-only store holds), and
    a read-only store holds nothing of this host's but its beginning (a pull in the other direction)."""
    held_there = {key for c in chains if c.store in read_only for key in c.hashes}
    mine = {key for c in chains if c.store not in read_only for key in c.roots if key not in held_there}
    return [(c, mine if c.store in read_only else held_there) for c in chains if not c.error]


def _descendants(found: StoreChain, root: str) -> int:
    """How many streams of the store hang, through others, on the stream that `root` begins."""
    parent = {_stream_of(first): _stream_of(target) for first, (target, _digest) in found.links.items()}
    count = 0
    for stream in parent:
        seen, at = set(), stream
        while at in parent and at not in seen:
            seen.add(at)
            at = parent[at]
        count += at == _stream_of(root)
    return count


def _stream_of(key: str) -> str:
    return key.removeprefix(journal.FOLDER).split("/")[0]


def _head_problems(found: StoreChain, streams: dict[str, dict[int, str]]) -> list[str]:
    """The store's head names its newest segment: one its own stream goes on after was set back (a head naming a
    segment no store holds, or another one, is checked across the stores: `_links`)."""
    if found.head is None or (record_id := journal.id_of(found.head[0])) is None:
        return []
    writer, seq = record_id.split("/")[0], journal.seq_of(record_id)
    later = sorted(n for n in streams.get(writer, {}) if n > seq)
    if not later:
        return []
    return [f"store {found.store}'s journal head names {found.head[0]} as its newest segment, but its stream goes "
            f"on at {streams[writer][later[0]]}: the head was set back (a newer segment will be chained to an older "
            "one)"]


def _stream(store: Store, keys: dict[int, str], found: StoreChain) -> str | None:
    """Follow one stream to its end, segment by segment in their order (a gap is a segment missing, however
    long); its first problem as a sentence (None when intact)."""
    first: str | None = None
    previous: str | None = None  # the integrity of the segment before, as read (None: missing or damaged)
    expected = 1
    for seq in sorted(keys):
        key = keys[seq]
        problem = None
        if seq == 0:
            problem = f"{key} is numbered 0, which rtvault never writes: it was forged"
        elif seq > expected:
            missing = journal.segment_key(journal.segment_id(_writer(keys), expected))
            more = f" (and {seq - expected - 1} more)" if seq - expected > 1 else ""
            problem = f"{missing} is missing{more}: the stream goes on at {key} (a segment was removed)"
            previous = None
        expected = seq + 1
        try:
            record = journal.decode(store.backend.get(key), key)
        except (ValueError, StoreError) as error:
            first = first or problem or f"{key} is damaged: {error}"
            previous = None
            continue
        found.segments += 1
        entries = record.get("entries")
        found.entries += len(entries) if isinstance(entries, list) else 1
        found.hashes[key] = str(record["integrity"])
        if record["version"] < journal.CHAINED:
            found.unchained += 1
            found.old.append(key)
        elif seq == 1 and record.get("after"):
            found.links[key] = (journal.segment_key(str(record["after"])), str(record["prev"]))
        elif seq == 1:
            found.roots.append(key)
        elif seq > 1 and previous is not None and record.get("prev") != previous:
            problem = problem or (f"{key} does not follow {keys[seq - 1]}: it names another segment before it (a "
                                  "segment was replaced, or the stream re-written from there)")
        previous = str(record["integrity"])
        first = first or problem
    return first


def _writer(keys: dict[int, str]) -> str:
    return str(journal.id_of(next(iter(keys.values())))).split("/")[0]


@dataclass(frozen=True)
class JournalVerified(Report):
    stores: tuple[StoreChain, ...]
    across: tuple[str, ...]  # differences between the stores, and records the catalog knows that no store holds
    pending: int  # segments waiting in the spool for a store
    catalog: str = "compared"  # whether the records the catalog indexes were looked for in the stores, or why not

    @property
    def intact(self) -> bool:
        return not self.across and all(not s.problems and not s.error for s in self.stores)

    def to_json(self) -> dict[str, object]:
        return {"stores": [s.to_json() for s in self.stores], "across": list(self.across), "pending": self.pending,
                "catalog": self.catalog, "intact": self.intact}

    def lines(self) -> Iterable[Line]:
        for s in self.stores:
            if s.error:
                yield err(f"{s.store}: not verified: {s.error}")
                continue
            old = f", {s.unchained} from before the chain" if s.unchained else ""
            state = "intact" if not s.problems else f"{len(s.problems)} stream(s) broken"
            yield Line(f"{s.store}: {s.segments} segments, {s.entries} records in {s.streams} streams{old}: {state}")
            yield from (err(f"  {problem}") for problem in s.problems)
        yield from (err(f"  {problem}") for problem in self.across)
        if self.pending:
            yield Line(f"{self.pending} segment(s) wait in the spool for a store (the daemon writes them)")
        if self.catalog != "compared":
            yield Line(f"the catalog's index of the journal was {self.catalog}")

    def verdict(self) -> Verdict:
        if self.intact:
            return Verdict()
        if any(s.error for s in self.stores) and not any(s.problems for s in self.stores) and not self.across:
            return Verdict(ExitCode.STORE)
        return Verdict(ExitCode.CHECK_FAILED)


def _links(readable: list[StoreChain]) -> list[str]:
    """Each stream's first segment, and each store's head, against the segment they name (in any store)."""
    known = {key: digest for c in readable for key, digest in c.hashes.items()}
    problems = []
    named = [(first, target, digest, f"{first} names {target} as the segment before it")
             for c in readable for first, (target, digest) in c.links.items()]
    named += [(None, c.head[0], c.head[1], f"store {c.store}'s journal head names {c.head[0]} as its newest segment")
              for c in readable if c.head]
    for _first, target, digest, said in sorted(set(named), key=lambda n: n[3]):
        if target not in known:
            problems.append(f"{said}, which no store holds: it was removed")
        elif known[target] != digest:
            problems.append(f"{said}, but that segment is not the one it named: it was changed or replaced")
    return problems


def _across(chains: list[StoreChain], waiting: dict[str, set[str]], read_only: frozenset[str] = frozenset()
            ) -> list[str]:
    """Segments that differ between stores, or that a store lacks without waiting for it in the spool, and links
    between streams that no longer hold. A store this host only reads (`read_only`) is not expected to hold this
    host's records, nor the others to hold yet what only it holds (its host's records reach them by a pull)."""
    readable = [c for c in chains if not c.error]
    problems = _links(readable)
    for key in sorted({k for c in readable for k in c.hashes}):
        held = {c.store: c.hashes[key] for c in readable if key in c.hashes}
        if len(set(held.values())) > 1:
            problems.append(f"{key} differs between stores {', '.join(sorted(held))}: one of them was changed")
        lacking = [c.store for c in readable if key not in c.hashes and key not in waiting.get(c.store, set())
                   and c.store not in read_only
                   and not any(p.startswith(key) for p in c.problems)]
        if lacking and not set(held) <= read_only:  # held only where this host pulls from: the next pull copies it
            problems.append(f"{key} is missing from store {', '.join(lacking)} (held by {', '.join(sorted(held))}): "
                            "run `rtvault replicate`; if it was there, it was removed")
    return problems


def _catalog_known(config: Config) -> set[str] | None:
    try:
        with open_catalog_for(config) as catalog:
            return catalog_runs.journal_ids(catalog)
    except RtvaultError:
        return None


def verify_journal(config: Config, store_name: str | None = None) -> JournalVerified:
    names = [store_name] if store_name else list(config.stores)
    chains = []
    for name in names:
        try:
            chains.append(follow(name, open_store(config, name)))
        except (RtvaultError, OSError) as error:
            chains.append(StoreChain(name, error=str(error)))
    waiting = {store: {journal.segment_key(p.stem.replace("_", "/")) for p in paths}
               for store, paths in spooled(config).items()}
    read_only = frozenset(n for n in names if config.stores[n].read_only)
    pulled = _listed(config, [n for n, s in config.stores.items() if s.read_only and n not in names])
    for chain, others in _beginnings_elsewhere(chains, read_only):
        chain.problems += _beginnings(chain, others | (set() if chain.store in read_only else pulled))
    across = _across(chains, waiting, read_only)
    gone, catalog = _catalog_check(config, chains, waiting, store_name, pulled,
                                   lambda: _held_now(config, [c.store for c in chains if not c.error], store_name))
    return JournalVerified(tuple(chains), tuple(across + gone), sum(len(v) for v in waiting.values()), catalog)


def _listed(config: Config, names: list[str]) -> set[str]:
    """The journal segments other stores hold, by name only (`--store`: the stores this host pulls from)."""
    found: set[str] = set()
    for name in names:
        try:
            found |= {k for k in open_store(config, name).backend.list(journal.FOLDER) if journal.id_of(k)}
        except (RtvaultError, OSError):
            continue
    return found


def _held_now(config: Config, names: list[str], store_name: str | None) -> set[str | None]:
    """The records the stores (and those this host pulls from) and the spool hold now, after SETTLE_S."""
    time.sleep(SETTLE_S)
    names = names + [n for n, s in config.stores.items() if s.read_only and n not in names]
    held = {journal.id_of(k) for k in _listed(config, names)}
    return held | {journal.id_of(journal.segment_key(p.stem.replace("_", "/")))
                   for store, paths in spooled(config).items() if store_name in (None, store) for p in paths}


def _catalog_check(config: Config, chains: list[StoreChain], waiting: dict[str, set[str]], store_name: str | None,
                   pulled: set[str], look_again: Callable[[], set[str | None]]) -> tuple[list[str], str]:
    """The records the catalog indexes that the stores lack (nor the spool for them); with `--store`, those that
    store lacks, unless it is one this host only reads (it holds that host's records, not this one's) or one
    a store this host pulls from holds (the next pull brings it). One that seems gone is looked for again
    (`look_again`, after SETTLE_S): it may have been on its way. The catalog's part, as a sentence: "compared"
    or why it was not."""
    if store_name is not None and config.stores[store_name].read_only:
        return [], (f"not compared: store {store_name} is read-only here (read_only = true): it holds its own host's "
                    "records, which that host's catalog indexes")
    known = _catalog_known(config)
    if known is None:
        return [], "not compared: the catalog could not be opened"
    held = {journal.id_of(k) for c in chains for k in c.hashes}
    held |= {journal.id_of(k) for store, keys in waiting.items() if store_name in (None, store) for k in keys}
    held |= {journal.id_of(k) for k in pulled}
    held |= {journal.id_of(p.split(" ", 1)[0]) for c in chains for p in c.problems}
    gone = sorted(known - held)
    if gone:
        gone = sorted(set(gone) - look_again())
    where = "no store nor the spool" if store_name is None else f"store {store_name} nor the spool for it"
    problems = [f"journal record {record_id} is in the catalog but in {where}: it was removed from the stores"
                + ("" if store_name is None else " (or never copied there: run `rtvault replicate`)")
                for record_id in gone[:20]]
    if len(gone) > 20:
        problems.append(f"... and {len(gone) - 20} more records in the catalog and in {where}")
    return problems, "compared"
