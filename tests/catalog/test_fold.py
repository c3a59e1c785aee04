"""Golden cases of how names are compared: folding, compact forms, the terms a name is found by, one edit."""

from __future__ import annotations

import pytest

from rtvault.catalog.fold import (
    MIN_FUZZY,
    compact,
    fold,
    name_terms,
    neighbourhood,
    physician_fold,
    prefix_end,
    text_terms,
    within_one_edit,
)


@pytest.mark.parametrize(("typed", "folded"), [
    ("LEFÈVRE", "lefevre"),
    ("Œsophage", "oesophage"),
    ("cœur", "coeur"),
    ("Straße", "strasse"),
    ("ÆSOP Łukasz Øre", "aesop lukasz ore"),
    ("N'DIAYE", "n diaye"),
    ("D’Almeida", "d almeida"),  # typographic apostrophe
    ("Jean-Baptiste", "jean baptiste"),
    ("  Hélène   Côté ", "helene cote"),
    ("Müller", "muller"),
    ("Ｍａｒｉｅ", "marie"),  # full-width letters
    ("ﬁlet", "filet"),  # ligature
    ("Dr. <script>", "dr script"),
    ("'-", ""),
    ("", ""),
])
def test_fold(typed: str, folded: str) -> None:
    assert fold(typed) == folded


@pytest.mark.parametrize(("typed", "compacted"), [
    ("N'Diaye", "ndiaye"), ("n diaye", "ndiaye"), ("N’DIAYE", "ndiaye"), ("Jean-Baptiste", "jeanbaptiste"),
    ("jean baptiste", "jeanbaptiste"), ("de La Fontaine", "delafontaine"), ("IPP-000123", "ipp000123"),
    ("...", ""),
])
def test_compact(typed: str, compacted: str) -> None:
    assert compact(typed) == compacted


@pytest.mark.parametrize(("name", "terms"), [
    ("LEFÈVRE", {"lefevre"}),
    ("Jean-Baptiste", {"jeanbaptiste", "jean", "baptiste"}),
    ("N'DIAYE", {"ndiaye", "n", "diaye"}),
    ("de Saint-Exupéry", {"desaintexupery", "de", "saint", "exupery"}),
    ("Marie-Thérèse", {"marietherese", "marie", "therese"}),
    ("Œ", {"oe"}),
    ("'-", set()),
])
def test_name_terms(name: str, terms: set[str]) -> None:
    assert name_terms(name) == terms


def test_text_terms_drop_single_letters() -> None:
    assert text_terms("Contrôle à 3 mois, cœur") == {"controle", "mois", "coeur"}


@pytest.mark.parametrize(("written", "folded"), [
    ("Dr MARTIN-DUPONT", "martindupont"), ("Pr Deschamps", "deschamps"), ("Docteur N'Diaye", "ndiaye"),
    ("Dr", "dr"), ("Mme Le Goff", "legoff"), ("", ""),
])
def test_physician_fold_drops_titles(written: str, folded: str) -> None:
    assert physician_fold(written) == folded


@pytest.mark.parametrize(("a", "b"), [
    ("lefevre", "lefevre"), ("lefevre", "lefebre"), ("lefevre", "lfevre"), ("lefevre", "lefvere"),
    ("lefevre", "leffevre"), ("lefevre", "lefevr"), ("lefevre", "xlefevre"), ("ab", "ba"),
])
def test_within_one_edit(a: str, b: str) -> None:
    assert within_one_edit(a, b) and within_one_edit(b, a)


@pytest.mark.parametrize(("a", "b"), [
    ("lefevre", "lfvere"), ("lefevre", "lefavro"), ("lefevre", "lefevreux"), ("lefevre", "elfevr"),
    ("abc", "cba"), ("lefevre", "le"),
])
def test_two_edits_apart(a: str, b: str) -> None:
    assert not within_one_edit(a, b) and not within_one_edit(b, a)


def test_neighbourhoods_meet_within_one_edit() -> None:
    # a name and a typed word one edit apart share a one-deletion variant, which is how the catalog finds them
    for typed in ("lefebre", "lfevre", "lefvere", "leffevre"):
        assert neighbourhood("lefevre") & neighbourhood(typed)
    assert neighbourhood("abc") == {"abc"}  # shorter than MIN_FUZZY: exact only
    assert len("abcd") >= MIN_FUZZY and neighbourhood("abcd") == {"abcd", "bcd", "acd", "abd", "abc"}


def test_prefix_end_bounds_every_continuation() -> None:
    end = prefix_end("lef")
    assert all("lef" <= word < end for word in ("lef", "lefevre", "lefzzz", "lef9"))
    assert end < "leg"
