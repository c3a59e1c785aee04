"""The helpers every exported object shares: DS/IS within DICOM's lengths, dates, names."""

from __future__ import annotations

import pytest

from rtvault.dicom.common import dicom_date, dicom_time, format_ds, format_is, patient_sex, person_name


@pytest.mark.parametrize("value", [0.0, -0.0, 1e-12, -1e-12, 1.0, -1.0, 1 / 3, -2 / 3, 123456.789012345,
                                   -987654321.123456, 1e20, -1e-20, 2.5e-7, 499.99999999999994])
def test_decimal_strings_fit_and_keep_the_value(value: float) -> None:
    text = format_ds(value)
    assert len(text) <= 16
    assert text != "-0"
    assert float(text) == pytest.approx(value, rel=1e-9, abs=1e-9)


def test_non_finite_and_oversized_numbers_are_refused() -> None:
    with pytest.raises(ValueError):
        format_ds(float("nan"))
    with pytest.raises(ValueError):
        format_is(2**31)
    assert format_is(-(2**31)) == "-2147483648"


def test_dates_times_names_and_sex() -> None:
    assert dicom_date("2024-03-05T10:20:30Z") == "20240305"
    assert dicom_time("2024-03-05T10:20:30Z") == "102030"
    assert dicom_date(None) == dicom_time("2024-03-05") == ""
    assert person_name("DUPONT", "Jean^Luc", "") == "DUPONT^Jean Luc"
    assert person_name("", "", "") == ""
    assert (patient_sex("Male"), patient_sex("FEMALE"), patient_sex("Unknown")) == ("M", "F", "")
