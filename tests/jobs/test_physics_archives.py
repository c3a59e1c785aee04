"""The physics in force, kept with a patient's archive and exported with it: on a store holding the patients of site
A, the physics of site A (recommissioned between two days) and of site B, a patient deleted from Pinnacle is
archived with the physics snapshot of its own site in force at its last backup; `archive export --with-physics`
writes that physics byte for byte (the older version, after the recommissioning), a snapshot version's export the
physics of its date; a patient whose machine the physics lacks is named, exit 9; bad requests are refused before
anything is written."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kit.cli import rtvault
from kit.config import add_tables, write_config
from kit.demo import tree_state
from rtvault.archive import records
from rtvault.archive.formats import ArchiveRecord, PhysicsInForce
from rtvault.config import load
from rtvault.demo import evolve_database, generate_database, generate_physics
from rtvault.errors import ExitCode, InputError
from rtvault.jobs.archive_now import archive_now
from rtvault.jobs.archives import export
from rtvault.jobs.archiving import Exported
from rtvault.jobs.backup import run_backup
from rtvault.pinnacle.physics import MACHINE_DB, read_machine_file
from rtvault.store import Store
from rtvault.store.repository import snapshot_key


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 1, 5 + day, hour, tzinfo=UTC)


@dataclass
class Site:
    base: Path
    states: list[dict]  # site A's physics tree as each of its snapshots saw it
    physics: list[str]  # site A's physics snapshot ids, oldest first
    deleted: str  # the path of the patient deleted on day 1

    @property
    def store(self) -> Store:
        return Store.open(self.base / "store")

    @property
    def config(self) -> Path:
        return self.base / "rtvault.toml"


def _backup(config: Path, store: Store, source: str, when: datetime) -> str:
    return run_backup(load(config), store, source=source, now=when).snapshot


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """Day 0: both sites' physics backed up in the morning, the patients in the evening. Day 1: site A's Clinac
    iX recommissioned and both physics backed up again; a finished patient deleted from Pinnacle, and the evening
    backup archives it."""
    base = tmp_path_factory.mktemp("physics-archives")
    generate_database(base / "db", patients=3, seed=3, image_mb=0.05)
    generate_physics(base / "physics-a")
    generate_physics(base / "physics-b", seed=1)
    add_tables(write_config(base / "rtvault.toml", stores={"primary": base / "store"}), **{
        "sources.patients": {"root": base / "db", "site": "Site A"},
        "sources.physics": {"kind": "pinnacle-physics", "root": base / "physics-a", "site": "Site A"},
        "sources.physics_b": {"kind": "pinnacle-physics", "root": base / "physics-b", "site": "Site B"}})
    store, states, physics = Store.init(base / "store")[0], [], []
    config = base / "rtvault.toml"
    for day in (0, 1):
        if day:
            evolve_database(base / "physics-a", day)
        states.append(tree_state(base / "physics-a"))
        physics.append(_backup(config, store, "physics", at(day, 8)))
        _backup(config, store, "physics_b", at(day, 9))
        if day:
            deleted = evolve_database(base / "db", day).deleted_patients
        _backup(config, store, "patients", at(day, 20))
    assert len(deleted) == 1
    return Site(base, states, physics, deleted[0])


def test_the_archive_of_a_deleted_patient_records_the_physics_of_its_site_then(site: Site) -> None:
    archived = [r for r in records.summaries(site.store) if any(p.path == site.deleted for p in r.patients)]
    assert len(archived) == 1
    record = records.load(site.store, archived[0].id)
    # Its last version is day 0's: site A's physics of day 0 morning, not day 1's, not site B's.
    assert record.physics == (PhysicsInForce("physics", site.physics[0], "2026-01-05T08:00:00.000000Z"),)
    assert archived[0].physics == record.physics  # the summary says it too


def test_export_with_physics_writes_the_physics_of_then_byte_for_byte(site: Site, tmp_path: Path) -> None:
    record = next(r for r in records.summaries(site.store) if r.patients[0].path == site.deleted)
    result = Exported(export(site.store, site.deleted, tmp_path / "p.tar", archive_id=record.id,
                             with_physics=tmp_path / "physics"))
    assert tree_state(tmp_path / "physics") == site.states[0]  # before the recommissioning
    assert site.states[0] != site.states[1]
    data = result.to_json()["physics"]
    assert data["snapshots"] == [{"source": "physics", "snapshot": site.physics[0],
                                  "time": "2026-01-05T08:00:00.000000Z"}]
    assert data["machines"] and data["missing_machines"] == [] and data["not_written"] == []
    assert data["files"] == sum(1 for digest, _ in site.states[0].values() if digest != "dir")
    assert result.verdict().code == ExitCode.OK and (tmp_path / "p.tar").stat().st_size > 0


def test_a_snapshot_version_exports_the_physics_of_its_date(site: Site, tmp_path: Path) -> None:
    present = next(p.path for p in site.store.load_snapshot("latest", source="patients").patients)
    old = next(m for m in site.store.manifests() if m.source_name == "patients")
    export(site.store, present, tmp_path / "old.tar", snapshot=old.id, with_physics=tmp_path / "then")
    export(site.store, present, tmp_path / "new.tar", with_physics=tmp_path / "now")
    assert tree_state(tmp_path / "then") == site.states[0]
    assert tree_state(tmp_path / "now") == site.states[1]


def test_archive_now_records_the_physics_in_force(site: Site) -> None:
    present = next(p.path for p in site.store.load_snapshot("latest", source="patients").patients)
    done = archive_now(load(site.config), site.store, keys=[present])
    assert [s.record.physics for s in done.archived] == [
        (PhysicsInForce("physics", site.physics[1], "2026-01-06T08:00:00.000000Z"),)]


def test_bad_requests_are_refused_before_anything_is_written(site: Site, tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="is not an empty directory"):
        export(site.store, site.deleted, tmp_path / "a.tar", with_physics=tmp_path / "full")
    assert not (tmp_path / "a.tar").exists() and (tmp_path / "full" / "keep.txt").read_text() == "mine"


def test_a_recorded_physics_snapshot_gone_from_the_store_is_named(site: Site, tmp_path: Path) -> None:
    """The physics snapshot an archive names was forgotten since: the tar is written, the physics named as not
    written, exit 9."""
    shutil.copytree(site.base / "store", tmp_path / "store")
    store = Store.open(tmp_path / "store")
    store.backend.delete(snapshot_key(site.physics[0]))
    record = next(r for r in records.summaries(store) if r.patients[0].path == site.deleted)
    result = Exported(export(store, site.deleted, tmp_path / "p.tar", archive_id=record.id,
                             with_physics=tmp_path / "physics"))
    assert result.verdict().code == ExitCode.PARTIAL and (tmp_path / "p.tar").stat().st_size > 0
    assert [f"snapshot {site.physics[0]} of physics" in n for n in result.to_json()["physics"]["not_written"]] == [True]


@pytest.mark.parametrize("hostile", [5, "physics", [1, None, "x"], {"source": "a"}])
def test_a_hostile_physics_field_reads_as_none(hostile: object) -> None:
    assert ArchiveRecord.from_json({"id": "0" * 64, "physics": hostile}).physics == ()


def test_no_physics_recorded_is_said(tmp_path: Path) -> None:
    """A store without physics: the archive records none, `archive show` says so, --with-physics is refused."""
    generate_database(tmp_path / "db", patients=2, seed=5, image_mb=0.05)
    write_config(tmp_path / "rtvault.toml", root=tmp_path / "db", stores={"primary": tmp_path / "store"})
    store = Store.init(tmp_path / "store")[0]
    config = load(tmp_path / "rtvault.toml")
    run_backup(config, store)
    key = store.load_snapshot("latest").patients[0].path
    stored = archive_now(config, store, keys=[key]).archived[0].record
    assert stored.physics == () and "physics" not in records.load(store, stored.id).to_json()
    with pytest.raises(InputError, match="no physics snapshot is recorded for archive"):
        export(store, key, tmp_path / "p.tar", archive_id=stored.id, with_physics=tmp_path / "physics")
    assert not (tmp_path / "p.tar").exists() and not (tmp_path / "physics").exists()


def _remove_machine(physics: Path, name: str) -> None:
    for machine_file in (physics / MACHINE_DB).glob("Machine.*/Pinnacle.Machine"):
        if any(m.name == name for m in read_machine_file(machine_file, machine_file.name).machines):
            shutil.rmtree(machine_file.parent)
            return
    raise AssertionError(f"no machine {name} in {physics}")


@pytest.mark.slow  # four commands run
def test_a_machine_missing_from_the_physics_is_named(tmp_path: Path) -> None:
    """No site labels: every physics source counts. The physics lacks the machine a patient's plan names: the
    export writes the tar and the physics, names the machine, exit 9; `archive show` prints the physics."""
    generate_database(tmp_path / "db", patients=2, seed=4, image_mb=0.05)
    generate_physics(tmp_path / "physics")
    config = add_tables(write_config(tmp_path / "rtvault.toml", stores={"primary": tmp_path / "store"}), **{
        "sources.patients": {"root": tmp_path / "db"},
        "sources.physics": {"kind": "pinnacle-physics", "root": tmp_path / "physics"}})
    store = Store.init(tmp_path / "store")[0]
    run_backup(load(config), store, source="patients", now=at(0, 20))
    patient = store.load_snapshot("latest").patients[0]
    named = store.get_tree(patient.tree).patient.machines
    assert named
    _remove_machine(tmp_path / "physics", named[0])
    run_backup(load(config), store, source="physics", now=at(0, 8))  # taken before the patients' snapshot
    archived = json.loads(rtvault(config, "archive", "now", "--patient", patient.path, "--json").stdout)["archived"]
    shown = rtvault(config, "archive", "show", archived[0]["id"][:12]).stdout
    assert "physics in force: snapshot" in shown and "of the source physics" in shown
    out = rtvault(config, "archive", "export", "--patient", patient.path, "--archive", archived[0]["id"][:12],
                  "--out", tmp_path / "p.tar", "--with-physics", tmp_path / "given", expect=int(ExitCode.PARTIAL))
    assert f"the machine '{named[0]}' the patient's plans name is not in the physics" in out.stderr
    assert (tmp_path / "p.tar").stat().st_size > 0 and (tmp_path / "given" / MACHINE_DB).is_dir()
    data = json.loads(rtvault(config, "archive", "export", "--patient", patient.path, "--out", tmp_path / "q.tar",
                              "--with-physics", tmp_path / "again", "--json", expect=int(ExitCode.PARTIAL)).stdout)
    assert data["physics"]["missing_machines"] == [named[0]]


def test_forget_keeps_the_physics_an_archive_names_whatever_the_rules(site: Site, tmp_path: Path) -> None:
    """Fifteen years on, the archive's plans must find the machines of their date: retention never forgets the
    physics snapshot an archive records as in force (it would have forgotten it: keep_last = 1)."""
    from rtvault.jobs.maintenance import forget

    shutil.copytree(site.base / "store", tmp_path / "store")
    config = load(write_config(tmp_path / "rtvault.toml", stores={"primary": tmp_path / "store"},
                               retention={"keep_last": 1, "keep_hourly": 0, "keep_daily": 0, "keep_weekly": 0,
                                          "keep_monthly": 0, "keep_yearly": 0}))
    done = forget(config, Store.open(tmp_path / "store"))
    kept = dict(done.keep)
    assert site.physics[1] in kept  # the newest of its source, by the rule
    assert kept[site.physics[0]] == ("physics in force for archive " + next(
        r.id for r in records.summaries(site.store) if r.patients[0].path == site.deleted)[:12],)
    assert site.physics[0] in {m.id for m in Store.open(tmp_path / "store").manifests()}
