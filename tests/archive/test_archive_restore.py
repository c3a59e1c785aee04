"""`rtvault restore --from-archive` and `rtvault archive export`: one patient out of an archive, byte-identical
with its modes and mtimes, with a filtered Institution file Pinnacle can import; never over existing files
unless forced; reading only that patient's part of a plain tar; and export to a tar any `tar` and `rtvault
inspect` read back."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
import zstandard

from kit import store as storekit
from kit.archive import (
    dirs_of,
    entries_of,
    gnu_tar,
    identity_of,
    listed_paths,
    members_of,
    parse_institution,
    pinnacle_tar,
)
from kit.cli import first_json, run_cli
from kit.files import regular_files
from kit.vault import Vault
from rtvault.jobs.archives import restore_from_archive
from rtvault.store.objects import data_key

TRANSIENT_SUFFIXES = (".ErrorLog", ".Transcript", "~")


def without_transient(files: dict) -> dict:
    """What a backup keeps: Pinnacle's autosaves, error logs, transcripts and `~` copies are skipped."""
    return {name: value for name, value in files.items()
            if not name.rsplit("/", 1)[-1].startswith(".auto.plan") and not name.endswith(TRANSIENT_SUFFIXES)}


@pytest.fixture
def unusual_modes(own_vault: Vault) -> None:
    """A few permissions Pinnacle sites really have, so that restoring modes is not restoring defaults."""
    vault = own_vault
    for index, patient in enumerate(vault.patient_paths()):
        directory = vault.root / patient
        os.chmod(directory / "ImageSet_0.header", 0o640)
        os.chmod(directory / "Patient", 0o600 if index % 2 else 0o664)
        plan = sorted(directory.glob("Plan_*"))[0]
        mtime = plan.stat().st_mtime
        os.chmod(plan, 0o750)
        os.utime(plan, (mtime, mtime))


def test_restore_from_archive_is_byte_identical_with_a_filtered_institution(
        own_vault: Vault, tmp_path: Path, unusual_modes: None) -> None:
    vault = own_vault
    paths = vault.patient_paths()
    archive = vault.ingest_one(pinnacle_tar(vault.root, tmp_path / "three.tar", paths[:3]))
    wanted = paths[1]
    destination = tmp_path / "restored"

    summary = vault.cli_json("restore", "--patient", wanted, "--to", str(destination), "--from-archive")
    assert summary["patients"] == [wanted]
    assert archive["id"] in summary["snapshot"]
    assert regular_files(destination / wanted) == regular_files(vault.root / wanted)
    assert dirs_of(destination / wanted) == dirs_of(vault.root / wanted)
    assert summary["files"] == len(regular_files(vault.root / wanted)) + 1  # and the Institution file

    # nothing else written: the patient at its path, and the Institution file Pinnacle needs to import it
    assert sorted(entries_of(destination)) == sorted(
        ["Institution", *("/".join(wanted.split("/")[: n + 1]) for n in range(3)),
         *(f"{wanted}/{name}" for name in entries_of(vault.root / wanted))])
    institution = (destination / "Institution").read_bytes()
    assert listed_paths(institution) == [wanted]
    root = parse_institution(institution)
    assert root.get("IsPatientBackup") == 1
    lite = root.child("PatientLiteList").items_list()[0]
    assert str(identity_of(vault.root / wanted)["mrn"]) in str(lite.get("FormattedDescription"))


def test_restore_by_mrn_patient_id_or_path(vault: Vault, tmp_path: Path) -> None:
    paths = vault.patient_paths()
    vault.ingest_one(pinnacle_tar(vault.root, tmp_path / "all.tar.gz", paths, gz=True))
    for key, wanted in (("mrn", paths[2]), ("patient_id", paths[1]), ("path", paths[3])):
        value = wanted if key == "path" else str(identity_of(vault.root / wanted)[key])
        out = tmp_path / f"by-{key}"
        vault.cli("restore", "--patient", value, "--to", str(out), "--from-archive")
        assert regular_files(out / wanted) == regular_files(vault.root / wanted), key
        assert sorted(p.name for p in (out / wanted).parent.iterdir()) == [wanted.rsplit("/", 1)[1]], key


def _two_versions(vault: Vault, tmp_path: Path) -> tuple[str, Path, Path, dict, dict]:
    """A patient archived twice: a 2019 DVD, then (plan changed) a 2021 one. Returns both tars and contents."""
    wanted = vault.patient_paths()[0]
    for path in (vault.root / wanted).rglob("*"):
        os.utime(path, (1_550_000_000, 1_550_000_000), follow_symlinks=False)  # last touched in 2019
    old_tar = pinnacle_tar(vault.root, tmp_path / "2019.tar", [wanted])
    before = regular_files(vault.root / wanted)
    trial = vault.root / wanted / "Plan_0" / "plan.Trial"
    trial.write_bytes(trial.read_bytes() + b"// replanned\n")
    os.utime(trial, (1_640_000_000, 1_640_000_000))
    new_tar = pinnacle_tar(vault.root, tmp_path / "2021.tar", [wanted])
    after = regular_files(vault.root / wanted)
    assert before != after
    return wanted, old_tar, new_tar, before, after


def test_restore_from_an_explicit_archive(own_vault: Vault, tmp_path: Path) -> None:
    vault = own_vault
    wanted, old_tar, new_tar, before, after = _two_versions(vault, tmp_path)
    old, new = vault.ingest_one(old_tar), vault.ingest_one(new_tar)
    vault.cli("restore", "--patient", wanted, "--to", str(tmp_path / "older"), "--from-archive", old["id"][:10])
    assert regular_files(tmp_path / "older" / wanted) == before
    vault.cli("restore", "--patient", wanted, "--to", str(tmp_path / "newer"), "--from-archive", new["id"])
    assert regular_files(tmp_path / "newer" / wanted) == after

    other = vault.patient_paths()[1]
    done = vault.cli("restore", "--patient", other, "--to", str(tmp_path / "x"), "--from-archive", old["id"], expect=8)
    assert other in done.stderr
    assert not (tmp_path / "x").exists()


def test_restore_without_an_id_takes_the_newest_version(own_vault: Vault, tmp_path: Path) -> None:
    vault = own_vault
    wanted, old_tar, new_tar, _before, after = _two_versions(vault, tmp_path)
    vault.ingest_one(new_tar)
    time.sleep(1.1)  # archives are dated to the second
    vault.ingest_one(old_tar)  # the old DVD found in a cupboard afterwards
    vault.cli("restore", "--patient", wanted, "--to", str(tmp_path / "out"), "--from-archive")
    assert regular_files(tmp_path / "out" / wanted) == after


def test_no_overwrite_without_force(vault: Vault, tmp_path: Path) -> None:
    wanted = vault.patient_paths()[0]
    vault.ingest_one(pinnacle_tar(vault.root, tmp_path / "p.tar", [wanted]))
    destination = tmp_path / "pinnacle"
    vault.cli("restore", "--patient", wanted, "--to", str(destination), "--from-archive")
    patient_file = destination / wanted / "Patient"
    patient_file.write_bytes(b"edited since the restore\n")
    (destination / wanted / "Plan_0" / "plan.roi").unlink()
    before = entries_of(destination)

    done = vault.cli("restore", "--patient", wanted, "--to", str(destination), "--from-archive", expect=4)
    assert "--force" in done.stderr
    assert entries_of(destination) == before
    assert patient_file.read_bytes() == b"edited since the restore\n"

    vault.cli("restore", "--patient", wanted, "--to", str(destination), "--from-archive", "--force")
    assert regular_files(destination / wanted) == regular_files(vault.root / wanted)


class _Counting:
    """A file object that counts what is read from it."""

    def __init__(self, raw, tally: dict[str, int]) -> None:
        self.raw, self.tally = raw, tally

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.tally["bytes"] += len(data)
        return data

    def __getattr__(self, name: str):
        return getattr(self.raw, name)

    def __enter__(self) -> _Counting:
        return self

    def __exit__(self, *exc: object) -> None:
        self.raw.close()


def test_one_patient_from_a_plain_tar_reads_only_its_members(vault: Vault, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    paths = vault.patient_paths()
    archive_file = pinnacle_tar(vault.root, tmp_path / "all.tar", paths)
    archive = vault.ingest_one(archive_file)
    sizes = {p: sum(len(data) for data, _m, _p in regular_files(vault.root / p).values()) for p in paths}
    wanted = min(paths, key=sizes.__getitem__)
    header = next(m.size for m in members_of(archive_file) if m.name == "Institution")

    store = vault.store
    tally = {"bytes": 0}
    opened: list[str] = []
    real_open = store.backend.open

    def counting_open(key: str):
        opened.append(key)
        return _Counting(real_open(key), tally)

    monkeypatch.setattr(store.backend, "open", counting_open)
    summary = restore_from_archive(store, wanted, tmp_path / "out", archive_id=archive["id"])
    assert regular_files(tmp_path / "out" / wanted) == regular_files(vault.root / wanted)
    assert summary.bytes == sizes[wanted] + (tmp_path / "out" / "Institution").stat().st_size

    total = archive_file.stat().st_size
    assert sizes[wanted] <= tally["bytes"] <= sizes[wanted] + header + 64 * 1024, (tally, sizes[wanted], total)
    assert tally["bytes"] < total / 3, (tally, total)
    assert set(opened) <= {f"archives/tars/{archive['id'][:2]}/{archive['id']}"}


# --- export ------------------------------------------------------------------------------------------------------

def _extract(tar: Path, into: Path) -> None:
    into.mkdir()
    gnu_tar("-xf", tar, "-C", into)


def _inspect(root: Path) -> list[dict]:
    return first_json(run_cli("inspect", str(root), "--json").stdout)["patients"]


def test_export_from_a_snapshot_gives_a_pinnacle_tar(vault: Vault, tmp_path: Path) -> None:
    vault.backup()
    wanted = vault.patient_paths()[1]
    identity = identity_of(vault.root / wanted)
    out = tmp_path / "export.tar"
    result = vault.cli_json("archive", "export", "--patient", str(identity["mrn"]), "--out", str(out))
    assert result["out"] == str(out) and out.stat().st_size == result["bytes"]
    assert members_of(out)[0].name == "Institution"

    _extract(out, tmp_path / "x")
    assert regular_files(tmp_path / "x" / wanted) == without_transient(regular_files(vault.root / wanted))
    assert listed_paths((tmp_path / "x" / "Institution").read_bytes()) == [wanted]
    found = _inspect(tmp_path / "x")
    assert [p["path"] for p in found] == [wanted]
    assert {k: found[0][k] for k in identity} == identity

    before = out.read_bytes()
    done = vault.cli("archive", "export", "--patient", wanted, "--out", str(out), expect=4)
    assert "--force" in done.stderr and out.read_bytes() == before
    vault.cli("archive", "export", "--patient", wanted, "--out", str(out), "--force")
    assert [m.name for m in members_of(out)] == [m.name for m in members_of(tmp_path / "export.tar")]


def test_export_from_an_archive_gives_a_pinnacle_tar(vault: Vault, tmp_path: Path) -> None:
    paths = vault.patient_paths()
    archive = vault.ingest_one(pinnacle_tar(vault.root, tmp_path / "old.tar.gz", paths[:3], gz=True))
    wanted = paths[2]
    identity = identity_of(vault.root / wanted)
    out = tmp_path / "for-a-colleague.tar"
    vault.cli("archive", "export", "--patient", str(identity["patient_id"]), "--archive", archive["id"][:8],
              "--out", str(out))
    assert members_of(out)[0].name == "Institution"
    _extract(out, tmp_path / "x")
    assert regular_files(tmp_path / "x" / wanted) == regular_files(vault.root / wanted)
    assert sorted(os.listdir(tmp_path / "x" / wanted.rsplit("/", 1)[0])) == [wanted.rsplit("/", 1)[1]]
    found = _inspect(tmp_path / "x")
    assert [p["path"] for p in found] == [wanted]
    assert {k: found[0][k] for k in identity} == identity

    done = vault.cli("archive", "export", "--patient", wanted, "--archive", archive["id"], "--out", str(out),
                     expect=4)
    assert "--force" in done.stderr


def test_export_into_a_missing_directory_is_an_input_error(vault: Vault, tmp_path: Path) -> None:
    vault.backup()
    done = vault.cli("archive", "export", "--patient", vault.patient_paths()[0], "--out",
                     str(tmp_path / "no-such-dir" / "p.tar"), expect=None)
    assert "internal error" not in done.stderr
    assert done.returncode == 4, done.stderr


def _flip_member_byte(vault: Vault, archive_id: str, member: str, archive_file: Path) -> None:
    """Bit rot in the stored tar: one byte of a member's data changed."""
    info = next(m for m in members_of(archive_file) if m.name == member)
    stored = vault.tar_path(archive_id)
    os.chmod(stored, 0o644)
    data = bytearray(stored.read_bytes())
    data[info.offset_data + info.size // 2] ^= 0x20
    stored.write_bytes(bytes(data))


def test_restore_from_a_damaged_stored_archive_names_the_damaged_file(vault: Vault, tmp_path: Path) -> None:
    wanted = vault.patient_paths()[0]
    archive_file = pinnacle_tar(vault.root, tmp_path / "p.tar", [wanted])
    archive = vault.ingest_one(archive_file)
    _flip_member_byte(vault, archive["id"], f"{wanted}/Plan_0/plan.Trial", archive_file)
    done = vault.cli("restore", "--patient", wanted, "--to", str(tmp_path / "out"), "--from-archive", expect=9)
    assert f"INCOMPLETE {wanted}" in done.stderr and "plan.Trial" in done.stderr
    assert not (tmp_path / "out" / wanted / "Plan_0" / "plan.Trial").exists()
    assert (tmp_path / "out" / wanted / "Patient").exists()  # the good files are restored
    assert vault.cli("check", "--read-data", expect=7)


@pytest.mark.parametrize("damage", ["archive-bit-flip", "object-same-size", "object-shorter"])
def test_export_from_damaged_data_fails_and_writes_nothing(vault: Vault, tmp_path: Path, damage: str) -> None:
    wanted = vault.patient_paths()[0]
    options: list[str] = []
    if damage == "archive-bit-flip":
        archive_file = pinnacle_tar(vault.root, tmp_path / "p.tar", [wanted])
        archive = vault.ingest_one(archive_file)
        _flip_member_byte(vault, archive["id"], f"{wanted}/Plan_0/plan.Trial", archive_file)
        options = ["--archive", archive["id"]]
    else:
        vault.backup()
        original = (vault.root / wanted / "Plan_0" / "plan.Trial").read_bytes()
        wrong = original.replace(b"Trial", b"TRIAL") if damage == "object-same-size" else b"not the plan any more"
        storekit.substitute(vault.store_path, data_key(hashlib.sha256(original).hexdigest()),
                            zstandard.ZstdCompressor().compress(wrong))
    out = tmp_path / "export.tar"
    vault.cli("archive", "export", "--patient", wanted, "--out", str(out), *options, expect=8)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if "rtvault-partial" in p.name] == []
