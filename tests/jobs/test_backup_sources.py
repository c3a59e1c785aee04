"""Several sources in one store: two Pinnacle patient databases (two sites, the same patient paths) and a physics
tree (PinnacleSiteData). Each source has its own snapshots, incremental comparison, shrink check and
deleted-patient archiving; a physics tree holds no patient and is not refused for that; a physics tree given as
patients (and the reverse) is refused with a clear sentence; `forget` keeps each source's own snapshots."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from kit.cli import rtvault_json, run_cli
from kit.config import add_tables, write_config
from kit.vault import Vault
from rtvault.config import load
from rtvault.demo import generate_database
from rtvault.errors import ExitCode, SourceRefused
from rtvault.jobs.backup import run_backup
from rtvault.jobs.source import pinnacle_listing
from rtvault.store import Store

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "pinnacle" / "pinnacle_io-01"


@pytest.fixture(scope="module")
def site_b_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another Pinnacle server's database: other patients under the same Institution_1/Mount_0/Patient_N paths."""
    out = tmp_path_factory.mktemp("site-b") / "db"
    generate_database(out, patients=4, seed=12, image_mb=0.1)
    return out


def physics_tree(where: Path) -> Path:
    """A small PinnacleSiteData tree: the real sample's machine, a script and a solid model."""
    shutil.copytree(FIXTURE / "Physics", where / "Physics")
    (where / "Scripts").mkdir()
    (where / "Scripts" / "Hello.Script").write_bytes(b"Store.At.Message = \"Bonjour\";\n")
    (where / "SolidModels").mkdir()
    (where / "SolidModels" / "Couch.SolidModel").write_bytes(b"\x00\x01couch\xff" * 20)
    return where


@pytest.fixture
def site(vault: Vault, site_b_db: Path, tmp_path: Path) -> Vault:
    """The vault's database as source `a` (site A), another as `b` (site B), a physics tree as `physics`."""
    shutil.copytree(site_b_db, tmp_path / "db-b")
    mount = tmp_path / "db-b" / "Institution_1" / "Mount_0"
    sorted(mount.iterdir())[0].rename(mount / vault.patients()[0].name)  # two servers, one patient path
    physics_tree(tmp_path / "PinnacleSiteData")
    write_config(vault.config_path, stores={"primary": vault.store_path}, backup={"max_shrink": 0.5})
    add_tables(vault.config_path, **{
        "sources.a": {"root": vault.root, "site": "Site A"},
        "sources.b": {"root": tmp_path / "db-b", "site": "Site B"},
        "sources.physics": {"kind": "pinnacle-physics", "root": tmp_path / "PinnacleSiteData", "site": "Site A"}})
    return vault


def _by_source(store: Store) -> dict[str, list]:
    found: dict[str, list] = {}
    for manifest in store.manifests():
        found.setdefault(manifest.source_name, []).append(manifest)
    return found


def test_each_source_gets_its_own_snapshot_with_its_kind_and_site(site: Vault) -> None:
    report = site.cli_json("backup")
    assert [s["source"] for s in report["sources"]] == ["physics", "a", "b"]  # the physics in force first
    by_source = _by_source(site.store)
    assert {name: len(found) for name, found in by_source.items()} == {"a": 1, "b": 1, "physics": 1}
    a, b, physics = by_source["a"][0], by_source["b"][0], by_source["physics"][0]
    assert (a.kind, a.site, len(a.patients)) == ("pinnacle-patients", "Site A", 6)
    assert (b.kind, b.site, len(b.patients)) == ("pinnacle-patients", "Site B", 4)
    assert {p.path for p in b.patients} & {p.path for p in a.patients}  # a path on both servers, other patients
    assert {p.mrn for p in b.patients}.isdisjoint({p.mrn for p in a.patients})
    assert (physics.kind, physics.patients) == ("pinnacle-physics", ())
    names = {f.name for f in site.store.get_tree(physics.other.tree).files}
    assert "Physics/ReadOnlyMachineDB/Machine.0/Pinnacle.Machine" in names
    assert {"Scripts/Hello.Script", "SolidModels/Couch.SolidModel"} <= names
    # The manifests say it in their own JSON, for whoever reads the store without rtvault.
    raw = (site.store_path / "snapshots" / f"{physics.id}.json").read_text()
    assert '"kind": "pinnacle-physics"' in raw and '"source_name": "physics"' in raw


def test_the_second_backup_compares_each_source_with_its_own_previous_snapshot(site: Vault) -> None:
    site.cli_json("backup")
    again = site.cli_json("backup")
    for summary in again["sources"]:
        assert summary["bytes_read"] == 0 and summary["files_new"] == summary["files_changed"] == 0, summary
        assert summary["files_unchanged"] > 0


def test_one_source_shrinking_is_refused_alone_and_the_others_are_backed_up(site: Vault, tmp_path: Path) -> None:
    site.cli_json("backup")
    for patient in sorted((tmp_path / "db-b" / "Institution_1" / "Mount_0").iterdir())[:3]:
        shutil.rmtree(patient)
    done = run_cli("backup", "--json", config=site.config_path, expect=ExitCode.SOURCE_REFUSED)
    refused = [s for s in __import__("json").loads(done.stdout)["sources"] if "refused" in s]
    assert [s["source"] for s in refused] == ["b"]
    assert "holds 1 patients, down from 4" in refused[0]["refused"]
    said = run_cli("backup", config=site.config_path, expect=ExitCode.SOURCE_REFUSED).stderr
    assert "rtvault: source b not backed up: the source holds 1 patients, down from 4" in said
    by_source = _by_source(site.store)
    assert (len(by_source["a"]), len(by_source["b"]), len(by_source["physics"])) == (3, 1, 3)


def test_a_patient_deleted_from_one_source_is_archived_and_the_same_path_elsewhere_is_not(site: Vault) -> None:
    first = site.cli_json("backup")
    assert all(s["archived"] == [] for s in first["sources"])
    gone = site.patients()[0]
    path = site.rel(gone)
    shutil.rmtree(gone)
    second = site.cli_json("backup")
    archived = {s["source"]: s["archived"] for s in second["sources"]}
    assert len(archived["a"]) == 1 and archived["b"] == archived["physics"] == []
    # Source b still holds a patient at that very path: backing b up again archives nothing.
    assert path in {p.path for p in _by_source(site.store)["b"][-1].patients}
    third = site.cli_json("backup", "--source", "b")
    assert third["source"] == "b" and third["archived"] == []


def test_status_in_the_catalog_is_per_source(site: Vault) -> None:
    site.cli_json("backup")
    site.cli_json("backup", "--source", "a")  # a is newer now: b's patients must stay active all the same
    found = site.cli_json("search", "--status", "active", "--per-page", "100")
    assert found["total"] == 10


def test_a_physics_tree_given_as_patients_is_refused(site: Vault, tmp_path: Path) -> None:
    text = site.config_path.read_text().replace('[sources.physics]\nkind = "pinnacle-physics"\n', "[sources.physics]\n")
    site.config_path.write_text(text)
    with pytest.raises(SourceRefused, match=r"source physics .* holds Physics/ReadOnlyMachineDB and no patient "
                                            r"directory: it is a Pinnacle physics tree .*kind = \"pinnacle-physics\""):
        run_backup(load(site.config_path), site.store, source="physics")
    assert "physics" not in _by_source(site.store)


def test_a_patient_database_given_as_physics_is_refused(site: Vault) -> None:
    text = site.config_path.read_text().replace('[sources.b]\n', '[sources.b]\nkind = "pinnacle-physics"\n')
    site.config_path.write_text(text)
    done = run_cli("backup", "--source", "b", config=site.config_path, expect=ExitCode.SOURCE_REFUSED)
    assert "holds Institution_1: it is a Pinnacle patient database, not a physics tree" in done.stderr
    assert "Traceback" not in done.stderr and "b" not in _by_source(site.store)


def test_an_empty_physics_mount_or_one_that_lost_most_files_is_refused(site: Vault, tmp_path: Path) -> None:
    physics = tmp_path / "PinnacleSiteData"
    run_backup(site.config, site.store, source="physics")
    shutil.rmtree(physics / "SolidModels")
    for script in (physics / "Scripts").iterdir():
        script.unlink()
    with pytest.raises(SourceRefused, match=r"holds \d+ files, down from \d+ in snapshot"):
        run_backup(site.config, site.store, source="physics")
    assert run_backup(site.config, site.store, source="physics", allow_shrink=True).kind == "pinnacle-physics"
    shutil.rmtree(physics / "Physics")  # what is left is no physics tree (a folder mounted in the wrong place)
    with pytest.raises(SourceRefused, match="has no Physics/ReadOnlyMachineDB folder"):
        run_backup(site.config, site.store, source="physics")


def test_an_unknown_source_is_refused_before_anything_is_backed_up(site: Vault) -> None:
    done = run_cli("backup", "--source", "a", "--source", "nope", config=site.config_path, expect=ExitCode.CONFIG)
    assert "no source named 'nope' (configured: a, b, physics)" in done.stderr
    assert site.store.manifests() == []


def test_forget_keeps_each_sources_own_newest_snapshots(site: Vault) -> None:
    site.cli_json("backup")
    site.cli_json("backup", "--source", "a")
    site.cli_json("backup", "--source", "a")
    add_tables(site.config_path, retention={"keep_last": 1})
    rtvault_json(site.config_path, "forget")
    kept = _by_source(site.store)
    assert {name: len(found) for name, found in kept.items()} == {"a": 1, "b": 1, "physics": 1}


def test_the_legacy_source_still_backs_up_as_before(vault: Vault, new_vault: Callable[[Path], Vault]) -> None:
    summary = vault.cli_json("backup")
    assert summary["source"] == "pinnacle" and summary["patients"] == 6 and "sources" not in summary
    manifest = vault.store.manifests()[0]
    assert (manifest.source_name, manifest.kind, manifest.site) == ("pinnacle", "pinnacle-patients", "")
    raw = (vault.store_path / "snapshots" / f"{manifest.id}.json").read_text()
    assert "source_name" not in raw  # the defaults are not written: older readers and hashes unchanged


def test_restore_names_the_source_when_two_servers_hold_a_patient_at_one_path(site: Vault, tmp_path: Path) -> None:
    site.cli_json("backup")
    path = site.rel(site.patients()[0])
    both = run_cli("restore", "--patient", path, "--to", tmp_path / "out", config=site.config_path,
                   expect=ExitCode.STORE)
    assert "names patients of 2 sources (a, b): name one with --source" in both.stderr
    done = rtvault_json(site.config_path, "restore", "--patient", path, "--source", "b", "--to", tmp_path / "out")
    restored = load_patient_name(tmp_path / "out" / path)
    assert done["patients"] == [path] and restored in {p.last_name for p in _by_source(site.store)["b"][0].patients}


def test_restore_all_needs_the_source_when_the_store_holds_two_databases(site: Vault, tmp_path: Path) -> None:
    site.cli_json("backup")
    refused = run_cli("restore", "--all", "--to", tmp_path / "all", config=site.config_path, expect=ExitCode.INPUT)
    assert "holds snapshots of several patient databases (a, b): name one with --source" in refused.stderr
    done = rtvault_json(site.config_path, "restore", "--all", "--source", "b", "--to", tmp_path / "all")
    assert sorted(done["patients"]) == sorted(p.path for p in _by_source(site.store)["b"][0].patients)


def load_patient_name(directory: Path) -> str:
    from rtvault.pinnacle.patient import read_patient
    return read_patient(directory, directory.relative_to(directory.parents[2]).as_posix()).last_name


def test_health_checks_each_source_on_its_own(site: Vault, tmp_path: Path) -> None:
    run_backup(site.config, site.store, source="a")
    run_backup(site.config, site.store, source="physics")
    checks = {c["name"]: c for c in rtvault_json(site.config_path, "health", expect=None)["checks"]}
    assert checks["backup:a"]["status"] == "OK" and checks["backup:physics"]["status"] == "OK"
    assert checks["backup:b"]["status"] == "CRITICAL" and "no backup of b" in checks["backup:b"]["message"]
    assert checks["source:physics"]["status"] == "OK" and checks["source:physics"]["value"] == 1
    assert checks["source:b"]["status"] == "OK" and checks["source:b"]["value"] == 4
    shutil.rmtree(tmp_path / "PinnacleSiteData" / "Physics")
    checks = {c["name"]: c for c in rtvault_json(site.config_path, "health", expect=None)["checks"]}
    assert checks["source:physics"]["status"] == "CRITICAL"
    assert "has no Physics/ReadOnlyMachineDB folder" in checks["source:physics"]["message"]


def test_reconcile_compares_each_database_with_its_own_snapshots(site: Vault) -> None:
    run_backup(site.config, site.store, source="a")
    run_cli("catalog", "sync", config=site.config_path)
    found = rtvault_json(site.config_path, "reconcile")
    never = found["never_captured"]
    assert sorted(entry["source"] for entry in never) == ["b"] * 4  # b's patient at a's path is not "captured"
    assert {entry["path"] for entry in never} == set(pinnacle_listing(site.config, "b").patients)
    only_a = rtvault_json(site.config_path, "reconcile", "--source", "a")
    assert only_a["never_captured"] == []
    physics = run_cli("reconcile", "--source", "physics", config=site.config_path, expect=ExitCode.INPUT)
    assert "source physics is a pinnacle-physics tree: it holds no patients" in physics.stderr
    as_csv = run_cli("reconcile", "--csv", config=site.config_path).stdout
    assert as_csv.splitlines()[0].startswith("list,source,key,name,mrn,path")
    assert as_csv.count("never_captured,b,") == 4

