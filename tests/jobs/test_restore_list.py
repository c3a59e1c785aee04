"""Restoring several patients with one report, as a physicist does from a list: each patient found comes back
whole and byte-identical in a folder of its own; a row naming no one, or two patients, or a patient the store
cannot give, is named with its reason and the others are restored; exit 0 only when every row was."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kit import store as storekit
from kit.files import files_of, set_field
from kit.vault import Vault
from rtvault.catalog import open_catalog
from rtvault.errors import ExitCode
from rtvault.jobs.catalog import refresh
from rtvault.jobs.patient_list import read_patient_list
from rtvault.jobs.restore_list import ListRestore, restore_keys, restore_list
from rtvault.store.formats import PatientEntry
from rtvault.store.objects import data_key

TWINS = ("MARTÍN", "1957-03-14")  # the last name and birth date two synthetic patients are given


def _backed_up(vault: Vault) -> Vault:
    for patient in vault.patients()[:2]:
        set_field(patient / "Patient", "LastName", TWINS[0])
        set_field(patient / "Patient", "DateOfBirth", TWINS[1])
    vault.backup()
    refresh(vault.config)
    return vault


@pytest.fixture(scope="module")
def listed(new_vault: Callable[[Path], Vault], tmp_path_factory: pytest.TempPathFactory) -> Vault:
    """Six patients backed up and catalogued, the first two sharing a last name and a birth date."""
    return _backed_up(new_vault(tmp_path_factory.mktemp("list")))


def _patients(vault: Vault) -> list[PatientEntry]:
    return vault.manifests()[-1].patients


def _restore(vault: Vault, text: str, dest: Path, encoding: str = "utf-8") -> ListRestore:
    with open_catalog(vault.config.catalog.url) as catalog:
        return restore_list(vault.config, catalog, read_patient_list(text.encode(encoding), "liste.csv"), dest)


def _restored_files(entry: dict) -> dict:
    """What a restored folder holds of its patient (the Institution file beside it is Pinnacle's import file)."""
    return {rel: value for rel, value in files_of(Path(entry["directory"])).items() if rel != "Institution"}


def test_five_patients_of_a_latin_1_list_come_back_byte_identical(listed: Vault, tmp_path: Path) -> None:
    twin, *others = _patients(listed)[1:]
    rows = [f"{p.mrn};;;" for p in others[:2]]  # by MRN
    rows += [f";{p.last_name.lower()};;{p.birth_date[8:]}/{p.birth_date[5:7]}/{p.birth_date[:4]}"  # name, day first
             for p in others[2:]]
    rows += [f"{twin.mrn};{twin.last_name};;"]  # the MRN wins over the (shared) name
    text = "IPP;Nom;Prénom;Date de naissance\n\n" + "\n".join(rows) + "\n"

    report = _restore(listed, text, tmp_path / "restored", encoding="latin-1")

    assert list(report.to_json())[:3] == ["restored", "not_found", "ambiguous"]
    assert report.verdict().code == ExitCode.OK and report.missed == 0
    assert [e["line"] for e in report.restored] == [3, 4, 5, 6, 7]
    assert {e["path"] for e in report.restored} == {p.path for p in [*others, twin]}
    assert report.to_json()["list"]["encoding"] == "windows-1252"  # type: ignore[index]
    assert any("not UTF-8" in warning for warning in report.warnings())
    source = listed.source_files()
    for entry in report.restored:
        assert Path(entry["directory"]).parent == tmp_path / "restored"
        assert (Path(entry["directory"]) / "Institution").is_file()
        expected = {rel: value for rel, value in source.items() if rel.startswith(entry["path"] + "/")}
        assert _restored_files(entry) == expected and expected
        assert entry["files"] == len(expected) + 1  # and the Institution file
    assert report.files == sum(e["files"] for e in report.restored) and report.bytes > 0
    assert (tmp_path / "restored").stat().st_mode & 0o777 == 0o700


def test_not_found_ambiguous_unusable_and_duplicate_rows_are_named(listed: Vault, tmp_path: Path) -> None:
    first, second, third = _patients(listed)[:3]
    text = ("mrn,last_name,first_name,birth_date\n"
            f",{TWINS[0].lower()},,14/03/1957\n"  # two patients have it
            ",Nobody,,1957-03-14\n"
            "0000000000,,,\n"
            f",{first.last_name},{first.first_name},{TWINS[1]}\n"  # the first name tells the twins apart
            f"{third.mrn},,,\n"
            f" {third.mrn.lower()} ,,,\n"  # the same MRN again
            f",martin,{first.first_name},1957-03-14\n"  # the same patient by name: restored once
            ",Dupont,,31/02/1957\n")
    report = _restore(listed, text, tmp_path / "out")

    assert [e["line"] for e in report.restored] == [5, 6]
    [ambiguous] = report.ambiguous
    assert ambiguous["line"] == 2 and {c["path"] for c in ambiguous["candidates"]} == {first.path, second.path}
    assert {c["mrn"] for c in ambiguous["candidates"]} == {first.mrn, second.mrn}
    assert report.restored[0]["key"] in {c["key"] for c in ambiguous["candidates"]}  # the same keys as a search's
    assert [(e["line"], e["reason"]) for e in report.not_found] == [
        (3, "no patient in the catalog has this last name and birth date"),
        (4, "no patient in the catalog has this MRN")]
    assert [(e["line"], e["same_as"]) for e in report.duplicates] == [(7, 6), (8, 5)]
    assert [e["line"] for e in report.invalid] == [9] and "not a date" in report.invalid[0]["reason"]
    assert report.verdict().code == ExitCode.PARTIAL and "4 of 6 patient(s) not restored" in str(report.verdict().error)
    assert len(list((tmp_path / "out").iterdir())) == 2  # a folder for each patient restored, nothing else

    sheet = report.to_csv().decode("utf-8-sig").splitlines()
    assert sheet[0].startswith("line,outcome,asked_mrn,") and len(sheet) == 9
    assert [row.split(",")[1] for row in sheet[1:]] == ["ambiguous", "not_found", "not_found", "restored",
                                                        "restored", "duplicate", "duplicate", "invalid"]


def test_a_patient_the_store_cannot_give_is_named_and_the_others_are_restored(
        new_vault: Callable[[Path], Vault], tmp_path: Path) -> None:
    vault = _backed_up(new_vault(tmp_path / "site"))
    damaged, *whole = _patients(vault)[2:5]
    lost = vault.tree_of(damaged.path).files[0]
    storekit.lose(vault.store_path, data_key(lost.hash))

    report = _restore(vault, "mrn\n" + "".join(f"{p.mrn}\n" for p in [damaged, *whole]), tmp_path / "out")

    assert [e["path"] for e in report.restored] == [p.path for p in whole]
    [failed] = report.failed
    assert failed["line"] == 2 and failed["path"] == damaged.path and failed["mrn"] == damaged.mrn
    assert "cannot be restored whole" in failed["reason"] and lost.name in failed["reason"]
    assert len(list((tmp_path / "out").iterdir())) == 2  # nothing of the damaged patient is left
    assert report.verdict().code == ExitCode.PARTIAL


def test_several_keys_land_at_their_paths_as_one_patient_does(listed: Vault, tmp_path: Path) -> None:
    first, second = _patients(listed)[2:4]
    report = restore_keys(listed.store, [first.mrn, second.path, first.path, "nobody"], tmp_path / "out")

    assert [e["path"] for e in report.restored] == [first.path, second.path]
    assert [e["asked"] for e in report.duplicates] == [{"patient": first.path}]
    assert [e["asked"] for e in report.not_found] == [{"patient": "nobody"}]
    source = listed.source_files()
    assert files_of(tmp_path / "out") == {rel: value for rel, value in source.items()
                                          if rel.startswith((first.path + "/", second.path + "/"))}
    assert report.verdict().code == ExitCode.PARTIAL

    again = restore_keys(listed.store, [first.mrn, second.mrn], tmp_path / "out")  # never overwrites
    assert [e["path"] for e in again.failed] == [first.path, second.path] and "--force" in again.failed[0]["reason"]


@pytest.mark.slow
def test_a_last_name_that_is_one_word_of_another_is_never_restored_as_that_patient(
        new_vault: Callable[[Path], Vault], tmp_path: Path) -> None:
    vault = new_vault(tmp_path / "vault")
    patient = vault.patients()[0]
    set_field(patient / "Patient", "LastName", "DUPONT-MARTIN")
    set_field(patient / "Patient", "DateOfBirth", "1948-07-02")
    vault.backup()
    refresh(vault.config)
    report = _restore(vault, "nom;date de naissance\nMARTIN;02/07/1948\nDupont-Martin;1948-07-02\n", tmp_path / "out")
    [partial] = report.ambiguous  # the MARTIN asked may be a patient the vault does not hold
    assert partial["line"] == 2 and [c["name"].split()[0] for c in partial["candidates"]] == ["DUPONT-MARTIN"]
    assert "only part of each candidate's" in partial["reason"]
    assert [e["line"] for e in report.restored] == [3]  # the whole name is a match
