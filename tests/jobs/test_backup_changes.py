"""`rtvault backup` and changes: what an incremental backup reads again and what it leaves alone, and files that
change or vanish while the backup reads them. Each test works on its own copy of a small generated database (see
conftest.py) and checks the summary counters, the snapshot manifests in `store/snapshots/*.json`, the patient trees.
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

import rtvault.jobs.backup as backup_module
from kit.files import is_transient
from kit.jobs import sha256, stored_files
from rtvault.demo import evolve_database
from rtvault.jobs.source import list_source

# --- incremental detection --------------------------------------------------------------------------------

def test_second_backup_without_change_reads_nothing(vault) -> None:
    first = vault.backup()
    second = vault.backup()

    assert second.bytes_read == 0
    assert second.bytes_added == 0
    assert second.files_new == second.files_changed == 0
    assert second.files_unchanged == first.files_new
    first_manifest, second_manifest = vault.manifests()
    assert second_manifest.id != first_manifest.id
    assert [p.tree for p in second_manifest.patients] == [p.tree for p in first_manifest.patients]
    assert second_manifest.other == first_manifest.other


def _rewrite_same_size(path: Path) -> bytes:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    return bytes(data)


def test_one_file_rewritten_with_the_same_size_is_the_only_file_read_again(vault) -> None:
    first = vault.backup()
    patient = vault.patients()[2]
    target = patient / "Plan_0" / "plan.PlanInfo"
    old_mtime = target.stat().st_mtime_ns
    data = _rewrite_same_size(target)
    os.utime(target, ns=(old_mtime + 10**9, old_mtime + 10**9))

    second = vault.backup()

    assert (second.files_changed, second.files_new) == (1, 0)
    assert second.files_unchanged == first.files_new - 1
    assert second.bytes_read == len(data)
    record = next(f for f in vault.tree_of(vault.rel(patient)).files if f.name == "Plan_0/plan.PlanInfo")
    assert record.hash == sha256(data)
    assert record.mtime_ns == old_mtime + 10**9


def test_content_change_whose_mtime_was_put_back_is_still_detected(vault) -> None:
    """Some tools restore the old mtime after an edit: size and mtime are equal, the ctime is not."""
    vault.backup()
    patient = vault.patients()[0]
    target = patient / "Patient"
    st = target.stat()
    time.sleep(0.05)  # a ctime distinct from the copy's, even with a coarse file system clock
    data = _rewrite_same_size(target)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert target.stat().st_mtime_ns == st.st_mtime_ns

    second = vault.backup()

    assert second.files_changed == 1
    assert second.bytes_read == len(data)
    record = next(f for f in vault.tree_of(vault.rel(patient)).files if f.name == "Patient")
    assert record.hash == sha256(data)


def test_a_copied_patient_adds_no_data(vault) -> None:
    """Content already stored is not stored again: a patient copied to a new directory costs only its tree."""
    vault.backup()
    original = vault.patients()[0]
    twin = original.parent / "Patient_99999"
    shutil.copytree(original, twin)
    twin_files = {rel: data for rel, (data, _, _) in vault.source_files().items() if rel.startswith(vault.rel(twin))}

    summary = vault.backup()

    assert summary.files_new == len(twin_files) and summary.files_changed == 0
    assert summary.bytes_read == sum(len(data) for data in twin_files.values())
    assert summary.bytes_added == 0
    assert summary.patients == len(vault.patients()) == 7


def test_patient_with_no_changed_file_keeps_its_tree(vault) -> None:
    vault.backup()
    changed = vault.patients()[1]
    (changed / "Plan_0" / "plan.PlanInfo").write_bytes(b"// edited\n")

    vault.backup()

    first, second = vault.manifests()
    before = {p.path: p.tree for p in first.patients}
    after = {p.path: p.tree for p in second.patients}
    assert before.keys() == after.keys()
    assert after.pop(vault.rel(changed)) != before.pop(vault.rel(changed))
    assert after == before


def test_an_evolved_day_is_backed_up_incrementally(vault) -> None:
    vault.backup()
    day = evolve_database(vault.root, 1)
    assert day.edited and day.added and day.deleted_patients and day.added_patients
    db_size = sum(len(data) for data, _, _ in vault.source_files().values())

    summary = vault.backup()

    assert summary.files_changed > 0
    assert summary.files_new > 0
    assert summary.files_unchanged > summary.files_changed + summary.files_new
    assert 0 < summary.bytes_added < db_size / 10
    assert summary.bytes_read < db_size / 2
    first, second = vault.manifests()
    before = {p.path: p.tree for p in first.patients}
    after = {p.path: p.tree for p in second.patients}
    touched = {"/".join(name.split("/")[:3]) for name in day.edited + day.added + day.deleted}
    untouched = [path for path in before.keys() & after.keys() if path not in touched]
    assert untouched, "the day touched every patient: the test database is too small"
    for path in untouched:
        assert after[path] == before[path], path
    for path in before.keys() & after.keys() & touched:
        if any(not is_transient(name) for name in day.edited if name.startswith(path + "/")):
            assert after[path] != before[path], path
    assert set(after) == {vault.rel(p) for p in vault.patients()}
    stored = stored_files(vault)
    assert set(stored) == set(vault.source_files())
    for rel, (data, _, _) in vault.source_files().items():
        assert stored[rel].hash == sha256(data), rel


# --- files that change or vanish while the backup runs ----------------------------------------------------

def test_a_large_file_rewritten_during_the_backup_is_stored_whole_or_flagged(vault) -> None:
    """A 20 MB file rewritten in place in a loop: the snapshot holds one complete version, or says it may not."""
    patient = vault.patients()[0]
    target = patient / "Plan_0" / "plan.Trial.binary.999"
    versions = [os.urandom(20 << 20) for _ in range(3)]
    complete = {sha256(v) for v in versions}
    target.write_bytes(versions[0])
    stop = threading.Event()
    rewrites = []

    def rewrite() -> None:
        base = 1_700_000_000 * 10**9
        for i in itertools.count(1):
            if stop.is_set():
                return
            with open(target, "r+b") as out:
                out.write(versions[i % len(versions)])
            os.utime(target, ns=(base + i * 10**6, base + i * 10**6))
            rewrites.append(i)
            time.sleep(0.002 * (i % 3))

    writer = threading.Thread(target=rewrite, daemon=True)
    writer.start()
    try:
        summary = vault.backup()
    finally:
        stop.set()
        writer.join(10)
    assert rewrites, "the writer never ran during the backup"

    assert vault.manifests()[-1].id == summary.snapshot
    record = next(f for f in vault.tree_of(vault.rel(patient)).files if f.name == "Plan_0/plan.Trial.binary.999")
    warned = [w for w in summary.warnings if w.file.endswith("plan.Trial.binary.999")]
    if record.hash not in complete:
        assert record.inconsistent is True
        assert warned and any("changing" in w.message or "inconsistent" in w.message for w in warned)
    if record.inconsistent:
        assert warned
    else:
        assert record.hash in complete
    # every other file of the snapshot is intact
    stored = stored_files(vault)
    for rel, (data, _, _) in vault.source_files().items():
        if not rel.endswith("plan.Trial.binary.999"):
            assert stored[rel].hash == sha256(data), rel


def _meddle_with(monkeypatch: pytest.MonkeyPatch, target: Path, times: int) -> list[bytes]:
    """Make `target` change (other bytes, other mtime) right after each of its next `times` reads."""
    real = backup_module.store_small
    original = target.read_bytes() + b"// unique to this test\n"
    target.write_bytes(original)
    written: list[bytes] = []

    def store_small(backend, data, shuffled):
        result = real(backend, data, shuffled)
        if data in (original, *written) and len(written) < times:
            version = original + f"// edit {len(written)}\n".encode()
            target.write_bytes(version)
            stamp = 1_700_000_000 * 10**9 + len(written) * 10**9
            os.utime(target, ns=(stamp, stamp))
            written.append(version)
        return result

    monkeypatch.setattr(backup_module, "store_small", store_small)
    return written


def test_a_file_that_keeps_changing_is_flagged_inconsistent(vault, monkeypatch: pytest.MonkeyPatch) -> None:
    patient = vault.patients()[0]
    target = patient / "Plan_0" / "plan.PlanInfo"
    _meddle_with(monkeypatch, target, times=backup_module.READ_ATTEMPTS)

    summary = vault.backup()

    warned = [w for w in summary.warnings if w.file == f"{vault.rel(patient)}/Plan_0/plan.PlanInfo"]
    assert len(warned) == 1 and "changing" in warned[0].message and "inconsistent" in warned[0].message
    record = next(f for f in vault.tree_of(vault.rel(patient)).files if f.name == "Plan_0/plan.PlanInfo")
    assert record.inconsistent is True
    assert summary.snapshot == vault.manifests()[-1].id
    assert list(vault.manifests()[-1].warnings) == summary.warnings


def test_a_file_that_changed_once_while_read_is_read_again(vault, monkeypatch: pytest.MonkeyPatch) -> None:
    patient = vault.patients()[0]
    target = patient / "Plan_0" / "plan.PlanInfo"
    written = _meddle_with(monkeypatch, target, times=1)

    summary = vault.backup()

    assert len(written) == 1
    assert not [w for w in summary.warnings if "plan.PlanInfo" in w.file]
    record = next(f for f in vault.tree_of(vault.rel(patient)).files if f.name == "Plan_0/plan.PlanInfo")
    assert record.hash == sha256(written[0]) == sha256(target.read_bytes())
    assert not record.inconsistent


def test_a_file_stored_as_inconsistent_is_read_again_by_the_next_backup(vault, monkeypatch) -> None:
    patient = vault.patients()[0]
    target = patient / "Plan_0" / "plan.PlanInfo"
    _meddle_with(monkeypatch, target, times=backup_module.READ_ATTEMPTS)
    vault.backup()
    monkeypatch.undo()  # the file no longer changes

    second = vault.backup()

    record = next(f for f in vault.tree_of(vault.rel(patient)).files if f.name == "Plan_0/plan.PlanInfo")
    assert record.hash == sha256(target.read_bytes())
    assert not record.inconsistent
    assert second.files_changed == 1


def test_a_file_deleted_between_listing_and_reading_is_a_vanished_warning(vault, monkeypatch) -> None:
    patient = vault.patients()[3]
    doomed = patient / "ImageSet_0.ImageInfo"
    rel = f"{vault.rel(patient)}/ImageSet_0.ImageInfo"

    def list_then_delete(root, exclude):
        listing = list_source(root, exclude)
        doomed.unlink()
        return listing

    monkeypatch.setattr(backup_module, "list_source", list_then_delete)
    summary = vault.backup()

    assert [w.file for w in summary.warnings if "vanished" in w.message] == [rel]
    assert rel not in stored_files(vault)
    assert summary.patients == len(vault.patients())
    assert set(stored_files(vault)) == set(vault.source_files())
