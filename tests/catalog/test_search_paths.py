"""A name typed alone is answered by a shortcut that reads the page in display order; it must give exactly
what the general query gives (the same query with a criterion that excludes nobody), page after page."""

from __future__ import annotations

import random

from rtvault.catalog import Catalog
from rtvault.catalog import fold as folding
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
