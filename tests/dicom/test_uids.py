"""Deterministic UIDs: the same export twice, the same UIDs; any part changed, another UID; always valid DICOM."""

from __future__ import annotations

import re

import pytest

from rtvault.dicom.uids import MAX_LENGTH, Ids, derive

VALID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")


@pytest.mark.parametrize("root", ["2.25", "1.2.250.1.999.42", "1.2.840.10008.9.9.9.9.9.9.9.9.99999"])
def test_uids_are_valid_and_fit_in_64_characters(root: str) -> None:
    for n in range(200):
        uid = derive(root, "patient", "version", "ct", str(n))
        assert len(uid) <= MAX_LENGTH and VALID.fullmatch(uid) and uid.startswith(root + "."), uid


def test_the_same_parts_give_the_same_uid_and_any_change_another() -> None:
    one = Ids("2.25", "Institution_1/Mount_0/Patient_7|7|2021993744", "a" * 64)
    assert one.of("ct", "ImageSet_0", "slice", "3") == Ids(one.root, one.patient, one.version).of(
        "ct", "ImageSet_0", "slice", "3")
    others = {one.of("ct", "ImageSet_0", "slice", "3"), one.of("ct", "ImageSet_0", "slice", "4"),
              Ids("2.25", one.patient, "b" * 64).of("ct", "ImageSet_0", "slice", "3"),
              Ids("2.25", "other", one.version).of("ct", "ImageSet_0", "slice", "3"),
              Ids("1.2.250.1.999", one.patient, one.version).of("ct", "ImageSet_0", "slice", "3"),
              one.study, one.frame_of_reference("ImageSet_0")}
    assert len(others) == 7
    # parts are kept apart: ("ab", "c") is not ("a", "bc")
    assert derive("2.25", "ab", "c") != derive("2.25", "a", "bc")


def test_a_root_too_long_is_refused() -> None:
    with pytest.raises(ValueError, match="too little room"):
        derive("1." * 24 + "1", "x")
