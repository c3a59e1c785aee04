"""Until when an archived patient must be kept (Code de la santé publique, art. R1112-7), as an administrator
sees it through `archive expired`, `archive show`, `archive override` and `archive delete`: 20 years after
the last modification, the 28th birthday for a minor, 10 years after a death within 10 years, holds, and
deletion refused before the date, allowed after it."""

from __future__ import annotations

import calendar
import os
import re
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from kit.archive import members_of, pinnacle_tar
from kit.vault import Vault

ADULT_BIRTH = re.compile(rb'^DateOfBirth = "[^"]*";', re.MULTILINE)


def years_after(day: date, years: int) -> date:
    if day.month == 2 and day.day == 29 and not calendar.isleap(day.year + years):
        return date(day.year + years, 2, 28)
    return day.replace(year=day.year + years)


def set_mtimes(directory: Path, when: datetime) -> None:
    """Every file and directory of a patient last modified at `when` (as if treated then)."""
    stamp = when.timestamp()
    for current, dirs, names in os.walk(directory, topdown=False):
        for name in names + dirs:
            os.utime(Path(current, name), (stamp, stamp), follow_symlinks=False)
    os.utime(directory, (stamp, stamp))


def set_birth(patient_dir: Path, birth: date) -> None:
    """Edit DateOfBirth in the Patient file the way Pinnacle writes it ("YYYY MM DD"), nothing else."""
    patient = patient_dir / "Patient"
    data, count = ADULT_BIRTH.subn(f'DateOfBirth = "{birth:%Y %m %d}";'.encode(), patient.read_bytes())
    assert count == 1
    patient.write_bytes(data)


def last_modified(archive: Path, patient: str) -> date:
    """The newest mtime (UTC day) of the patient's files, read from the archive with Python's tarfile."""
    newest = max(m.mtime for m in members_of(archive) if m.isfile() and m.name.startswith(patient + "/"))
    return datetime.fromtimestamp(newest, UTC).date()


def rows(vault: Vault, *args: str) -> dict[tuple[str, str], dict]:
    """`archive expired [--all] --json`, by (archive id, patient path)."""
    return {(r["archive"], r["path"]): r for r in vault.cli_json("archive", "expired", *args)["patients"]}


def keep_of(vault: Vault, archive_id: str) -> dict[str, str | None]:
    """`archive show --json`: keep-until date per patient path."""
    return {path: keep["date"] for path, keep in vault.show(archive_id)["keep_until"].items()}


def deleted_patient_archives(vault: Vault, patients: list[str]) -> dict[str, dict]:
    """Back up, delete these patients from Pinnacle, back up again: their automatic archives, by path."""
    vault.backup()
    for path in patients:
        shutil.rmtree(vault.root / path)
    assert len(vault.backup(allow_shrink=True).archived) == len(patients)
    found = {a["patients"][0]["path"]: a for a in vault.archives()}
    assert sorted(found) == sorted(patients)
    return found


def test_an_adult_is_kept_20_years_after_the_last_modification(vault: Vault, tmp_path: Path) -> None:
    patient = vault.patient_paths()[0]
    archive_file = pinnacle_tar(vault.root, tmp_path / "p.tar", [patient])
    archive = vault.ingest_one(archive_file)
    keep = years_after(last_modified(archive_file, patient), 20)

    row = rows(vault, "--all")[(archive["id"], patient)]
    assert row["keep_until"] == keep.isoformat()
    assert row["may_destroy"] is False
    assert "20 years" in row["rule"]
    assert keep_of(vault, archive["id"]) == {patient: keep.isoformat()}
    assert rows(vault) == {}  # nothing has expired

    done = vault.cli("archive", "delete", archive["id"], "--reason", "retention over", expect=4)
    assert keep.isoformat() in done.stderr
    assert [a["id"] for a in vault.archives()] == [archive["id"]]
    assert vault.tar_path(archive["id"]).is_file()


def test_a_minor_is_kept_until_the_28th_birthday_when_later(own_vault: Vault) -> None:
    """Treated in June 2020 at 5 (28th birthday in 2043, after 2040) and at 12 (20 years end later)."""
    vault = own_vault
    young, older = vault.patient_paths()[:2]
    treated = datetime(2020, 6, 1, 12, 0, tzinfo=UTC)
    set_birth(vault.root / young, date(2015, 3, 15))
    set_birth(vault.root / older, date(2008, 1, 10))
    for path in (young, older):
        set_mtimes(vault.root / path, treated)
    archives = deleted_patient_archives(vault, [young, older])

    assert archives[young]["patients"][0]["birth_date"] == "2015-03-15"
    everything = rows(vault, "--all")
    assert everything[(archives[young]["id"], young)]["keep_until"] == "2043-03-15"
    assert "28th birthday" in everything[(archives[young]["id"], young)]["rule"]
    assert everything[(archives[older]["id"], older)]["keep_until"] == "2040-06-01"
    assert keep_of(vault, archives[young]["id"]) == {young: "2043-03-15"}
    vault.cli("archive", "delete", archives[young]["id"], "--reason", "retention over", expect=4)


def test_overrides_until_death_hold_release(vault: Vault, tmp_path: Path) -> None:
    first, second = vault.patient_paths()[:2]
    archive_file = pinnacle_tar(vault.root, tmp_path / "two.tar", [first, second])
    archive = vault.ingest_one(archive_file)
    legal = {path: years_after(last_modified(archive_file, path), 20) for path in (first, second)}
    assert keep_of(vault, archive["id"]) == {p: d.isoformat() for p, d in legal.items()}

    def override(*args: str, expect: int = 0) -> None:
        vault.cli("archive", "override", archive["id"][:12], *args, "--reason", "test d'intégration", expect=expect)

    # an explicit date can only lengthen
    shorter = years_after(legal[first], -5)
    override("--patient", first, "--until", shorter.isoformat())
    assert keep_of(vault, archive["id"])[first] == legal[first].isoformat()
    assert "ignored" in vault.show(archive["id"])["keep_until"][first]["rule"]
    longer = years_after(legal[first], 3)
    override("--patient", first, "--until", longer.isoformat())
    assert keep_of(vault, archive["id"])[first] == longer.isoformat()

    # a death within 10 years of the last visit: 10 years after the death, shorter than 20 years
    visit = last_modified(archive_file, second)
    death = years_after(visit, 2)
    override("--patient", str(vault.show(archive["id"])["patients"][1]["mrn"]), "--death", death.isoformat())
    assert keep_of(vault, archive["id"]) == {first: longer.isoformat(), second: years_after(death, 10).isoformat()}
    assert years_after(death, 10) < legal[second]
    vault.cli("archive", "delete", archive["id"], "--reason", "retention over", expect=4)

    # a litigation hold: kept until released, for every patient of the archive
    override("--hold")
    assert keep_of(vault, archive["id"]) == {first: None, second: None}
    assert all(r["keep_until"] is None and not r["may_destroy"] for r in rows(vault, "--all").values())
    override("--release")
    assert keep_of(vault, archive["id"]) == {first: longer.isoformat(), second: years_after(death, 10).isoformat()}

    # exactly one kind per override, and overrides only name patients of the archive
    override("--hold", "--death", "2030-01-01", expect=4)
    override("--patient", "no-such-patient", "--hold", expect=4)
    assert keep_of(vault, archive["id"])[first] == longer.isoformat()


OLD = datetime(1990, 5, 15, 12, 0, tzinfo=UTC)


def test_an_expired_archive_can_be_deleted_unless_held(own_vault: Vault) -> None:
    vault = own_vault
    patient = vault.patient_paths()[2]
    set_mtimes(vault.root / patient, OLD)
    archive = deleted_patient_archives(vault, [patient])[patient]
    tar = vault.tar_path(archive["id"])
    assert tar.is_file()

    expired = rows(vault)
    assert list(expired) == [(archive["id"], patient)]
    assert expired[(archive["id"], patient)]["keep_until"] == "2010-05-15"
    assert expired[(archive["id"], patient)]["may_destroy"] is True

    vault.cli("archive", "override", archive["id"], "--hold", "--reason", "plainte du 3 mars")
    assert rows(vault) == {}
    assert rows(vault, "--all")[(archive["id"], patient)]["keep_until"] is None
    done = vault.cli("archive", "delete", archive["id"], "--reason", "retention over", expect=4)
    assert "hold" in done.stderr
    assert tar.is_file()

    vault.cli("archive", "override", archive["id"], "--release", "--reason", "affaire classée")
    assert list(rows(vault)) == [(archive["id"], patient)]
    vault.cli("archive", "delete", archive["id"], "--reason", "retention over")
    assert vault.archives() == []
    assert not tar.exists()
    assert rows(vault, "--all") == {}
    # the snapshots still hold the patient's backed-up versions: deleting an archive touches nothing else
    vault.cli("check")


def test_an_archive_is_kept_while_one_of_its_patients_must_be(own_vault: Vault, tmp_path: Path) -> None:
    vault = own_vault
    old, recent = vault.patient_paths()[:2]
    set_mtimes(vault.root / old, OLD)
    archive = vault.ingest_one(pinnacle_tar(vault.root, tmp_path / "mixed.tar", [old, recent]))
    assert list(rows(vault)) == [(archive["id"], old)]
    done = vault.cli("archive", "delete", archive["id"], "--reason", "retention over", expect=4)
    assert recent in done.stderr
    assert [a["id"] for a in vault.archives()] == [archive["id"]]


@pytest.mark.parametrize("birth", [date(1990, 5, 16), date(1972, 5, 15)], ids=["minor-at-birth", "adult"])
def test_expiry_dates_follow_the_birth_date_in_the_patient_file(own_vault: Vault, tmp_path: Path, birth: date) -> None:
    """Treated in 1990: a newborn is kept until 2018 (28th birthday), an adult until 2010; both are expired."""
    vault = own_vault
    patient = vault.patient_paths()[3]
    set_birth(vault.root / patient, birth)
    set_mtimes(vault.root / patient, OLD)
    archive = vault.ingest_one(pinnacle_tar(vault.root, tmp_path / "p.tar.gz", [patient], gz=True))
    row = rows(vault)[(archive["id"], patient)]
    assert row["keep_until"] == (years_after(birth, 28) if birth > date(1972, 5, 15) else date(2010, 5, 15)).isoformat()
    assert row["may_destroy"] is True


def test_a_hold_released_within_the_same_second_is_released(tmp_path: Path) -> None:
    """Overrides keep their time to the microsecond: a release recorded in the same second as its hold (a script
    correcting a mistake) still comes after it, once written to the store and read back."""
    from rtvault.archive import records
    from rtvault.archive.keep import HOLD, RELEASE, Override, keep_until
    from rtvault.store import Store

    store, _created = Store.init(tmp_path / "store")
    hold_at = datetime(2026, 12, 6, 12, 0, 0, 100_000, tzinfo=UTC)
    records.add_override(store, "a" * 64, None, Override(kind=HOLD, date=None, reason="court", by="admin",
                                                         at=hold_at))
    records.add_override(store, "a" * 64, None, Override(kind=RELEASE, date=None, reason="settled", by="admin",
                                                         at=hold_at.replace(microsecond=900_000)))
    read_back = [o for _who, o in records.overrides(store, "a" * 64)]
    assert [o.kind for o in read_back] == [HOLD, RELEASE] and read_back[0].at < read_back[1].at
    assert keep_until(date(2020, 1, 1), date(1950, 1, 1), read_back).date is not None, "the hold was released"
