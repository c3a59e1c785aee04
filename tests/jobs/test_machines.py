"""`rtvault machines` and `rtvault restore --physics` on a store holding a patient snapshot and the physics
snapshots of a generated PinnacleSiteData tree whose machines were recommissioned between backups: each machine's
versions over time, those in force at a date, the physics of a date restored byte for byte, a lost machine file
named with exit 9, and bad input refused in one sentence."""

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
from kit.store import lose
from rtvault.config import load
from rtvault.demo import evolve_database, generate_database, generate_physics
from rtvault.errors import ExitCode, InputError
from rtvault.jobs.backup import run_backup
from rtvault.jobs.machines import machine_history, restore_physics
from rtvault.store import Store
from rtvault.store.objects import data_key

DAYS = [datetime(2026, 1, 5, 20, tzinfo=UTC), datetime(2026, 1, 6, 20, tzinfo=UTC),
        datetime(2026, 1, 7, 20, tzinfo=UTC), datetime(2026, 1, 8, 20, tzinfo=UTC)]


@dataclass
class Site:
    base: Path
    states: list[dict]  # the physics tree as each snapshot saw it

    @property
    def store(self) -> Store:
        return Store.open(self.base / "store")

    @property
    def config(self) -> Path:
        return self.base / "rtvault.toml"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """Sources `patients` and `physics` backed up into one store; the physics four times: as generated, Clinac iX
    recommissioned (day 1), TrueBeam STx (day 2), unchanged."""
    base = tmp_path_factory.mktemp("physics-site")
    generate_database(base / "db", patients=2, seed=3, image_mb=0.05)
    generate_physics(base / "PinnacleSiteData")
    add_tables(write_config(base / "rtvault.toml", stores={"primary": base / "store"}), **{
        "sources.patients": {"root": base / "db", "site": "Site A"},
        "sources.physics": {"kind": "pinnacle-physics", "root": base / "PinnacleSiteData", "site": "Site A"}})
    config = load(base / "rtvault.toml")
    store, states = Store.init(base / "store")[0], []
    run_backup(config, store, source="patients")  # the patients' snapshot beside the physics ones
    for day, when in enumerate(DAYS):
        if day in (1, 2):
            evolve_database(base / "PinnacleSiteData", day)
        states.append(tree_state(base / "PinnacleSiteData"))
        run_backup(config, store, source="physics", now=when)
    return Site(base, states)


def test_each_machine_and_its_versions_over_time(site: Site) -> None:
    report = machine_history(site.store).to_json()
    assert [(m["name"], m["source"], m["site"]) for m in report["machines"]] == [
        ("Clinac iX", "physics", "Site A"), ("TrueBeam STx", "physics", "Site A")]
    clinac, truebeam = report["machines"]
    assert [len(v["snapshots"]) for v in clinac["versions"]] == [1, 3]  # recommissioned on day 1
    assert [len(v["snapshots"]) for v in truebeam["versions"]] == [2, 2]  # on day 2
    first, second = clinac["versions"]
    assert first["version_timestamp"] == "2019-03-13T11:12:23" and second["version_timestamp"] > "2026-01-06"
    assert (first["first_seen"], first["last_seen"]) == ("2026-01-05T20:00:00.000000Z",) * 2
    assert (second["first_seen"], second["last_seen"]) == ("2026-01-06T20:00:00.000000Z",
                                                           "2026-01-08T20:00:00.000000Z")
    assert {e["name"] for e in second["energies"]} == {"6X", "18X", "6E", "9E", "12E"}
    assert second["directory"] == "Physics/ReadOnlyMachineDB/Machine.0"
    assert report["snapshots"] == 4 and report["warnings"] == [] and report["unreadable"] == []


def test_the_machines_in_force_at_a_date(site: Site) -> None:
    report = machine_history(site.store, at="2026-01-07T12:00:00Z").to_json()  # after day 1, before day 2
    versions = {m["name"]: m["versions"] for m in report["machines"]}
    assert [len(v) for v in versions.values()] == [1, 1]
    assert versions["Clinac iX"][0]["version_timestamp"] > "2026-01-06"
    assert versions["TrueBeam STx"][0]["version_timestamp"] == "2019-03-13T11:12:23"
    with pytest.raises(InputError, match="no physics snapshot as early as 2025-12-31"):
        machine_history(site.store, at="2025-12-31")
    with pytest.raises(InputError, match="no physics snapshot of the source 'other'"):
        machine_history(site.store, source="other")


def test_the_physics_of_a_date_restored_byte_for_byte(site: Site, tmp_path: Path) -> None:
    summary = restore_physics(site.store, tmp_path / "then", at="2026-01-07T12:00:00Z")
    restored = tree_state(tmp_path / "then")
    assert restored == site.states[1]  # contents and mtimes as the snapshot of day 1 saw them
    assert summary.files == sum(1 for _, (digest, _) in restored.items() if digest != "dir")
    restore_physics(site.store, tmp_path / "now")
    assert tree_state(tmp_path / "now") == site.states[3]


@pytest.mark.slow  # six commands run
def test_the_commands(site: Site, tmp_path: Path) -> None:
    listed = json.loads(rtvault(site.config, "machines", "--at", "2026-01-06T21:00:00Z", "--json").stdout)
    assert [m["name"] for m in listed["machines"]] == ["Clinac iX", "TrueBeam STx"]
    text = rtvault(site.config, "machines").stdout
    assert "Clinac iX  [physics (Site A)]  2 version(s)" in text
    rtvault(site.config, "restore", "--physics", "--source", "physics", "--to", tmp_path / "out",
            "--at", "2026-01-05T21:00:00Z")
    assert tree_state(tmp_path / "out") == site.states[0]
    for args, says in ((("--physics", "--all"), "give one of"), (("--physics", "--patient", "x"), "give one of"),
                       (("--physics", "--snapshot", "latest"), "do not go with it"),
                       (("--physics", "--source", "nope"), "no physics snapshot of the source 'nope'")):
        refused = rtvault(site.config, "restore", *args, "--to", tmp_path / "no", expect=int(ExitCode.INPUT))
        assert says in refused.stderr and not (tmp_path / "no").exists()


def test_a_machine_file_the_store_lost_is_named_and_partial(site: Site, tmp_path: Path) -> None:
    shutil.copytree(site.base, tmp_path / "site", symlinks=True)
    mine = Site(tmp_path / "site", site.states)
    manifest = [m for m in mine.store.manifests() if m.kind == "pinnacle-physics"][-1]
    tree = mine.store.get_tree(manifest.other.tree)
    machine = next(f for f in tree.files if f.name.endswith("Machine.1/Pinnacle.Machine"))
    lose(mine.base / "store", data_key(machine.hash))
    report = machine_history(mine.store)
    assert [u.split(":")[0] for u in report.unreadable] == [machine.name]
    assert report.verdict().code == ExitCode.PARTIAL
    # its earlier version is still read; the lost one is listed under its folder's name, unreadable
    assert [(m.name, len(m.versions)) for m in report.machines] == [("Clinac iX", 2), ("Machine.1", 1),
                                                                    ("TrueBeam STx", 1)]
    add_tables(write_config(mine.config, stores={"primary": mine.base / "store"}), **{
        "sources.physics": {"kind": "pinnacle-physics", "root": mine.base / "PinnacleSiteData"}})
    done = rtvault(mine.config, "machines", expect=int(ExitCode.PARTIAL))
    assert machine.name in done.stderr


def test_two_physics_sources_are_told_apart(site: Site, tmp_path: Path) -> None:
    shutil.copytree(site.base, tmp_path / "site", symlinks=True)
    mine = Site(tmp_path / "site", site.states)
    generate_physics(mine.base / "SiteB")
    add_tables(mine.config, **{"sources.physics-b": {"kind": "pinnacle-physics", "root": mine.base / "SiteB",
                                                     "site": "Site B"}})
    run_backup(load(mine.config), mine.store, source="physics-b")
    listed = machine_history(mine.store)
    assert [(m.source, m.site, m.name, len(m.versions)) for m in listed.machines] == [
        ("physics", "Site A", "Clinac iX", 2), ("physics", "Site A", "TrueBeam STx", 2),
        ("physics-b", "Site B", "Clinac iX", 1), ("physics-b", "Site B", "TrueBeam STx", 1)]
    assert {m.source for m in machine_history(mine.store, source="physics-b").machines} == {"physics-b"}
    with pytest.raises(InputError, match=r"several sources \(physics, physics-b\): give --source"):
        restore_physics(mine.store, tmp_path / "out")
    restore_physics(mine.store, tmp_path / "b", source="physics-b")
    assert tree_state(tmp_path / "b") == tree_state(mine.base / "SiteB")
