"""The catalog filled from real stores, on SQLite and PostgreSQL: a generated Pinnacle database backed up twice
(a patient discharged in between, archived automatically), an old archive and a damaged one ingested. Sync is
incremental, forgetting drops locations, and a rebuild from the stores alone gives the same search results."""

from __future__ import annotations

import json
import shutil
import tarfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from kit.catalog import new_url
from kit.cli import rtvault as run_rtvault
from kit.config import KEEP_LAST, write_config
from rtvault.archive.formats import ArchivedPatient
from rtvault.archive.ingest import ingest_file
from rtvault.catalog import Catalog, open_catalog
from rtvault.catalog.indexer import patient_key, rebuild, sync
from rtvault.catalog.patients import patient_detail
from rtvault.catalog.search import Criteria, search
from rtvault.config import Config, load
from rtvault.demo import generate_database
from rtvault.demo.evolve import evolve_database
from rtvault.demo.machines import MACHINE_NAMES
from rtvault.jobs.archives import delete_archive
from rtvault.jobs.backup import run_backup
from rtvault.store import Store
from rtvault.store.formats import PatientEntry


@dataclass
class World:
    """A source database, its store (2 snapshots, 3 archives) and who is where."""

    base: Path
    discharged: PatientEntry  # the manifest entry of the patient deleted from the source on day 1, then archived
    admitted: str  # the path of the patient admitted on day 1
    old: ArchivedPatient  # the identity (Institution file) of the patient of the healthy old archive
    damaged: ArchivedPatient  # ... and of the damaged (truncated) old archive

    @property
    def store(self) -> Store:
        return Store.open(self.base / "store")

    @property
    def config_path(self) -> Path:
        return self.base / "rtvault.toml"

    def config(self, catalog_url: str) -> Config:
        return load(write_config(self.config_path, root=self.base / "db", stores={"primary": self.base / "store"},
                                 catalog={"url": catalog_url}, retention=KEEP_LAST))

    def copy(self, directory: Path) -> World:
        shutil.copytree(self.base, directory, dirs_exist_ok=True, symlinks=True)
        return World(directory, self.discharged, self.admitted, self.old, self.damaged)


def _old_archive(db: Path, patient: str, out: Path, *, cut: bool) -> dict:
    """A Pinnacle-format tar of one patient of another database, as an old backup script made it."""
    with tarfile.open(out, "w") as tar:
        tar.add(db / patient.split("/")[0] / "Institution", arcname="Institution")
        tar.add(db / patient, arcname=patient)
    if cut:  # the disc was unreadable past two thirds
        out.write_bytes(out.read_bytes()[: out.stat().st_size * 2 // 3])
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    base = tmp_path_factory.mktemp("world")
    generate_database(base / "db", patients=4, seed=7, image_mb=0.1)
    generate_database(base / "olddb", patients=2, seed=99, image_mb=0.1)
    Store.init(base / "store")
    made = World(base, {}, "", {}, {})
    config, store = made.config("sqlite:///" + str(base / "unused.sqlite")), made.store
    run_backup(config, store)
    day = evolve_database(base / "db", 1)
    assert len(day.deleted_patients) == 1 and len(day.added_patients) == 1
    assert run_backup(config, store).archived
    made.discharged = next(p for p in store.manifests()[0].patients if p.path == day.deleted_patients[0])
    made.admitted = day.added_patients[0]
    olds = sorted(p.relative_to(base / "olddb").as_posix() for p in (base / "olddb").glob("Institution_*/*/Patient_*"))
    for name, patient, cut in (("old-dvd-2019.tar", olds[0], False), ("old-dvd-damaged.tar", olds[1], True)):
        record = ingest_file(store, _old_archive(base / "olddb", patient, base / name, cut=cut)).record
        assert record.damaged is cut
        identity = record.patient(patient)
        setattr(made, "damaged" if cut else "old", identity)
    return made


QUERIES = [Criteria(), Criteria(status="archived"), Criteria(status="active"), Criteria(archive="old-dvd"),
           Criteria(born="1900-2100", gender="f"), Criteria(modality="CT"), Criteria(last_name="le")]


def results(catalog: Catalog) -> list[dict]:
    return [search(catalog, q, per_page=200).to_json() for q in QUERIES]


def one(catalog: Catalog, **criteria: str) -> dict:
    found = search(catalog, Criteria(**criteria)).patients
    assert len(found) == 1, found
    return found[0]


def test_sync_is_incremental(world: World, catalog: Catalog, tmp_path: Path) -> None:
    mine = world.copy(tmp_path / "world")
    [first] = sync(catalog, {"primary": mine.store})
    assert (first.snapshots_added, first.archives_added, first.problems) == (2, 3, [])
    indexed = search(catalog, Criteria()).total
    assert indexed == 4 + 1 + 2  # the day-1 database (4), the discharged patient, the two old ones
    [again] = sync(catalog, {"primary": mine.store})
    assert (again.snapshots_added, again.archives_added, again.versions_added) == (0, 0, 0)
    assert (again.snapshots_removed, again.archives_removed) == (0, 0)
    day = evolve_database(mine.base / "db", 2)
    run_backup(mine.config(catalog.url), mine.store)
    [third] = sync(catalog, {"primary": mine.store})
    assert third.snapshots_added == 1 and third.archives_added == len(day.deleted_patients)
    admitted = one(catalog, patient_id=day.added_patients[0].rsplit("_", 1)[1])
    assert admitted["status"] == "active" and admitted["path"] == day.added_patients[0]
    assert search(catalog, Criteria()).total == indexed + 1


def test_rebuild_from_the_stores_gives_the_same_results(world: World, catalog: Catalog,
                                                        request: pytest.FixtureRequest, tmp_path: Path) -> None:
    sync(catalog, {"primary": world.store})
    before = results(catalog)
    assert [r["total"] for r in before[:4]] == [7, 3, 4, 2]
    rebuild(catalog, {"primary": world.store})
    assert results(catalog) == before
    dialect = catalog.dialect
    with open_catalog(new_url(request, dialect, tmp_path)) as fresh:  # a lost catalog, made again
        sync(fresh, {"primary": world.store})
        assert results(fresh) == before


def test_a_person_in_a_snapshot_and_an_archive_is_one_patient(world: World, catalog: Catalog) -> None:
    sync(catalog, {"primary": world.store})
    gone = world.discharged
    patient = one(catalog, mrn=gone.mrn)
    assert patient["key"] == patient_key(gone.path, gone.patient_id, gone.mrn)
    assert (patient["path"], patient["status"]) == (gone.path, "archived")
    snapshots, archive = patient["locations"]
    assert (snapshots["kind"], snapshots["count"]) == ("snapshots", 1)
    assert snapshots["latest_snapshot"] == world.store.manifests()[0].id
    assert archive["kind"] == "archive" and archive["file"].endswith(".tar.gz") and not archive["damaged"]
    assert patient["archived_at"] == archive["time"] and patient["archived_at"].endswith("Z")
    assert patient["keep_until"] > date.today().isoformat()
    assert one(catalog, archive=archive["file"])["key"] == patient["key"]


def test_each_version_records_the_machines_its_plans_name(world: World, catalog: Catalog) -> None:
    sync(catalog, {"primary": world.store})
    rows = catalog.execute("SELECT v.tree, m.machine FROM version_machines m JOIN versions v ON v.id = m.version")
    by_tree: dict[str, set[str]] = {}
    for tree, machine in rows:
        by_tree.setdefault(tree, set()).add(machine)
    snapshot_trees = {p.tree for m in world.store.manifests() for p in m.patients}
    assert by_tree.keys() == snapshot_trees  # an archive read from an old disc holds no plan machines record
    assert set(map(frozenset, by_tree.values())) == {frozenset(MACHINE_NAMES)}
    shown = patient_detail(catalog, one(catalog, mrn=world.discharged.mrn)["key"])
    assert [v["machines"] for v in shown["versions"]] == [sorted(MACHINE_NAMES)]  # what the patient page shows
    rebuild(catalog, {"primary": world.store})
    again = catalog.execute("SELECT v.tree, m.machine FROM version_machines m JOIN versions v ON v.id = m.version")
    assert sorted(again) == sorted(rows)


def test_old_and_damaged_archives(world: World, catalog: Catalog) -> None:
    sync(catalog, {"primary": world.store})
    old = one(catalog, archive="old-dvd-2019")
    assert (old["last_name"], old["mrn"], old["status"]) == (world.old.last_name, world.old.mrn, "archived")
    assert [loc["damaged"] for loc in old["locations"]] == [False]
    assert old["archived_at"] == world.old.last_modified  # an old disc is dated by its newest file
    hurt = one(catalog, archive="old-dvd-damaged")
    assert hurt["mrn"] == world.damaged.mrn
    assert [(loc["file"], loc["damaged"]) for loc in hurt["locations"]] == [("old-dvd-damaged.tar", True)]


def test_expired_archive_then_forgotten_snapshot(world: World, catalog_url: str, tmp_path: Path) -> None:
    mine = world.copy(tmp_path / "world")
    mine.config(catalog_url)
    with open_catalog(catalog_url) as catalog:
        sync(catalog, {"primary": mine.store})
        gone = world.discharged
        [record] = [r for r in one(catalog, mrn=gone.mrn)["locations"] if r["kind"] == "archive"]
        delete_archive(mine.store, record["archive"], date(2200, 1, 1))  # its retention is long over by then
        sync(catalog, {"primary": mine.store})
        deleted = one(catalog, mrn=gone.mrn)
        assert deleted["status"] == "deleted"  # only an older snapshot holds it now
        assert [loc["kind"] for loc in deleted["locations"]] == ["snapshots"]
        first, last = mine.store.manifests()
        stayed = next(p for p in first.patients if p.path in {q.path for q in last.patients})
        active = one(catalog, mrn=stayed.mrn)
        assert active["locations"][0]["count"] == 2
    rtvault(mine.config_path, "forget")  # keeps the newest snapshot only, and refreshes the catalog
    with open_catalog(catalog_url) as catalog:
        assert search(catalog, Criteria(mrn=gone.mrn)).total == 0
        again = one(catalog, mrn=active["mrn"])
        assert [(loc["kind"], loc["count"]) for loc in again["locations"]] == [("snapshots", 1)]
        assert again["status"] == "active"


def test_ingest_command_keeps_the_catalog_in_step(world: World, catalog_url: str, tmp_path: Path) -> None:
    mine = world.copy(tmp_path / "world")
    mine.config(catalog_url)
    config = mine.config_path
    rtvault(config, "catalog", "sync")
    before = json.loads(rtvault(config, "search", "--status", "archived", "--json"))["total"]
    shutil.rmtree(mine.base / "olddb")
    generate_database(mine.base / "olddb", patients=1, seed=123, image_mb=0.1)
    [patient] = [p.relative_to(mine.base / "olddb").as_posix() for p in (mine.base / "olddb").glob("*/*/Patient_*")]
    rtvault(config, "archive", "ingest", str(_old_archive(mine.base / "olddb", patient, tmp_path / "x.tar", cut=False)))
    found = json.loads(rtvault(config, "search", "--archive", "x.tar", "--json"))
    assert found["total"] == 1 and found["patients"][0]["path"] == patient
    assert json.loads(rtvault(config, "search", "--status", "archived", "--json"))["total"] == before + 1


def rtvault(config: Path, *args: str) -> str:
    """`rtvault ARGS` as a user runs it, in a subprocess: its standard output."""
    return run_rtvault(config, *args).stdout


def test_sqlite_and_postgresql_give_the_same_results(world: World, request: pytest.FixtureRequest,
                                                     tmp_path: Path) -> None:
    found = []
    for dialect in ("sqlite", "postgresql"):
        with open_catalog(new_url(request, dialect, tmp_path)) as catalog:
            sync(catalog, {"primary": world.store})
            found.append(results(catalog))
    assert found[0] == found[1]
