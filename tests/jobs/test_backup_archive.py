"""The backup's archive step, in-process: the snapshot is saved first, then the patients gone from the source
are archived; one that cannot be archived is named, stays awaiting its archive, and stops no other."""

from __future__ import annotations

import shutil
from datetime import date

from kit import store as storekit
from rtvault.archive import records
from rtvault.copies.checks import Checker
from rtvault.jobs.archives import delete_archive, pending
from rtvault.store.objects import data_key


def test_one_archive_that_fails_stops_no_other_and_the_next_backup_archives_it(vault) -> None:
    first = vault.backup()
    gone = vault.patients()[:2]
    broken, whole = vault.rel(gone[0]), vault.rel(gone[1])
    damaged = data_key(vault.tree_of(broken).files[0].hash)
    kept = storekit.read(vault.store_path, damaged)
    storekit.lose(vault.store_path, damaged)  # an object of the first patient lost: its archive cannot be written
    for patient in gone:
        shutil.rmtree(patient)

    summary = vault.backup(allow_shrink=True)

    latest = vault.manifests()[-1]
    assert latest.id == summary.snapshot and summary.patients == 4  # the snapshot is saved all the same
    assert summary.not_archived == [broken] and len(summary.archived) == 1
    assert [p.path for r in records.summaries(vault.store) for p in r.patients] == [whole]
    warning = next(w for w in summary.warnings if w.file == broken)
    assert "not archived" in warning.message and first.snapshot in warning.message, warning
    assert [(w.path, w.snapshot) for w in pending(vault.store)] == [(broken, first.snapshot)]
    assert not {"archived", "not_archived", "archive_s"} & set(latest.summary)  # known after the manifest

    store = vault.store
    store.backend.put(damaged, kept)  # repaired (from another store's copy), as `rtvault repair` writes it
    store.backend.barrier()
    again = vault.backup()
    assert again.not_archived == [] and len(again.archived) == 1
    assert pending(vault.store) == []
    assert sorted(p.path for r in records.summaries(vault.store) for p in r.patients) == sorted([broken, whole])


def test_a_destroyed_archive_is_neither_built_again_nor_awaited_by_retention(vault) -> None:
    vault.backup()
    gone = vault.patients()[0]
    shutil.rmtree(gone)
    [archive_id] = vault.backup().archived
    delete_archive(vault.store, archive_id, date(2200, 1, 1))  # its keep-until long over: destroyed on purpose
    assert pending(vault.store) == []
    assert vault.backup().archived == []
    assert records.summaries(vault.store) == []
    checker = Checker(vault.store, "now")  # rolling verification knows the record the deletion leaves
    for key in vault.store.backend.list("archives/"):
        checker.check(key)
    assert checker.findings == {}
