"""`rtvault backup`: what ends up in the store, what is skipped, and what is refused. Each test works on its own
copy of a small generated database (see conftest.py) and checks what an operator would check: the summary counters,
the snapshot manifests in `store/snapshots/*.json`, the patient trees. What is read again: test_backup_changes.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kit.files import is_transient
from kit.jobs import sha256, stored_files
from rtvault.errors import SourceRefused

# --- what a first backup records -------------------------------------------------------------------------

def test_first_backup_records_every_non_transient_file_with_its_hash(vault) -> None:
    source = vault.source_files()
    everything = vault.source_files(transient=True)

    summary = vault.backup()

    assert summary.patients == len(vault.patients()) == 6
    assert summary.files_new == len(source)
    assert summary.files_changed == summary.files_unchanged == 0
    assert summary.files_skipped == len(everything) - len(source) > 0
    assert summary.bytes_read == sum(len(data) for data, _, _ in source.values())
    assert summary.warnings == []
    stored = stored_files(vault)
    assert set(stored) == set(source)
    for rel, (data, mtime_ns, mode) in source.items():
        assert stored[rel].hash == sha256(data), rel
        assert (stored[rel].size, stored[rel].mtime_ns, stored[rel].mode) == (len(data), mtime_ns, mode)
    manifest = vault.manifests()[-1]
    assert manifest.id == summary.snapshot
    assert [p.path for p in manifest.patients] == [vault.rel(p) for p in vault.patients()]
    assert all(p.mrn and p.patient_id for p in manifest.patients)
    assert "Institution_1/Institution" in stored


def test_no_staged_file_and_no_lock_is_left_behind(vault) -> None:
    vault.backup()
    assert list((vault.store_path / "tmp").iterdir()) == []
    assert list((vault.store_path / "locks").iterdir()) == []


# --- what is skipped --------------------------------------------------------------------------------------

def test_transient_files_are_in_no_tree(vault) -> None:
    transient = sorted(set(vault.source_files(transient=True)) - set(vault.source_files()))
    names = {rel.rsplit("/", 1)[-1] for rel in transient}
    assert any(n.startswith(".auto.plan") for n in names) and any(n.endswith("~") for n in names)
    assert any(n.endswith(".ErrorLog") for n in names) and any(n.endswith(".Transcript") for n in names)

    summary = vault.backup()

    stored = stored_files(vault)
    assert not set(transient) & set(stored)
    assert not [rel for rel in stored if is_transient(rel)]
    assert summary.files_skipped == len(transient)


def test_a_custom_exclude_is_honoured(vault) -> None:
    vault.configure(exclude=[".auto.plan*", "*.ErrorLog", "*.Transcript", "*~", "plan.Points", "Scratch*"])
    (vault.patients()[0] / "Scratch").mkdir()
    (vault.patients()[0] / "Scratch" / "notes.txt").write_bytes(b"not wanted")
    points = [rel for rel in vault.source_files() if rel.endswith("/plan.Points")]
    assert points

    vault.backup()

    stored = stored_files(vault)
    assert not [rel for rel in stored if rel.endswith("plan.Points") or "Scratch" in rel]
    assert not [rel for rel in stored if is_transient(rel)]
    assert all(d.name != "Scratch" for d in vault.tree_of(vault.rel(vault.patients()[0])).dirs)
    assert set(stored) == set(vault.source_files()) - set(points) - {
        f"{vault.rel(vault.patients()[0])}/Scratch/notes.txt"}


def test_a_symbolic_link_in_the_source_is_not_followed(vault, tmp_path: Path) -> None:
    secret = tmp_path / "outside.txt"
    secret.write_bytes(b"not a Pinnacle file, outside the database")
    patient = vault.patients()[0]
    (patient / "Plan_0" / "linked").symlink_to(secret)

    summary = vault.backup()

    assert any("linked" in w.file and "not a regular file" in w.message for w in summary.warnings)
    stored = stored_files(vault)
    assert f"{vault.rel(patient)}/Plan_0/linked" not in stored
    assert sha256(secret.read_bytes()) not in {r.hash for r in stored.values()}


# --- refusing the dangerous guess -------------------------------------------------------------------------

def test_a_missing_source_is_refused(vault) -> None:
    shutil.rmtree(vault.root)
    done = vault.cli("backup", expect=5)
    assert str(vault.root) in done.stderr and "does not exist" in done.stderr
    assert vault.snapshot_files() == []


def test_an_empty_source_is_refused(vault) -> None:
    shutil.rmtree(vault.root)
    vault.root.mkdir()
    done = vault.cli("backup", "--allow-shrink", expect=5)
    assert "empty" in done.stderr
    assert vault.snapshot_files() == []


@pytest.mark.parametrize("leftover", ["lost+found", "Institution_1"])
def test_a_source_with_no_patient_is_refused_even_with_allow_shrink(vault, leftover: str) -> None:
    """An unmounted share shows an empty mount point (maybe lost+found) or a database without patients."""
    vault.backup()
    before = vault.snapshot_files()
    for patient in vault.patients():
        shutil.rmtree(patient)
    if leftover == "lost+found":
        shutil.rmtree(vault.root / "Institution_1")
        (vault.root / "lost+found").mkdir()

    done = vault.cli("backup", "--allow-shrink", expect=5)
    assert "no patient" in done.stderr
    for allow in (False, True):
        with pytest.raises(SourceRefused, match="no patient"):
            vault.backup(allow_shrink=allow)
    assert vault.snapshot_files() == before


def test_a_source_that_shrank_too_much_is_refused_unless_allowed(vault) -> None:
    vault.backup()
    before = vault.snapshot_files()
    for patient in vault.patients()[:2]:  # 2 of 6 is more than the default max_shrink of 20 %
        shutil.rmtree(patient)

    done = vault.cli("backup", "--json", expect=5)
    assert "--allow-shrink" in done.stderr and "4 patients" in done.stderr and "6" in done.stderr
    assert vault.snapshot_files() == before

    summary = vault.cli_json("backup", "--allow-shrink")
    assert summary["patients"] == 4
    assert len(vault.snapshot_files()) == 2
    assert len(vault.manifests()[-1].patients) == 4


def test_max_shrink_is_read_from_the_configuration(vault) -> None:
    vault.configure(max_shrink=0.5)
    vault.backup()
    patients = vault.patients()
    for patient in patients[:3]:  # exactly half: allowed
        shutil.rmtree(patient)
    assert vault.backup().patients == 3
    shutil.rmtree(patients[3])
    shutil.rmtree(patients[4])  # 2 of 3 (67 %): refused
    with pytest.raises(SourceRefused, match="allow-shrink"):
        vault.backup()
    assert len(vault.snapshot_files()) == 2


def test_a_shrink_within_the_limit_is_backed_up(vault) -> None:
    vault.backup()
    shutil.rmtree(vault.patients()[0])  # 1 of 6, under 20 %
    assert vault.backup().patients == 5


def test_every_snapshot_holds_patients(vault) -> None:
    vault.backup()
    for patient in vault.patients():
        shutil.rmtree(patient)
    for allow in (False, True):
        with pytest.raises(SourceRefused):
            vault.backup(allow_shrink=allow)
    assert all(m.patients for m in vault.manifests())
    assert len(vault.manifests()) == 1
