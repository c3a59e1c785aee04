"""Birth and scan dates normalised to ISO 8601."""

from __future__ import annotations

import pytest

from rtvault.pinnacle.dates import DateProblem, normalise_date, normalise_datetime


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("1950-03-12", "1950-03-12"),
        ("1950/03/12", "1950-03-12"),
        ("1950 03 12", "1950-03-12"),
        ("1950-3-2", "1950-03-02"),
        ("24/12/1950", "1950-12-24"),  # day first: unambiguous since 24 > 12
        ("12/24/1950", "1950-12-24"),  # month first: unambiguous since 24 > 12
        ("05/05/1950", "1950-05-05"),
        (" 1950-03-12 00:00:00 ", "1950-03-12"),
        ("", None),
        ("   ", None),
    ],
)
def test_birth_dates(raw, iso):
    assert normalise_date(raw) == iso


@pytest.mark.parametrize("raw", ["03/04/1950", "1950-02-30", "unknown", "12-1950", "50-03-12"])
def test_unreadable_or_ambiguous_dates_are_refused_not_guessed(raw):
    with pytest.raises(DateProblem):
        normalise_date(raw)


def test_datetimes():
    assert normalise_datetime("2020-01-01 10:00:00") == "2020-01-01T10:00:00"
    assert normalise_datetime("2020/01/01") == "2020-01-01"
    assert normalise_datetime("") is None
