"""Synthetic patients written straight into the catalog: deterministic, searched like indexed ones, never mixed
with real patients, and named like a French population (many surnames, accents, compounds, apostrophes)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from kit.catalog import Builder
from kit.cli import run_cli
from kit.config import write_config
from rtvault.catalog import Catalog, open_catalog
from rtvault.catalog import fold as folding
from rtvault.catalog.indexer import refresh_status
from rtvault.catalog.search import Criteria, search
from rtvault.demo.catalog import SYNTHETIC_STORE, fill
from rtvault.demo.population import surname_universe
from rtvault.errors import InputError

SMALL = 2_000


def _dump(db: Catalog) -> list[list[tuple]]:
    return [sorted(db.execute(f"SELECT * FROM {table}"), key=repr) for table in
            ("patients", "versions", "locations", "terms", "variants", "physicians", "indexed")]


def _sqlite(path: Path) -> Catalog:
    return open_catalog(f"sqlite:///{path}")


def test_same_seed_same_catalog_other_seed_other_patients(tmp_path: Path) -> None:
    with _sqlite(tmp_path / "a.sqlite") as a, _sqlite(tmp_path / "b.sqlite") as b, _sqlite(tmp_path / "c.sqlite") as c:
        summary, again = fill(a, 300, seed=5), fill(b, 300, seed=5)
        assert {**summary, "seconds": 0} == {**again, "seconds": 0}
        assert _dump(a) == _dump(b)
        fill(c, 300, seed=6)
        assert a.execute("SELECT last_name FROM patients ORDER BY id") != c.execute(
            "SELECT last_name FROM patients ORDER BY id")


@pytest.fixture
def filled(catalog: Catalog) -> tuple[Catalog, dict]:
    return catalog, fill(catalog, SMALL, seed=1)


def test_filled_patients_are_found_like_indexed_ones(filled: tuple[Catalog, dict]) -> None:
    db, summary = filled
    assert summary["patients"] == SMALL and summary["store"] == SYNTHETIC_STORE
    rows = db.execute("SELECT last_name, first_name, birth_date, mrn FROM patients ORDER BY id")
    accented = next(r for r in rows if folding.compact(r[0]) != r[0].lower().replace(" ", "")
                    and any(c in r[0] for c in "ÉÈéèÊêÇç") and r[2])
    found = search(db, Criteria(last_name=folding.fold(accented[0]), first_name=folding.fold(accented[1]),
                                birth_date=accented[2]))
    assert (accented[0], accented[1]) in [(p["last_name"], p["first_name"]) for p in found.patients]
    by_mrn = search(db, Criteria(mrn=accented[3])).patients
    assert [p["last_name"] for p in by_mrn] == [accented[0]]
    assert by_mrn[0]["locations"] and by_mrn[0]["locations"][0]["store"] == SYNTHETIC_STORE


def test_one_typo_and_punctuation_are_tolerated_on_filled_names(filled: tuple[Catalog, dict]) -> None:
    db, _ = filled
    rows = db.execute("SELECT last_name, first_name, birth_date FROM patients WHERE birth_date IS NOT NULL "
                      "ORDER BY id")
    long_name = next(r for r in rows if len(folding.compact(r[0])) >= 7 and " " not in r[0] and "-" not in r[0])
    term = folding.compact(long_name[0])
    typo = term[:3] + ("x" if term[3] != "x" else "y") + term[4:]
    found = search(db, Criteria(last_name=typo, birth_date=long_name[2]), per_page=200).patients
    assert (long_name[0], long_name[1]) in [(p["last_name"], p["first_name"]) for p in found]
    assert all(p["relevance"] == 2 for p in found if p["last_name"] == long_name[0])
    apostrophe = next(r for r in rows if "'" in r[0])
    found = search(db, Criteria(last_name=folding.compact(apostrophe[0]), birth_date=apostrophe[2])).patients
    assert apostrophe[0] in [p["last_name"] for p in found]


def test_filled_statuses_are_the_indexers(filled: tuple[Catalog, dict]) -> None:
    db, _ = filled
    before = db.execute("SELECT id, status FROM patients ORDER BY id")
    assert {s for _, s in before} == {"active", "archived", "deleted"}
    with db.transaction():
        refresh_status(db, {pid for pid, _ in before})
    assert db.execute("SELECT id, status FROM patients ORDER BY id") == before
    modalities = {m for (m,) in db.execute("SELECT DISTINCT modality FROM image_sets")}
    assert modalities == {"CT", "MR", "PT"}
    assert 20 <= db.one("SELECT COUNT(*) FROM physicians")[0] <= 40


def test_a_second_fill_adds_other_patients(filled: tuple[Catalog, dict]) -> None:
    db, _ = filled
    again = fill(db, 100, seed=1)
    assert again["first_patient"] == SMALL + 1
    assert db.one("SELECT COUNT(*), COUNT(DISTINCT key), COUNT(DISTINCT mrn) FROM patients") == (SMALL + 100,) * 3


def test_real_patients_are_never_mixed_silently(catalog: Catalog) -> None:
    builder = Builder(catalog)
    builder.snapshot("20261101T020000Z-abcdef", "2026-11-01T02:00:00Z", [
        {"path": "Institution_1/Mount_0/Patient_7", "patient_id": 7, "mrn": "2019000007", "last_name": "LEFÈVRE",
         "first_name": "Anaïs", "last_modified": "2026-10-30T10:00:00Z"}])
    builder.finish()
    with pytest.raises(InputError, match="real patients"):
        fill(catalog, 10, seed=1)
    assert catalog.one("SELECT COUNT(*) FROM patients")[0] == 1
    assert fill(catalog, 10, seed=1, force=True)["patients"] == 10


def test_names_look_like_a_french_population(filled: tuple[Catalog, dict]) -> None:
    db, summary = filled
    names = Counter(name for (name,) in db.execute("SELECT last_name FROM patients"))
    assert summary["distinct_last_names"] == len({folding.compact(n) for n in names}) > SMALL * 0.6
    assert names.most_common(1)[0][1] < SMALL * 0.02
    assert any("-" in n for n in names) and any("'" in n for n in names) and any(" " in n for n in names)
    universe, _ = surname_universe()
    assert len(universe) > 50_000 and universe[0] == "Martin"
    born = [int(y) for (y,) in db.execute("SELECT birth_year FROM patients WHERE birth_year IS NOT NULL")]
    assert min(born) >= 1920 and max(born) <= 2020 and max(born) - min(born) > 60


def test_fill_command(tmp_path: Path) -> None:
    write_config(tmp_path / "rtvault.toml", root="pinnacle", stores={"primary": "store"},
                 catalog={"url": "sqlite:///catalog.sqlite"})
    done = run_cli("catalog", "fill", "--patients", "50", "--seed", "3", "--json", cwd=tmp_path, timeout=60)
    assert json.loads(done.stdout)["patients"] == 50
    found = run_cli("search", "--status", "archived", "--json", cwd=tmp_path, timeout=60)
    assert json.loads(found.stdout)["total"] > 20
