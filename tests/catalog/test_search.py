"""The search a physicist runs, on SQLite and on PostgreSQL: a small catalog of hand-picked synthetic patients
(two snapshots, the automatic archive of a patient who left the source, an old DVD archive), and what each
criterion finds, in which order, with which locations."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kit.catalog import DIALECTS, Builder, new_url
from rtvault.catalog import Catalog, open_catalog
from rtvault.catalog.search import Criteria, search
from rtvault.errors import InputError


def patient(number: int, last: str, first: str, **values: object) -> dict:
    return {"path": f"Institution_1/Mount_0/Patient_{number}", "patient_id": number, "last_name": last,
            "first_name": first, **values}


LEFEVRE = patient(101, "LEFÈVRE", "Jean-Baptiste", mrn="IPP-000123", birth_date="1957-03-14", gender="M",
                  radiation_oncologist="Dr BÉRANGER", diagnosis="Adénocarcinome de la prostate",
                  comment="Contrôle à 3 mois", last_modified="2025-01-10T09:12:00",
                  plans=[{"name": "Prostate IMRT"}], image_sets=[{"name": "CT pelvis", "modality": "CT"}])
NDIAYE = patient(102, "N'DIAYE", "Aïcha", mrn="IPP-000456", birth_date="1962-11-02", gender="F",
                 radiation_oncologist="Dr LE GOFF", diagnosis="Carcinome canalaire du sein gauche",
                 last_modified="2025-01-20T14:00:00", plans=[{"name": "Sein G 50Gy"}],
                 image_sets=[{"name": "CT thorax", "modality": "CT"}, {"name": "IRM", "modality": "MR"}])
LEFEVREUX = patient(103, "Lefèvreux", "Claire", mrn="IPP-000789", birth_date="1971-06-30", gender="F",
                    radiation_oncologist="Dr BÉRANGER", diagnosis="Poumon", last_modified="2025-01-25T08:00:00",
                    plans=[{"name": "Poumon SBRT"}], image_sets=[{"name": "CT 4D", "modality": "CT"}])
LEFEBVRE = patient(104, "LEFEBVRE", "Marie-Thérèse", mrn="IPP-001000", birth_date="1957-09-09", gender="F",
                   radiation_oncologist="Dr MARTIN-DUPONT", diagnosis="Rectum", last_modified="2024-12-01T10:00:00",
                   plans=[{"name": "Rectum 3D"}],
                   image_sets=[{"name": "CT", "modality": "CT"}, {"name": "TEP", "modality": "PT"}])
LEFORT = patient(105, "LEFORT", "Hélène", mrn="IPP-001111", birth_date="1980-05-20", gender="F",
                 radiation_oncologist="Dr MARTIN-DUPONT", diagnosis="ORL", last_modified="2024-11-05T16:30:00",
                 plans=[{"name": "ORL VMAT"}], image_sets=[{"name": "CT", "modality": "CT"}])
DUPONT = patient(106, "DUPONT", "Pierre", mrn="IPP-002222", birth_date="1949-01-01", gender="M",
                 radiation_oncologist="Dr FAURE", diagnosis="Vessie", last_modified="2024-10-01T11:00:00")
MOREAU = patient(107, "MOREAU", "Jean", mrn="IPP-003333", birth_date="1990-02-02", gender="M",
                 radiation_oncologist="Dr FAURE", diagnosis="Sein", last_modified="2025-01-05T10:00:00")
GUERIN = {"path": "Institution_3/Mount_0/Patient_7", "patient_id": 7, "mrn": "0007", "last_name": "GUÉRIN",
          "first_name": "François", "birth_date": "1938-12-24", "gender": "H",
          "radiation_oncologist": "Pr DESCHAMPS", "diagnosis": "Œsophage", "last_modified": "2009-06-29T18:00:00",
          "plans": [{"name": "Oesophage 3D"}], "image_sets": [{"name": "CT", "modality": "CT"}]}

OLD_DVD = "pinnacle-2009-dvd3.tar"
DELETED_ARCHIVE = "deleted-2025-01-15.tar.gz"


@pytest.fixture(scope="module", params=DIALECTS)
def catalog(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    """Snapshot s1 (LEFORT and DUPONT still there), LEFORT archived when she left the source, snapshot s2 (the
    newest: LEFORT and DUPONT gone), and GUÉRIN from a damaged old DVD; searches only read it."""
    with open_catalog(new_url(request, request.param, tmp_path_factory.mktemp("search"))) as opened:
        build = Builder(opened)
        build.archive("a-old", "2009-06-30T00:00:00Z", OLD_DVD, [GUERIN], damaged=True)
        build.snapshot("s1", "2025-01-11T02:00:00Z", [LEFEVRE, NDIAYE, LEFORT, DUPONT, MOREAU])
        build.archive("a-deleted", "2025-01-15T03:00:00Z", DELETED_ARCHIVE, [LEFORT])
        build.snapshot("s2", "2025-02-01T02:00:00Z", [LEFEVRE, NDIAYE, LEFEVREUX, LEFEBVRE, MOREAU])
        build.finish()
        yield opened


def found(catalog: Catalog, **criteria: str) -> list[str]:
    """The last names found, in the order shown."""
    return [p["last_name"] for p in search(catalog, Criteria(**criteria), per_page=50).patients]


@pytest.mark.parametrize("typed", ["lefevre", "LEFÈVRE", "Lefèvre", "lefèvre "])
def test_accent_and_case_free_last_name_finds_lefevre_first(catalog: Catalog, typed: str) -> None:
    # exact name first, then a longer name it begins, then one typo away
    assert found(catalog, last_name=typed) == ["LEFÈVRE", "Lefèvreux", "LEFEBVRE"]


@pytest.mark.parametrize("typed", ["ndiaye", "n diaye", "N'Diaye", "n-diaye"])
def test_apostrophes_and_spaces_are_ignored(catalog: Catalog, typed: str) -> None:
    assert found(catalog, last_name=typed) == ["N'DIAYE"]


def test_first_name_with_hyphen_found_with_a_space(catalog: Catalog) -> None:
    assert found(catalog, first_name="jean baptiste") == ["LEFÈVRE"]
    assert found(catalog, first_name="baptiste") == ["LEFÈVRE"]
    assert found(catalog, first_name="jean") == ["LEFÈVRE", "MOREAU"]  # both exact: then by name
    assert found(catalog, first_name="therese") == ["LEFEBVRE"]


def test_prefix_is_sorted_by_name(catalog: Catalog) -> None:
    assert found(catalog, last_name="lef") == ["LEFEBVRE", "LEFÈVRE", "Lefèvreux", "LEFORT"]
    assert found(catalog, last_name="lef", first_name="mar") == ["LEFEBVRE"]


@pytest.mark.parametrize(("typed", "expected"), [
    ("lefebre", ["LEFEBVRE", "LEFÈVRE"]),  # one substitution from LEFÈVRE, one deletion from LEFEBVRE
    ("lfevre", ["LEFÈVRE"]),  # a letter missing
    ("lefvere", ["LEFÈVRE"]),  # neighbours swapped
    ("leffevre", ["LEFÈVRE"]),  # a letter doubled
    ("duppnt", ["DUPONT"]),
])
def test_one_typo_is_tolerated(catalog: Catalog, typed: str, expected: list[str]) -> None:
    assert found(catalog, last_name=typed) == expected
    assert all(p["relevance"] == 2 for p in search(catalog, Criteria(last_name=typed)).patients)


@pytest.mark.parametrize("typed", ["lefavro", "lfvere", "dupptn", "xyz"])
def test_two_typos_find_nothing(catalog: Catalog, typed: str) -> None:
    assert found(catalog, last_name=typed) == []


def test_relevance_exact_prefix_typo(catalog: Catalog) -> None:
    result = search(catalog, Criteria(last_name="lefevre"))
    assert [(p["last_name"], p["relevance"]) for p in result.patients] == [
        ("LEFÈVRE", 0), ("Lefèvreux", 1), ("LEFEBVRE", 2)]


def test_identifiers(catalog: Catalog) -> None:
    assert found(catalog, mrn="IPP-000123") == ["LEFÈVRE"]
    assert found(catalog, mrn="ipp000123") == ["LEFÈVRE"]
    assert found(catalog, mrn="IPP-00012") == []  # an MRN is exact, never a prefix
    assert found(catalog, patient_id="7") == ["GUÉRIN"]
    assert found(catalog, patient_id="102") == ["N'DIAYE"]


@pytest.mark.parametrize(("criteria", "expected"), [
    ({"birth_date": "1957-03-14"}, ["LEFÈVRE"]),
    ({"birth_date": "14/03/1957"}, ["LEFÈVRE"]),
    ({"birth_date": "14.03.1957"}, ["LEFÈVRE"]),
    ({"born": "1957"}, ["LEFEBVRE", "LEFÈVRE"]),
    ({"born": "1955-1965"}, ["LEFEBVRE", "LEFÈVRE", "N'DIAYE"]),
    ({"born": "1930 - 1940"}, ["GUÉRIN"]),
    ({"born": "1957", "physician": "beranger"}, ["LEFÈVRE"]),
])
def test_birth(catalog: Catalog, criteria: dict[str, str], expected: list[str]) -> None:
    assert found(catalog, **criteria) == expected


@pytest.mark.parametrize(("typed", "expected"), [
    ("M", ["DUPONT", "GUÉRIN", "LEFÈVRE", "MOREAU"]),
    ("H", ["DUPONT", "GUÉRIN", "LEFÈVRE", "MOREAU"]),
    ("homme", ["DUPONT", "GUÉRIN", "LEFÈVRE", "MOREAU"]),
    ("F", ["LEFEBVRE", "Lefèvreux", "LEFORT", "N'DIAYE"]),
    ("femme", ["LEFEBVRE", "Lefèvreux", "LEFORT", "N'DIAYE"]),
    ("female", ["LEFEBVRE", "Lefèvreux", "LEFORT", "N'DIAYE"]),
])
def test_gender(catalog: Catalog, typed: str, expected: list[str]) -> None:
    assert found(catalog, gender=typed) == expected


@pytest.mark.parametrize(("typed", "expected"), [
    ("beranger", ["LEFÈVRE", "Lefèvreux"]),
    ("Dr Béranger", ["LEFÈVRE", "Lefèvreux"]),
    ("BÉRAN", ["LEFÈVRE", "Lefèvreux"]),
    ("martin", ["LEFEBVRE", "LEFORT"]),
    ("Dr Martin-Dupont", ["LEFEBVRE", "LEFORT"]),
    ("dupont", ["LEFEBVRE", "LEFORT"]),
    ("le goff", ["N'DIAYE"]),
    ("legoff", ["N'DIAYE"]),
    ("deschamps", ["GUÉRIN"]),
    ("Pr Deschamps", ["GUÉRIN"]),
    ("Dr Nobody", []),
])
def test_physician(catalog: Catalog, typed: str, expected: list[str]) -> None:
    assert found(catalog, physician=typed) == expected


@pytest.mark.parametrize(("criteria", "expected"), [
    ({"plan": "prostate"}, ["LEFÈVRE"]),
    ({"plan": "sein"}, ["N'DIAYE"]),
    ({"plan": "vmat"}, ["LEFORT"]),
    ({"plan": "oesophage"}, ["GUÉRIN"]),
    ({"plan": "poumon sbrt"}, ["Lefèvreux"]),
    ({"text": "adenocarcinome"}, ["LEFÈVRE"]),
    ({"text": "carcinome"}, ["N'DIAYE"]),  # a word's prefix, not any substring
    ({"text": "contrôle"}, ["LEFÈVRE"]),  # the comment
    ({"text": "sein gauche"}, ["N'DIAYE"]),
    ({"text": "sein"}, ["MOREAU", "N'DIAYE"]),
    ({"text": "œsophage"}, ["GUÉRIN"]),
    ({"modality": "mr"}, ["N'DIAYE"]),
    ({"modality": "PT"}, ["LEFEBVRE"]),
    ({"modality": "CT", "last_name": "lef"}, ["LEFEBVRE", "LEFÈVRE", "Lefèvreux", "LEFORT"]),
])
def test_plans_text_and_modality(catalog: Catalog, criteria: dict[str, str], expected: list[str]) -> None:
    assert found(catalog, **criteria) == expected


@pytest.mark.parametrize(("criteria", "expected"), [
    ({"modified_after": "2025-01-15"}, ["Lefèvreux", "N'DIAYE"]),
    ({"modified_before": "2024-12-31"}, ["DUPONT", "GUÉRIN", "LEFEBVRE", "LEFORT"]),
    ({"modified_after": "01/01/2025", "modified_before": "2025-01-10"}, ["LEFÈVRE", "MOREAU"]),  # inclusive
    ({"modified_after": "2025-01-10", "modified_before": "10/01/2025"}, ["LEFÈVRE"]),
    ({"archived_after": "2020-01-01"}, ["LEFORT"]),
    ({"archived_before": "2010-12-31"}, ["GUÉRIN"]),
    ({"archived_after": "2009-06-30", "archived_before": "2025-01-15"}, ["GUÉRIN", "LEFORT"]),
    ({"archive": "pinnacle-2009"}, ["GUÉRIN"]),
    ({"archive": OLD_DVD}, ["GUÉRIN"]),
    ({"archive": "deleted-"}, ["LEFORT"]),
    ({"archive": "nothing"}, []),
])
def test_dates_and_archives(catalog: Catalog, criteria: dict[str, str], expected: list[str]) -> None:
    assert found(catalog, **criteria) == expected


@pytest.mark.parametrize(("typed", "expected"), [
    ("active", ["LEFEBVRE", "LEFÈVRE", "Lefèvreux", "MOREAU", "N'DIAYE"]),  # in the newest snapshot
    ("archived", ["GUÉRIN", "LEFORT"]),  # left the source and archived, or only in an old archive
    ("deleted", ["DUPONT"]),  # left the source, never archived: only older snapshots still hold it
    ("archived,deleted", ["DUPONT", "GUÉRIN", "LEFORT"]),
    ("Archived", ["GUÉRIN", "LEFORT"]),
])
def test_status(catalog: Catalog, typed: str, expected: list[str]) -> None:
    assert found(catalog, status=typed) == expected


def test_locations_say_where_each_patient_is(catalog: Catalog) -> None:
    lefevre = search(catalog, Criteria(mrn="IPP-000123")).patients[0]
    assert lefevre["status"] == "active"
    assert lefevre["locations"] == [{"kind": "snapshots", "store": "primary", "store_id": "primary", "count": 2,
                                     "first": "2025-01-11T02:00:00Z", "last": "2025-02-01T02:00:00Z",
                                     "latest_snapshot": "s2", "site": "", "source": ""}]
    lefort = search(catalog, Criteria(last_name="lefort")).patients[0]
    assert (lefort["status"], lefort["archived_at"]) == ("archived", "2025-01-15T03:00:00Z")
    assert [loc["kind"] for loc in lefort["locations"]] == ["snapshots", "archive"]
    assert lefort["locations"][1] | {"volume": ""} == {
        "kind": "archive", "store": "primary", "store_id": "primary", "archive": "a-deleted", "file": DELETED_ARCHIVE,
        "volume": "",
        "time": "2025-01-15T03:00:00Z", "damaged": False, "site": "", "source": ""}
    guerin = search(catalog, Criteria(patient_id="7")).patients[0]
    assert [(loc["file"], loc["damaged"]) for loc in guerin["locations"]] == [(OLD_DVD, True)]
    assert (guerin["gender"], guerin["birth_date"], guerin["physician"]) == ("male", "1938-12-24", "Pr DESCHAMPS")


def test_pagination_and_total(catalog: Catalog) -> None:
    everyone = found(catalog)
    assert len(everyone) == 8
    pages = [search(catalog, Criteria(), page=n, per_page=3) for n in (1, 2, 3, 4)]
    assert [r.total for r in pages] == [8, 8, 8, 8]
    assert [len(r.patients) for r in pages] == [3, 3, 2, 0]
    assert [p["last_name"] for r in pages for p in r.patients] == everyone
    assert not any(r.more for r in pages)
    assert search(catalog, Criteria(last_name="lef"), per_page=2).total == 4


def test_json_result_has_the_documented_keys(catalog: Catalog) -> None:
    document = search(catalog, Criteria(last_name="ndiaye")).to_json()
    assert document["total"] == 1
    shown = document["patients"][0]
    assert {"mrn", "patient_id", "path", "last_name", "first_name", "birth_date", "status", "locations"} <= set(shown)
    assert (shown["mrn"], shown["patient_id"], shown["path"]) == ("IPP-000456", "102",
                                                                   "Institution_1/Mount_0/Patient_102")


@pytest.mark.parametrize(("criteria", "message"), [
    ({"born": "abc"}, "born: 'abc' is not a year or a range of years"),
    ({"born": "1960-1950"}, "is not a year or a range"),
    ({"birth_date": "31/02/1957"}, "birth date: '31/02/1957' is not a date"),
    ({"modified_after": "yesterday"}, "modified after: 'yesterday' is not a date"),
    ({"status": "gone"}, "status: gone unknown (expected active, archived, deleted, received)"),
    ({"last_name": "'-"}, "last name: \"'-\" holds no letter or digit"),
    ({"first_name": "..."}, "first name: '...' holds no letter or digit"),
    ({"gender": "x"}, "gender: 'x' is not male, female or other"),
    ({"physician": "--"}, "physician: '--' holds no letter or digit"),
])
def test_bad_input_is_a_readable_input_error(catalog: Catalog, criteria: dict[str, str], message: str) -> None:
    with pytest.raises(InputError) as raised:
        search(catalog, Criteria(**criteria))
    assert message in str(raised.value)


@pytest.mark.parametrize(("page", "per_page"), [(0, 20), (1, 0), (1, 1000)])
def test_bad_page_is_an_input_error(catalog: Catalog, page: int, per_page: int) -> None:
    with pytest.raises(InputError, match="page"):
        search(catalog, Criteria(), page=page, per_page=per_page)


def test_criteria_combine(catalog: Catalog) -> None:
    result = search(catalog, Criteria(last_name="lef", status="active,archived", modality="ct",
                                      modified_before="2025-12-31"), per_page=2, page=2)
    assert [p["last_name"] for p in result.patients] == ["Lefèvreux", "LEFORT"]
    assert result.total == 4
