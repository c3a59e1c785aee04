"""A name typed alone is answered by a shortcut that reads the page in display order; it must give exactly
what the general query gives (the same query with a criterion that excludes nobody), page after page. The
general query chooses how to read (an index in name order, a sort, a walk of the patients in name order): the
patients shown are the same whichever it chooses."""

from __future__ import annotations

import random

import pytest

from rtvault.catalog import Catalog, search_names, search_query
from rtvault.catalog import fold as folding
from rtvault.catalog import search as search_module
from rtvault.catalog.search import Criteria, search
from rtvault.demo.catalog import fill

EVERY_STATUS = "active,archived,deleted"


def _queries(db: Catalog) -> list[tuple[str, str]]:
    rng = random.Random(3)
    rows = db.execute("SELECT last_name, first_name FROM patients ORDER BY id")
    picked = [rows[i] for i in rng.sample(range(len(rows)), 12)]
    queries = [("last_name", last) for last, _ in picked[:4]]  # exact, accents and punctuation as typed
    queries += [("last_name", folding.compact(last)[:3]) for last, _ in picked[4:8]]  # common prefixes
    queries += [("first_name", folding.compact(first)[:4]) for _, first in picked[8:10]]
    typo = folding.compact(picked[10][0])
    queries.append(("last_name", typo[:2] + typo[3:] if len(typo) > 4 else typo))  # one letter dropped
    queries.append(("last_name", "ma"))  # hundreds of matches across many terms
    return queries


def test_a_name_alone_gives_what_the_general_query_gives(catalog: Catalog) -> None:
    fill(catalog, 1_500, seed=11)
    for field, typed in _queries(catalog):
        for page in (1, 2, 5):
            alone = search(catalog, Criteria(**{field: typed}), page=page, per_page=7)
            general = search(catalog, Criteria(**{field: typed, "status": EVERY_STATUS}), page=page, per_page=7)
            assert alone.to_json() == general.to_json(), (field, typed, page)
    assert search(catalog, Criteria(last_name="ma"), per_page=200).total > 20  # the queries found something


def _every_page(db: Catalog, criteria: dict[str, str], per_page: int) -> list[dict]:
    """Page after page until one comes back short."""
    shown, page = [], 1
    while True:
        result = search(db, Criteria(**criteria), page=page, per_page=per_page)
        shown += result.patients
        if len(result.patients) < per_page:
            return shown
        page += 1


def _common(db: Catalog, column: str, count: int) -> list[str]:
    rows = db.execute(f"SELECT {column}, COUNT(*) FROM patients GROUP BY {column} ORDER BY 2 DESC, 1 LIMIT {count}")
    return [folding.compact(name) for name, _ in rows]


def test_typos_and_first_names_page_after_page(catalog: Catalog) -> None:
    # common names, where the exact, prefix and typo tiers share patients (compound names) and each tier holds
    # many: every page the shortcut shows is the general query's
    fill(catalog, 1_500, seed=12)
    queries = [("last_name", name[:2] + "x" + name[3:]) for name in _common(catalog, "last_name", 4) if len(name) > 4]
    queries += [("first_name", name[:4]) for name in _common(catalog, "first_name", 3)]
    queries += [("first_name", name) for name in _common(catalog, "first_name", 2)]
    for field, typed in queries:
        alone = _every_page(catalog, {field: typed}, per_page=9)
        general = _every_page(catalog, {field: typed, "status": EVERY_STATUS}, per_page=9)
        assert alone == general, (field, typed)
        assert alone, (field, typed)


def test_a_count_past_the_limit_says_more_and_keeps_the_first_pages(catalog: Catalog,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    fill(catalog, 1_500, seed=11)
    for module in (search_module, search_names, search_query):
        monkeypatch.setattr(module, "COUNT_LIMIT", 30)
    first = _common(catalog, "first_name", 1)[0][:3]
    for page in (1, 2, 3):
        alone = search(catalog, Criteria(first_name=first), page=page, per_page=10)
        general = search(catalog, Criteria(first_name=first, status=EVERY_STATUS), page=page, per_page=10)
        assert alone.to_json() == general.to_json()
        assert (alone.total, alone.more, len(alone.patients)) == (30, True, 10)


@pytest.mark.parametrize("born", ["1900-2030", "1950-1965", "1960"])
def test_birth_year_and_physician_every_match_in_name_order(catalog: Catalog, born: str) -> None:
    # a thousand matches and more (read by walking the patients in name order), hundreds (sorted), a few dozen
    fill(catalog, 1_500, seed=11)
    physician = catalog.one("SELECT physician FROM patients GROUP BY physician ORDER BY COUNT(*) DESC LIMIT 1")[0]
    first, last = search_query.parse_years(born)
    rows = catalog.execute("SELECT key, birth_year, physician FROM patients ORDER BY sort_name, id")
    born_then = [(key, name) for key, year, name in rows if year is not None and first <= year <= last]
    treated = [key for key, name in born_then if folding.fold(name) == folding.fold(physician)]
    assert [p["key"] for p in _every_page(catalog, {"born": born}, per_page=50)] == [key for key, _ in born_then]
    assert [p["key"] for p in _every_page(catalog, {"born": born, "physician": physician}, per_page=7)] == treated
    assert treated


def test_two_names_find_the_same_however_they_are_matched_together(catalog: Catalog,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # both names' index ranges intersected, or each patient of the rarer name looked up in the other's terms
    fill(catalog, 1_500, seed=13)
    rows = catalog.execute("SELECT last_name, first_name FROM patients ORDER BY id LIMIT 40")
    queries = [(folding.compact(last)[:5], folding.compact(first)[:3]) for last, first in rows[:20]]
    queries += [(folding.fold(last), folding.fold(first)) for last, first in rows[20:30]]
    queries += [(folding.compact(last)[:2], folding.compact(first)) for last, first in rows[30:]]  # one far rarer
    found = {}
    for probe_cost in (0, 10**9):
        monkeypatch.setattr(search_query, "PROBE_COST", probe_cost)
        found[probe_cost] = [[p["key"] for p in _every_page(catalog, {"last_name": last, "first_name": first}, 4)]
                             for last, first in queries]
    assert found[0] == found[10**9]
    assert all(found[0])
