"""`rtvault failover --to NAME` and `rtvault failback`: the primary store lost, backups go to its copy (recorded,
alerted, journalled), the primary is never written to meanwhile, and once it is back the failback copies the new
backups to it, checks both stores and restores the normal roles; refused while the primary is missing, or when the
stores disagree, or towards a store that is no copy of the primary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kit.cli import rtvault, rtvault_json
from kit.config import add_tables
from kit.daemon import Site, make_site
from kit.store import keys, lose
from rtvault.config import load
from rtvault.demo import evolve_database
from rtvault.jobs.runner import commands


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory, small_db: Path) -> Site:
    site = make_site(tmp_path_factory.mktemp("failover"), small_db)
    rtvault(site.config_path, "backup")
    rtvault(site.config_path, "replicate")
    return site


@pytest.fixture
def site(replicated: Site, tmp_path: Path) -> Site:
    shutil.copytree(replicated.base, tmp_path / "site", symlinks=True)
    text = replicated.config_path.read_text().replace(str(replicated.base), str(tmp_path / "site"))
    (tmp_path / "site" / "rtvault.toml").write_text(text)
    return Site(tmp_path / "site", tmp_path / "site" / "rtvault.toml")


@pytest.fixture
def fresh(tmp_path: Path, small_db: Path) -> Site:
    """Two empty stores: enough for what is refused before any data moves."""
    return make_site(tmp_path, small_db)


def _check(config: Path, name: str = "failover") -> dict:
    report = json.loads(rtvault(config, "health", "--json", expect=None).stdout)
    return next(c for c in report["checks"] if c["name"] == name)


def _snapshots(store: Path) -> set[str]:
    return {p.name for p in (store / "snapshots").glob("*.json")}


@pytest.mark.slow
def test_backups_go_to_the_copy_until_failback_copies_them_back(site: Site) -> None:
    lost = site.base / "primary.lost"
    site.primary.rename(lost)  # the primary's NAS is gone
    before = _snapshots(lost)
    done = rtvault_json(site.config_path, "failover", "--to", "copy")
    assert done["failover"]["primary"] == "primary" and done["failover"]["active"] == "copy"
    assert done["stores_marked"] == ["copy"] and done["primary_reachable"] is False
    assert (site.copy / "roles" / "failover.json").exists() and (site.state / "failover.json").exists()
    alert = _check(site.config_path)
    assert alert["status"] == "CRITICAL" and "does not answer" in alert["message"]

    evolve_database(site.base / "db", 1)
    rtvault(site.config_path, "backup")  # no --store: the copy that took over
    written = _snapshots(site.copy) - before
    assert len(written) == 1
    replicated = rtvault_json(site.config_path, "replicate")
    assert replicated["pairs"] == [{"from": "primary", "to": "copy", "skipped": replicated["pairs"][0]["skipped"]}]
    assert "failed over" in replicated["pairs"][0]["skipped"] and replicated["warnings"]

    refused = rtvault(site.config_path, "failback", expect=8)
    assert "store primary does not answer" in refused.stderr and "rtvault failback" in refused.stderr
    assert (site.state / "failover.json").exists()

    lost.rename(site.primary)  # back, with the data of the day it was lost
    assert _snapshots(site.primary) == before
    assert _check(site.config_path)["status"] == "WARNING"
    stale = rtvault(site.config_path, "backup", "--store", "primary", expect=8)
    assert "not written to until `rtvault failback`" in stale.stderr
    assert _snapshots(site.primary) == before

    back = rtvault_json(site.config_path, "failback")
    assert back["restored"] is True and back["copied"]["snapshots_copied"] == 1 and not back["problems"]
    assert _snapshots(site.primary) == _snapshots(site.copy) == before | written
    assert not (site.copy / "roles" / "failover.json").exists() and not (site.state / "failover.json").exists()
    assert _check(site.config_path)["status"] == "OK"

    evolve_database(site.base / "db", 2)
    rtvault(site.config_path, "backup")  # the primary again
    assert len(_snapshots(site.primary)) == len(_snapshots(site.copy)) + 1
    again = rtvault_json(site.config_path, "replicate")
    assert again["pairs"][0]["snapshots_copied"] == 1 and _snapshots(site.primary) == _snapshots(site.copy)

    [failover] = rtvault_json(site.config_path, "runs", "--job", "failover")
    assert failover["result"] == "ok" and failover["trigger"] == "manual"
    assert failover["summary"]["failover"]["active"] == "copy"
    failbacks = rtvault_json(site.config_path, "runs", "--job", "failback")
    assert sorted(run["result"] for run in failbacks) == ["ok", "unavailable"]


@pytest.mark.slow
def test_a_primary_that_answers_is_marked_for_every_host(site: Site) -> None:
    done = rtvault_json(site.config_path, "failover", "--to", "copy")
    assert done["stores_marked"] == ["copy", "primary"] and done["primary_reachable"] is True
    other = site.base / "other.toml"  # another host: the same stores, a state folder of its own
    other.write_text(site.config_path.read_text().replace(str(site.state), str(site.base / "other-state")))
    refused = rtvault(other, "backup", expect=8)
    assert "was failed over to store copy by host" in refused.stderr and "failover --to copy" in refused.stderr
    check = _check(other)
    assert check["status"] == "CRITICAL" and "this host still backs up to store primary" in check["message"]
    rtvault(other, "failover", "--to", "copy")  # it follows
    rtvault(other, "backup")
    assert _check(other)["status"] == "WARNING"  # the primary answers: failback is due


def test_failover_only_to_a_copy_of_the_primary(fresh: Site) -> None:
    add_tables(fresh.config_path, **{"stores.spare": {"path": fresh.base / "spare"}})
    refused = rtvault(fresh.config_path, "failover", "--to", "spare", expect=4)
    assert "store spare is not a copy of the primary store primary" in refused.stderr and "(copy)" in refused.stderr
    unknown = rtvault(fresh.config_path, "failover", "--to", "nowhere", expect=3)
    assert "no store named 'nowhere'" in unknown.stderr
    missing = rtvault(fresh.config_path, "failback", expect=4)
    assert "not failed over" in missing.stderr
    assert not (fresh.state / "failover.json").exists() and _check(fresh.config_path)["status"] == "OK"


def test_a_copy_that_cannot_take_over_is_refused(fresh: Site) -> None:
    fresh.copy.rename(fresh.base / "copy.gone")
    refused = rtvault(fresh.config_path, "failover", "--to", "copy", expect=8)
    assert "store copy cannot take over" in refused.stderr
    assert not (fresh.state / "failover.json").exists()


@pytest.mark.slow
def test_failback_keeps_the_roles_when_the_stores_disagree(site: Site) -> None:
    rtvault(site.config_path, "failover", "--to", "copy")
    evolve_database(site.base / "db", 1)
    rtvault(site.config_path, "backup")
    lose(site.copy, keys(site.copy, "data/")[0])  # the copy that took over lost an object
    done = rtvault(site.config_path, "failback", "--json", expect=7)
    report = json.loads(done.stdout)
    assert report["restored"] is False and report["problems"]
    assert (site.state / "failover.json").exists() and (site.copy / "roles" / "failover.json").exists()
    assert rtvault_json(site.config_path, "runs", "--job", "failback")[0]["result"] == "failed"


@pytest.mark.slow
def test_the_daemon_jobs_follow_the_failover(site: Site) -> None:
    assert commands(site.config, "retention") == [["forget", "--store", "primary"], ["prune", "--store", "primary"]]
    rtvault(site.config_path, "failover", "--to", "copy")
    config = load(site.config_path)
    assert commands(config, "retention") == [["forget", "--store", "copy"], ["prune", "--store", "copy"]]
    rtvault(site.config_path, "forget")  # retention of the primary, applied to the copy
    assert rtvault(site.config_path, "prune", "--store", "primary", expect=8).stderr


def test_a_damaged_failover_record_is_said_in_one_sentence(fresh: Site) -> None:
    fresh.state.mkdir(exist_ok=True)
    (fresh.state / "failover.json").write_text("{not json")
    refused = rtvault(fresh.config_path, "backup", expect=3)
    assert "the failover record" in refused.stderr and "is damaged" in refused.stderr


@pytest.mark.slow
def test_a_third_store_replicates_from_the_copy_that_took_over(site: Site) -> None:
    add_tables(site.config_path, **{"stores.offsite": {"path": site.base / "offsite", "copy_of": "primary"}})
    rtvault(site.config_path, "init")
    rtvault(site.config_path, "replicate")
    site.primary.rename(site.base / "primary.lost")
    rtvault(site.config_path, "failover", "--to", "copy")
    evolve_database(site.base / "db", 1)
    rtvault(site.config_path, "backup")
    pairs = rtvault_json(site.config_path, "replicate")["pairs"]
    assert [(p["from"], p["to"], "skipped" in p) for p in pairs] == [("primary", "copy", True),
                                                                     ("copy", "offsite", False)]
    assert pairs[1]["snapshots_copied"] == 1 and _snapshots(site.base / "offsite") == _snapshots(site.copy)
