"""`rtvault restore`: one patient or the whole database back, byte-identical, and never anything written where
it should not be (outside --to, over existing files, from a damaged or hostile store)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kit import store as storekit
from kit.files import files_of, is_transient
from kit.vault import History
from rtvault.errors import ExitCode, InputError, StoreError
from rtvault.jobs.restore import RestoreIncomplete, restore_all, restore_patient
from rtvault.store.formats import Manifest, Tree
from rtvault.store.objects import data_key
from rtvault.store.repository import new_snapshot_id


def dirs_of(root: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for current, dirs, _files in os.walk(root):
        for name in dirs:
            st = Path(current, name).lstat()
            found[Path(current, name).relative_to(root).as_posix()] = (st.st_mode & 0o7777, st.st_mtime_ns)
    return found


def under(files: dict, prefix: str) -> dict:
    return {rel: value for rel, value in files.items() if rel.startswith(prefix + "/")}


def everything_under(path: Path) -> list[str]:
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*")) if path.exists() else []


# --- faithful restores ------------------------------------------------------------------------------------

def test_each_patient_restores_byte_identical_with_mtimes_and_modes(backed_up, tmp_path: Path) -> None:
    source = backed_up.source_files()
    source_dirs = dirs_of(backed_up.root)
    for patient in backed_up.patients():
        rel = backed_up.rel(patient)
        dest = tmp_path / "restored" / patient.name
        summary = restore_patient(backed_up.store, rel, dest)

        assert summary.patients == [rel]
        assert summary.files == len(under(source, rel))
        assert files_of(dest) == under(source, rel)
        assert files_of(dest, transient=True) == under(source, rel), "transient files came back"
        restored_dirs = dirs_of(dest)
        for name, value in source_dirs.items():
            if name == rel or name.startswith(rel + "/"):
                assert restored_dirs[name] == value, name
    old = next(p for p in backed_up.patients() if (backed_up.root.parent / "day-1" / backed_up.rel(p)).exists())
    restored = tmp_path / "restored" / old.name / backed_up.rel(old)
    assert (restored / "Plan_0" / "plan.Points").stat().st_mode & 0o777 == 0o600
    assert (restored / "ImageSet_0.header").stat().st_mode & 0o777 == 0o640
    assert (restored / "Plan_0").stat().st_mode & 0o777 == 0o750


@pytest.mark.parametrize("kind", ["mrn", "patient_id", "path"])
def test_a_patient_is_found_by_mrn_patient_id_or_path(backed_up, tmp_path: Path, kind: str) -> None:
    entry = backed_up.manifests()[-1].patients[2]
    key = str(getattr(entry, kind))
    dest = tmp_path / "out"

    summary = backed_up.cli_json("restore", "--patient", key, "--to", str(dest))

    assert summary["patients"] == [entry.path]
    assert summary["snapshot"] == backed_up.manifests()[-1].id
    assert files_of(dest) == under(backed_up.source_files(), entry.path)


def _edited_patient(history: History) -> str:
    edited = [name for name in history.day.edited if "/Patient_" in name and not is_transient(name)]
    assert edited
    return "/".join(edited[0].split("/")[:3])


def test_at_picks_the_version_as_of_that_time(history: History, tmp_path: Path) -> None:
    vault = history.vault
    path = _edited_patient(history)
    mrn = vault.entry_of(path).mrn
    old = under(files_of(history.day_1), path)
    new = under(vault.source_files(), path)
    assert old != new
    first, second = (m.id for m in vault.manifests())

    summary = vault.cli_json("restore", "--patient", mrn, "--to", str(tmp_path / "a"), "--at", "2026-01-06T09:00Z")
    assert summary["snapshot"] == first
    assert files_of(tmp_path / "a") == old
    summary = vault.cli_json("restore", "--patient", mrn, "--to", str(tmp_path / "b"), "--at", "2026-01-06T18:00Z")
    assert summary["snapshot"] == second
    assert files_of(tmp_path / "b") == new
    for i, (at, snapshot) in enumerate([("2026-01-05T18:00:00+00:00", first), ("2026-01-06T18:59+01:00", first),
                                        ("2026-01-06T19:00+01:00", second), ("2027-01-01", second)]):
        assert restore_patient(vault.store, mrn, tmp_path / f"at-{i}", at=at).snapshot == snapshot, at

    too_early = vault.cli("restore", "--patient", mrn, "--to", str(tmp_path / "early"),
                          "--at", "2026-01-05T17:00:00Z", expect=ExitCode.STORE)
    assert "no version" in too_early.stderr
    assert not (tmp_path / "early").exists()
    with pytest.raises(InputError, match="yesterday"):  # what was typed is wrong, not the store
        restore_patient(vault.store, mrn, tmp_path / "bad", at="yesterday")
    assert not (tmp_path / "bad").exists()


def test_snapshot_prefix_picks_that_snapshot(history: History, tmp_path: Path) -> None:
    vault = history.vault
    path = _edited_patient(history)
    first, second = (m.id for m in vault.manifests())
    assert first.startswith("20260105T180000Z") and second.startswith("20260106T180000Z")

    summary = vault.cli_json("restore", "--patient", path, "--to", str(tmp_path / "a"), "--snapshot", "20260105")
    assert summary["snapshot"] == first
    assert files_of(tmp_path / "a") == under(files_of(history.day_1), path)

    with pytest.raises(StoreError, match="2026"):
        restore_patient(vault.store, path, tmp_path / "b", snapshot="2026")
    assert not (tmp_path / "b").exists()


def test_a_deleted_patient_is_restored_from_the_last_snapshot_holding_it(history: History, tmp_path: Path) -> None:
    vault = history.vault
    [gone] = history.day.deleted_patients
    assert not (vault.root / gone).exists()
    first, second = vault.manifests()
    assert gone in [p.path for p in first.patients] and gone not in [p.path for p in second.patients]
    mrn = vault.entry_of(gone, first).mrn

    summary = vault.cli_json("restore", "--patient", mrn, "--to", str(tmp_path / "back"))

    assert summary["snapshot"] == first.id
    assert files_of(tmp_path / "back") == under(files_of(history.day_1), gone)


def test_restore_all_gives_back_the_whole_database(history: History, tmp_path: Path) -> None:
    vault = history.vault
    dest = tmp_path / "new-server"
    summary = vault.cli_json("restore", "--all", "--to", str(dest))

    assert summary["snapshot"] == vault.manifests()[-1].id
    assert len(summary["patients"]) == len(vault.patients())
    restored = files_of(dest, transient=True)
    assert restored == vault.source_files()
    assert restored["Institution_1/Institution"] == vault.source_files()["Institution_1/Institution"]
    assert dirs_of(dest) == dirs_of(vault.root)


def test_restore_all_of_an_older_snapshot(history: History, tmp_path: Path) -> None:
    dest = tmp_path / "as-of-day-1"
    restore_all(history.vault.store, dest, snapshot="20260105")
    assert files_of(dest, transient=True) == files_of(history.day_1)
    assert dirs_of(dest) == dirs_of(history.day_1)


def test_a_file_name_that_is_not_utf8_comes_back(vault, tmp_path: Path) -> None:
    patient = vault.patients()[0]
    odd = os.fsdecode(b"Note_\xe9t\xe9.txt")
    (patient / odd).write_bytes(b"latin-1 name")
    vault.backup()

    restore_patient(vault.store, vault.rel(patient), tmp_path / "out")

    restored = tmp_path / "out" / vault.rel(patient)
    assert os.fsencode(odd) in os.listdir(os.fsencode(restored))
    assert (restored / odd).read_bytes() == b"latin-1 name"


# --- refusals ---------------------------------------------------------------------------------------------

def test_restore_refuses_to_overwrite_unless_forced(backed_up, tmp_path: Path) -> None:
    entry = backed_up.manifests()[-1].patients[1]
    dest = tmp_path / "busy"
    sentinel = dest / entry.path / "Patient"
    sentinel.parent.mkdir(parents=True)
    sentinel.write_bytes(b"the operator's own file")

    done = backed_up.cli("restore", "--patient", entry.mrn, "--to", str(dest), expect=ExitCode.INPUT)

    assert "--force" in done.stderr and "already exist" in done.stderr
    assert sentinel.read_bytes() == b"the operator's own file"
    assert everything_under(dest) == ["Institution_1", "Institution_1/Mount_0", entry.path, f"{entry.path}/Patient"]

    backed_up.cli("restore", "--patient", entry.mrn, "--to", str(dest), "--force")
    assert files_of(dest) == under(backed_up.source_files(), entry.path)


def test_restore_all_refuses_to_overwrite_an_existing_database(backed_up, tmp_path: Path) -> None:
    dest = tmp_path / "live"
    shutil.copytree(backed_up.root, dest)
    institution = dest / "Institution_1" / "Institution"
    institution.write_bytes(b"newer than the backup")

    backed_up.cli("restore", "--all", "--to", str(dest), expect=ExitCode.INPUT)

    assert institution.read_bytes() == b"newer than the backup"


def test_an_unknown_patient_is_a_clear_error(backed_up, tmp_path: Path) -> None:
    done = backed_up.cli("restore", "--patient", "0000000000", "--to", str(tmp_path / "x"), expect=ExitCode.STORE)
    assert "0000000000" in done.stderr and "no snapshot" in done.stderr
    assert not (tmp_path / "x").exists()


def test_a_key_naming_two_patients_is_a_clear_error(vault, tmp_path: Path) -> None:
    first, second = vault.patients()[:2]
    mrn = re.search(rb'MedicalRecordNumber = "([^"]*)";', (first / "Patient").read_bytes()).group(1)
    data = (second / "Patient").read_bytes()
    (second / "Patient").write_bytes(re.sub(rb'MedicalRecordNumber = "[^"]*";',
                                            b'MedicalRecordNumber = "' + mrn + b'";', data))
    vault.backup()

    done = vault.cli("restore", "--patient", mrn.decode(), "--to", str(tmp_path / "x"), expect=ExitCode.STORE)

    assert "2 different patients" in done.stderr
    assert vault.rel(first) in done.stderr and vault.rel(second) in done.stderr
    assert not (tmp_path / "x").exists()
    vault.cli("restore", "--patient", vault.rel(second), "--to", str(tmp_path / "y"))
    assert files_of(tmp_path / "y") == under(vault.source_files(), vault.rel(second))


# --- hostile stores and destinations ----------------------------------------------------------------------

def craft_snapshot(vault, path: str, files: list[dict], dirs: list[dict] | None = None) -> Manifest:
    """A snapshot, newest of the store, holding one patient whose tree is made by hand (as JSON: what a
    tampered store could hold)."""
    store = vault.store
    latest = store.manifests()[-1]
    tree = store.put_tree(Tree.from_json({"files": files, "dirs": dirs if dirs is not None else []}))
    when = datetime.now(UTC) + timedelta(days=1 + len(store.manifests()))
    patient = replace(latest.patients[0], path=path, tree=tree, mrn="666", patient_id=666)
    return store.save_snapshot(replace(latest, id=new_snapshot_id(when), time=when.isoformat().replace("+00:00", "Z"),
                                       patients=(patient,)))


def a_file_record(vault) -> dict:
    """A real file entry of the store, as the JSON a tampered tree would be made of."""
    tree = vault.tree_of(vault.manifests()[-1].patients[0].path)
    return next(f for f in tree.files if f.name == "Patient").to_json()


def _journalled(path: str) -> bool:
    """Where a command line action is recorded: the stores' journal and the catalog."""
    return "/journal" in f"/{path}" or path.startswith("rtvault-catalog.sqlite")


@pytest.mark.parametrize(("path", "name", "dir_name"), [
    ("../../escape", "Patient", None),
    ("/tmp/rtvault-escape-test", "Patient", None),
    ("Institution_1/Mount_0/Patient_666", "../../../../../x", None),
    ("Institution_1/Mount_0/Patient_666", "/tmp/rtvault-escape-test-x", None),
    ("Institution_1/Mount_0/Patient_666", "Plan_0//plan.Trial", None),
    ("Institution_1/Mount_0/Patient_666", "Patient", "../../../../../d"),
])
def test_a_tampered_store_never_writes_outside_the_destination(own_store, tmp_path: Path, path: str, name: str,
                                                               dir_name: str | None) -> None:
    dirs = [{"name": dir_name, "mode": 0o755, "mtime_ns": 0}] if dir_name else []
    craft_snapshot(own_store, path, [{**a_file_record(own_store), "name": name}], dirs)
    room = tmp_path / "room"
    dest = room / "a" / "b" / "dest"
    room.mkdir()
    before = everything_under(tmp_path)

    done = own_store.cli("restore", "--patient", "666", "--to", str(dest), expect=ExitCode.STORE)
    assert "unsafe name" in done.stderr, done.stderr
    after = everything_under(tmp_path)  # the refused restore is journalled (the store's journal, the catalog)
    assert [p for p in after if not _journalled(p)] == [p for p in before if not _journalled(p)]
    before = after
    with pytest.raises(RestoreIncomplete) as raised:  # the hostile patient is not restored, the root files are
        restore_all(own_store.store, dest)

    assert [f["patient"] for f in raised.value.summary.failed] == [path]
    assert "unsafe name" in raised.value.summary.failed[0]["reason"]
    written = set(everything_under(tmp_path)) - set(before)
    assert written and all(p.startswith("room/a/b/dest") or "room/a/b/dest".startswith(p + "/") for p in written)
    assert not [p for p in written if "Patient_666" in p or "escape" in p or p.endswith("/d")]
    assert not Path("/tmp/rtvault-escape-test").exists() and not Path("/tmp/rtvault-escape-test-x").exists()


@pytest.mark.parametrize("names", [[".", "Patient"], ["Plan_0", "Plan_0/plan.Trial"]])
def test_a_tree_whose_names_collide_is_refused_as_a_damaged_store(own_store, tmp_path: Path,
                                                                  names: list[str]) -> None:
    record = a_file_record(own_store)
    craft_snapshot(own_store, "Institution_1/Mount_0/Patient_666", [{**record, "name": n} for n in names])

    done = own_store.cli("restore", "--patient", "666", "--to", str(tmp_path / "dest"), expect=None)

    assert done.returncode == ExitCode.STORE, done.stderr


def _symlinked_destination(tmp_path: Path) -> tuple[Path, Path]:
    dest, elsewhere = tmp_path / "dest", tmp_path / "elsewhere"
    dest.mkdir()
    elsewhere.mkdir()
    (dest / "Institution_1").symlink_to(elsewhere, target_is_directory=True)
    return dest, elsewhere


def test_a_destination_with_a_symlinked_parent_is_refused(backed_up, tmp_path: Path) -> None:
    dest, elsewhere = _symlinked_destination(tmp_path)
    entry = backed_up.manifests()[-1].patients[0]

    done = backed_up.cli("restore", "--patient", entry.mrn, "--to", str(dest), expect=ExitCode.INPUT)

    assert "symbolic link" in done.stderr
    assert [p for p in elsewhere.rglob("*") if not p.is_dir()] == []
    assert os.path.islink(dest / "Institution_1")


def test_a_destination_with_a_symlinked_parent_gets_nothing_written_through_it(backed_up, tmp_path: Path) -> None:
    dest, elsewhere = _symlinked_destination(tmp_path)
    with pytest.raises(InputError, match="symbolic link"):  # the destination's fault, not the store's
        restore_patient(backed_up.store, backed_up.manifests()[-1].patients[0].path, dest)
    assert everything_under(elsewhere) == []


def test_a_symlink_at_a_file_name_is_not_followed_even_with_force(backed_up, tmp_path: Path) -> None:
    entry = backed_up.manifests()[-1].patients[0]
    outside = tmp_path / "precious.txt"
    outside.write_bytes(b"precious")
    trap = tmp_path / "dest" / entry.path / "Patient"
    trap.parent.mkdir(parents=True)
    trap.symlink_to(outside)

    done = backed_up.cli("restore", "--patient", entry.path, "--to", str(tmp_path / "dest"), "--force",
                         expect=ExitCode.INPUT)

    assert "link" in done.stderr
    assert outside.read_bytes() == b"precious"
    assert os.path.islink(trap)
    assert not list((tmp_path / "dest").rglob("*.rtvault-partial"))


def test_a_symlink_at_the_temporary_name_is_not_followed(backed_up, tmp_path: Path) -> None:
    entry = backed_up.manifests()[-1].patients[0]
    outside = tmp_path / "precious.txt"
    outside.write_bytes(b"precious")
    patient = tmp_path / "dest" / entry.path
    patient.mkdir(parents=True)
    (patient / ".Patient.rtvault-partial").symlink_to(outside)

    with contextlib.suppress(StoreError, InputError):
        restore_patient(backed_up.store, entry.path, tmp_path / "dest")
    assert outside.read_bytes() == b"precious"
    assert not os.path.islink(patient / "Patient")


def test_a_damaged_object_fails_its_file_only_and_leaves_no_partial_file(own_store, tmp_path: Path) -> None:
    entry = own_store.manifests()[-1].patients[0]
    tree = own_store.tree_of(entry.path)
    victim = next(f for f in tree.files if f.name == "ImageSet_0.img")
    storekit.flip(own_store.store_path, data_key(victim.hash))
    dest = tmp_path / "dest"

    done = own_store.cli("restore", "--patient", entry.path, "--to", str(dest), expect=ExitCode.PARTIAL)

    assert "damaged" in done.stderr and victim.hash in done.stderr and "ImageSet_0.img" in done.stderr
    target = dest / entry.path / "ImageSet_0.img"
    assert not os.path.lexists(target)
    assert not [p for p in dest.rglob("*") if "rtvault-partial" in p.name]
    restored = files_of(dest)
    source = under(own_store.source_files(), entry.path)
    assert restored == {rel: v for rel, v in source.items() if rel != f"{entry.path}/ImageSet_0.img"}


def test_a_missing_object_fails_its_file(own_store, tmp_path: Path) -> None:
    entry = own_store.manifests()[-1].patients[0]
    victim = next(f for f in own_store.tree_of(entry.path).files if f.name == "Patient")
    storekit.lose(own_store.store_path, data_key(victim.hash))

    done = own_store.cli("restore", "--patient", entry.path, "--to", str(tmp_path / "dest"),
                         expect=ExitCode.PARTIAL)

    assert "missing" in done.stderr and f"INCOMPLETE {entry.path}" in done.stderr
    assert not os.path.lexists(tmp_path / "dest" / entry.path / "Patient")
