"""A name typed alone, the commonest search, answered in display order from the term index.

Three tiers: patients holding the name exactly, then those holding a longer name it begins (not already
exact), then those holding a name one typo away (not already in the first two). Each tier's page is read in
display order from the `(field, term, sort_name, patient)` index: a tier covering at most MERGE_TERMS
distinct names merges each name's first rows instead of sorting every match. Counting stops at COUNT_LIMIT,
and once a page is full and the count has passed the limit the later tiers are not read at all: a common
first name costs the page, not its tens of thousands of holders.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field

from rtvault.catalog import fold as folding
from rtvault.catalog.db import Catalog
from rtvault.catalog.search_query import COUNT_LIMIT, candidates, fuzzy

MERGE_TERMS = 64


@dataclass
class _Tier:
    condition: str  # the tier's terms, on `terms t`
    params: list
    names: list[str] | None  # its distinct names when few enough to merge their ordered rows, else None
    excluded: str = ""  # the terms of the tiers before, on `terms x`; empty for the first tier
    excluded_params: list = field(default_factory=list)


def name_alone(given: dict[str, str]) -> tuple[str, str] | None:
    """(term field, compact name) when one name is the only criterion given."""
    if len(given) != 1 or not given.keys() & {"last_name", "first_name"}:
        return None
    name, typed = next(iter(given.items()))
    term = folding.compact(typed)
    if not term:
        return None  # the general path gives the error
    return ("last" if name == "last_name" else "first"), term


def page_by_name(catalog: Catalog, kind: str, term: str, skip: int, wanted: int) -> tuple[list[tuple[int, int]], int]:
    """The page's patients with their relevance (0 exact, 1 prefix, 2 one typo), and the count (capped per tier)."""
    chosen: list[tuple[int, int]] = []
    total = 0
    for relevance, tier in enumerate(_tiers(catalog, kind, term)):
        count = _count(catalog, kind, tier, total)
        if wanted and skip < count:
            rows = _tier_page(catalog, kind, tier, total, skip, wanted)
            chosen.extend((pid, relevance) for pid in rows)
            wanted -= len(rows)
        total += count
        skip = max(0, skip - count)
        if not wanted and total > COUNT_LIMIT:
            break  # the page is full and the total shown is already "more than the limit"
    return chosen, total


def _tiers(catalog: Catalog, kind: str, term: str) -> Iterator[_Tier]:
    """Built as they are reached: a page filled by the first tiers never looks up the typo matches."""
    end = folding.prefix_end(term)
    yield _Tier("t.term = ?", [term], [term])
    longer = [t for (t,) in catalog.execute("SELECT term FROM vocabulary WHERE field = ? AND term > ? AND term < ? "
                                            f"LIMIT {MERGE_TERMS + 1}", (kind, term, end))]
    yield _Tier("t.term > ? AND t.term < ?", [term, end], longer if len(longer) <= MERGE_TERMS else None,
                "x.term = ?", [term])
    near = fuzzy(catalog, kind, term)
    if near:
        yield _Tier(f"t.term IN ({', '.join('?' * len(near))})", near, near if len(near) <= MERGE_TERMS else None,
                    "x.term >= ? AND x.term < ?", [term, end])


def _matching(kind: str, tier: _Tier, earlier: int) -> tuple[str, list]:
    """The tier's rows of patients not in a tier before, as a condition on `terms t`. When the tiers before
    counted under the limit their few patients are collected once; past it (a common name: tens of thousands)
    each candidate is looked up in the (patient, field, term) index instead."""
    if not tier.excluded or not earlier:
        return f"t.field = ? AND {tier.condition}", [kind, *tier.params]
    if earlier <= COUNT_LIMIT:
        return (f"t.field = ? AND {tier.condition} AND t.patient NOT IN (SELECT x.patient FROM terms x "
                f"WHERE x.field = ? AND {tier.excluded})", [kind, *tier.params, kind, *tier.excluded_params])
    return (f"t.field = ? AND {tier.condition} AND NOT EXISTS (SELECT 1 FROM terms x WHERE x.patient = t.patient "
            f"AND x.field = ? AND {tier.excluded})", [kind, *tier.params, kind, *tier.excluded_params])


def _count(catalog: Catalog, kind: str, tier: _Tier, earlier: int) -> int:
    condition, params = _matching(kind, tier, earlier)
    distinct = "DISTINCT " if tier.excluded else ""  # past the first tier a patient may hold several of its names
    counted = catalog.one(f"SELECT COUNT(*) FROM (SELECT {distinct}t.patient FROM terms t WHERE {condition} "
                          f"LIMIT {COUNT_LIMIT + 1}) n", params)
    return int(counted[0]) if counted else 0


def _tier_page(catalog: Catalog, kind: str, tier: _Tier, earlier: int, skip: int, wanted: int) -> list[int]:
    if tier.names is not None:
        return _merged_page(catalog, kind, tier, earlier, skip, wanted)
    condition, params = _matching(kind, tier, earlier)
    # a patient may match through several terms (DURAND-LEFÈVRE: durand, durandlefevre)
    rows = catalog.execute(f"SELECT t.patient, MIN(t.sort_name) AS s FROM terms t WHERE {condition} "
                           "GROUP BY t.patient ORDER BY s, t.patient LIMIT ? OFFSET ?", [*params, wanted, skip])
    return [int(row[0]) for row in rows]


def _merged_page(catalog: Catalog, kind: str, tier: _Tier, earlier: int, skip: int, wanted: int) -> list[int]:
    """Each name's patients come in display order from the index: merging their first rows gives the page
    without sorting every match. Rows are certain up to the smallest last row of a name read only in part."""
    limit = skip + wanted
    while True:
        streams = [catalog.execute("SELECT sort_name, patient FROM terms WHERE field = ? AND term = ? "
                                   "ORDER BY sort_name, patient LIMIT ?", (kind, name, limit)) for name in tier.names]
        cut = min((tuple(rows[-1]) for rows in streams if len(rows) == limit), default=None)
        merged = heapq.merge(*(map(tuple, rows) for rows in streams))
        candidates = list(dict.fromkeys(pid for key, pid in merged if cut is None or (key, pid) <= cut))
        held = _held(catalog, kind, tier, earlier, candidates)
        found = [pid for pid in candidates if pid not in held]
        if len(found) >= limit or cut is None:
            return found[skip:limit]
        limit *= 4  # exclusions and patients holding several names took places: read further


def _held(catalog: Catalog, kind: str, tier: _Tier, earlier: int, candidates: list[int]) -> set[int]:
    """Which candidates belong to a tier before this one: all of those read at once when they are few (the
    count before stopped under the limit), else the candidates looked up one by one."""
    if not tier.excluded or not earlier or not candidates:
        return set()
    sql, params = f"SELECT x.patient FROM terms x WHERE x.field = ? AND {tier.excluded}", [kind, *tier.excluded_params]
    if earlier > COUNT_LIMIT:
        sql += f" AND x.patient IN ({', '.join('?' * len(candidates))})"
        params += candidates
    return {int(row[0]) for row in catalog.execute(sql, params)}


def page_by_two_names(catalog: Catalog, names: list[tuple[str, str, str, list[str]]], skip: int,
                      wanted: int) -> tuple[list[tuple[int, int]], int]:
    """Two names and nothing else, of comparable frequency (see `Query.names_clause`): each name's term rows
    give its patients, their relevance and their sort key, so the matches are joined and ordered from the two
    index ranges alone, without a lookup per patient (random pages, often not in the cache)."""
    sides, params = [], []
    for kind, term, end, near in names:
        sql, side_params = candidates((kind, term, end, near), "t.patient, t.term, t.sort_name")
        sides.append("SELECT c.patient, MIN(c.sort_name) AS sort_name, MIN(CASE WHEN c.term = ? THEN 0 "
                     f"WHEN c.term >= ? AND c.term < ? THEN 1 ELSE 2 END) AS rank FROM ({sql}) c GROUP BY c.patient")
        params += [term, term, end, *side_params]
    rows = catalog.execute(f"SELECT a.patient, a.rank + b.rank AS relevance FROM ({sides[0]}) a JOIN ({sides[1]}) b "
                           "ON b.patient = a.patient ORDER BY relevance, a.sort_name, a.patient LIMIT ?",
                           [*params, max(skip + wanted, COUNT_LIMIT + 1)])
    return [(row[0], row[1]) for row in rows[skip:skip + wanted]], len(rows)
