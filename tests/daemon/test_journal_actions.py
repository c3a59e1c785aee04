"""The journal of every action (issue 14): command line actions and web actions recorded with their actor, target
and result in every store, hash-chained, indexed in the audit trail; the audit trail back from the stores after
the loss of the catalog, the journal still verifying; tampering (a changed byte, a re-sealed record, a segment
removed in the middle or at the end) named by `rtvault journal verify` and by `health`."""

from __future__ import annotations

import json
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kit.cli import rtvault, rtvault_json
from kit.daemon import Site, make_site
from rtvault.catalog import audit
from rtvault.configured import open_catalog_for
from rtvault.jobs.actions import FLUSH_S, WebActions, os_user
from rtvault.jobs.journal import Journal, flush_spool, run_record, spooled
from rtvault.jobs.journal_check import verify_journal
from rtvault.store import integrity, journal

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
pytestmark = pytest.mark.slow


@pytest.fixture
def site(tmp_path: Path, small_db: Path) -> Site:
    made = make_site(tmp_path / "site", small_db)
    rtvault(made.config_path, "backup")
    return made


def _patient(site: Site) -> str:
    """A patient of the site's database (its path, a key `restore --patient` takes)."""
    return sorted(p.relative_to(site.base / "db").as_posix()
                  for p in (site.base / "db").glob("Institution_*/Mount_*/Patient_*"))[0]


def test_every_command_line_action_is_in_the_journal_with_its_actor_and_result(site: Site, tmp_path: Path) -> None:
    key = _patient(site)
    rtvault(site.config_path, "restore", "--patient", key, "--to", tmp_path / "out")
    rtvault(site.config_path, "restore", "--patient", "no-such-patient", "--to", tmp_path / "out2", expect=None)
    entries = site.actions(site.primary)
    assert [e["action"] for e in entries].count("restore") == 2
    assert {e["action"] for e in entries} >= {"init", "backup", "restore"}
    restored = next(e for e in entries if e["action"] == "restore" and e["result"] == "ok")
    assert restored["actor"] == {"user": os_user(), "host": socket.gethostname(), "via": "cli"}
    assert restored["patient"] == key and restored["detail"]["to"] == str(tmp_path / "out")
    refused = next(e for e in entries if e["action"] == "restore" and e["result"] != "ok")
    assert refused["result"].startswith("failed: ") and "no-such-patient" in refused["result"]
    assert site.actions(site.copy) == entries  # every store holds the same records
    trail = rtvault_json(site.config_path, "audit")["entries"]
    rows = [(e["action"], e["patient"], e["result"].split(":")[0]) for e in trail if e["action"] == "restore"]
    assert rows == [("restore", "no-such-patient", "failed"), ("restore", key, "ok")]  # newest first
    assert all(e["address"] == f"cli@{socket.gethostname()}" for e in trail if e["action"] == "restore")


def test_the_catalog_lost_gets_the_audit_trail_back_and_the_journal_still_verifies(site: Site, tmp_path: Path) -> None:
    rtvault(site.config_path, "restore", "--patient", _patient(site), "--to", tmp_path / "out")
    rtvault(site.config_path, "search", "--last-name", "MARTIN")
    before = [(e["time"], e["action"], e["patient"], e["result"]) for e in
              rtvault_json(site.config_path, "audit")["entries"]]
    (site.base / "catalog.sqlite").unlink()
    rtvault(site.config_path, "catalog", "rebuild")
    after = [(e["time"], e["action"], e["patient"], e["result"]) for e in
             rtvault_json(site.config_path, "audit")["entries"] if e["action"] != "catalog_rebuild"]
    assert sorted(after) == sorted(before) and {"backup", "restore", "search"} <= {a[1] for a in after}
    verified = rtvault_json(site.config_path, "journal", "verify")
    assert verified["intact"] is True and [s["problems"] for s in verified["stores"]] == [[], []]
    assert all(s["segments"] >= 5 and s["unchained"] == 0 for s in verified["stores"])


def _reseal(path: Path, change) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(integrity.seal(document), sort_keys=True, indent=1))


def _stream(site: Site, count: int) -> list[str]:
    """A daemon-like stream of `count` run records; their keys."""
    writer = Journal(site.config)
    return [journal.segment_key(writer.append(run_record("backup", "schedule", T0, T0, "ok", "", {})).id)
            for _ in range(count)]


def test_a_changed_byte_is_named(site: Site) -> None:
    [key] = _stream(site, 1)
    path = site.copy / key
    path.write_text(path.read_text().replace('"result": "ok"', '"result": "failed"'))
    done = rtvault(site.config_path, "journal", "verify", expect=7)
    assert f"{key} is damaged: its content does not match its integrity hash" in done.stderr


def test_a_record_resealed_everywhere_breaks_the_chain(site: Site) -> None:
    _first, second, third = _stream(site, 3)
    for store in (site.primary, site.copy):
        _reseal(store / second, lambda d: d.update(result="failed"))
    done = rtvault(site.config_path, "journal", "verify", expect=7)
    assert f"{third} does not follow {second}: it names another segment before it" in done.stderr
    later = journal.segment_key(Journal(site.config).append(run_record("verify", "schedule", T0, T0, "ok", "",
                                                                       {})).id)
    for store in (site.primary, site.copy):  # the newest record re-sealed too: the next stream named it
        _reseal(store / third, lambda d: d.update(result="failed"))
    done = rtvault(site.config_path, "journal", "verify", expect=7)
    assert f"{later} names {third} as the segment before it, but that segment is not the one it named" in done.stderr


def test_a_segment_removed_in_the_middle_or_at_the_end_is_named(site: Site) -> None:
    _first, second, third = _stream(site, 3)
    for store in (site.primary, site.copy):
        (store / second).unlink()
    done = rtvault(site.config_path, "journal", "verify", expect=7)
    assert f"{second} is missing: the stream goes on at {third} (a segment was removed)" in done.stderr
    for store in (site.primary, site.copy):
        (store / third).unlink()
    done = rtvault(site.config_path, "journal", "verify", expect=7)
    assert f"journal record {journal.id_of(third)} is in the catalog but in no store nor the spool" in done.stderr
    assert f"journal head names {third} as its newest segment, which no store holds" in done.stderr


def test_a_store_missing_a_segment_says_to_replicate(site: Site) -> None:
    [key] = _stream(site, 1)
    (site.copy / key).unlink()
    done = rtvault(site.config_path, "journal", "verify", "--json", expect=7)
    assert f"{key} is missing from store copy (held by primary): run `rtvault replicate`" in done.stdout


def test_web_actions_reach_the_stores_through_the_spool(site: Site) -> None:
    actions = WebActions(site.config)
    with open_catalog_for(site.config) as db:
        actions.record(db, user="anne", address="192.0.2.7", action="login")
        actions.record(db, user="anne", address="192.0.2.7", action="view", patient="Institution_1/Mount_0/Patient_1")
    actions.flush()
    assert set(spooled(site.config)) == {"primary", "copy"}  # the web server never writes a store
    with open_catalog_for(site.config) as db:
        rows, _ = audit.entries(db, user="anne")
    assert [r.action for r in rows] == ["view", "login"]
    assert flush_spool(site.config) == [] and spooled(site.config) == {}  # the daemon's heartbeat
    web = [e for e in site.actions(site.primary) if e["actor"]["via"] == "web"]
    assert [(e["action"], e["actor"]["address"]) for e in web] == [("login", "192.0.2.7"), ("view", "192.0.2.7")]
    assert rtvault_json(site.config_path, "journal", "verify")["intact"] is True
    rtvault(site.config_path, "catalog", "sync")
    with open_catalog_for(site.config) as db:
        rows, _ = audit.entries(db, user="anne")
    assert len(rows) == 2  # indexed once, not again by the sync


def test_web_actions_on_their_way_to_the_spool_are_not_said_removed(site: Site) -> None:
    """A web server or DICOM node indexes each action at once and spools its segment a moment later: a `journal
    verify` (the daemon's, every day) reading the catalog in between must not call the journal tampered with."""
    actions = WebActions(site.config, via="dicom")
    with open_catalog_for(site.config) as db:
        actions.record(db, user="CT_SCANNER", address="127.0.0.1", action="dicom_store")
    assert actions.timer is not None
    actions.timer.cancel()  # the segment is spooled a little later than FLUSH_S: the node is busy
    late = threading.Timer(FLUSH_S + 0.5, actions.flush)
    late.start()
    try:
        assert spooled(site.config) == {}
        verified = verify_journal(site.config)
    finally:
        late.join()
    assert verified.intact, verified.to_json()
    assert set(spooled(site.config)) == {"primary", "copy"}


def test_health_turns_critical_when_the_journal_was_tampered_with(site: Site) -> None:
    steps = [{"command": "rtvault journal verify", "exit_code": 7, "result": "partial", "seconds": 0.1,
              "waited_s": 0, "error": "", "summary": {"stores": [{"problems": ["journal/x/00000002.json is missing"]}],
                                                      "across": [], "intact": False}}]
    Journal(site.config).append(run_record("verify", "schedule", T0, T0, "partial", "", {"steps": steps}))
    health = json.loads(rtvault(site.config_path, "health", "--json", expect=None).stdout)
    [check] = [c for c in health["checks"] if c["name"] == "journal"]
    assert check["status"] == "CRITICAL" and "journal/x/00000002.json is missing" in check["message"]


def test_a_head_set_back_to_an_older_segment_is_named(site: Site) -> None:
    first, second, _third = _stream(site, 3)
    assert rtvault_json(site.config_path, "journal", "verify")["intact"] is True
    digest = json.loads((site.primary / first).read_text())["integrity"]
    (site.primary / journal.HEAD_KEY).write_text(json.dumps({"id": journal.id_of(first), "integrity": digest}))
    done = rtvault(site.config_path, "journal", "verify", expect=7)
    assert f"store primary's journal head names {first} as its newest segment, but its stream goes on at {second}" \
        in done.stderr
    (site.copy / journal.HEAD_KEY).write_text(json.dumps({"id": "20200101T000000Z-0badf00d/00000001",
                                                          "integrity": digest}))
    done = rtvault(site.config_path, "journal", "verify", expect=7)
    assert "store copy's journal head names journal/20200101T000000Z-0badf00d/00000001.json as its newest segment, " \
           "which no store holds" in done.stderr


def test_a_spooled_segment_written_late_never_sets_the_head_back(site: Site) -> None:
    stream = Journal(site.config)
    site.copy.rename(site.base / "away")  # the copy is unplugged for the first record, back for the second
    stream.append(run_record("backup", "schedule", T0, T0, "ok", "", {}))
    (site.base / "away").rename(site.copy)
    second = journal.segment_key(stream.append(run_record("backup", "schedule", T0, T0, "ok", "", {})).id)
    assert flush_spool(site.config) == []
    assert json.loads((site.copy / journal.HEAD_KEY).read_text())["id"] == journal.id_of(second)
    assert rtvault_json(site.config_path, "journal", "verify")["intact"] is True


def test_streams_begun_together_in_new_stores_make_one_journal(tmp_path: Path, small_db: Path) -> None:
    made = make_site(tmp_path / "site", small_db)
    for path in [*made.primary.rglob("*"), *made.copy.rglob("*"), *made.base.glob("catalog.sqlite*")]:
        if path.is_file() and (path.name.startswith("catalog.sqlite") or "journal" in path.parts[-2:]):
            path.unlink()  # stores with no journal yet (made by an older rtvault), and a new catalog
    first, second = Journal(made.config), Journal(made.config)
    first._head = second._head = lambda: None  # both read no head before either wrote: the race, made certain
    for stream in (first, second):
        stream.append(run_record("backup", "schedule", T0, T0, "ok", "", {}))
    assert rtvault_json(made.config_path, "journal", "verify")["intact"] is True


def test_journal_verify_of_one_store_compares_it_with_the_catalog(site: Site) -> None:
    before = (site.copy / journal.HEAD_KEY).read_bytes()
    [key] = _stream(site, 1)
    (site.copy / key).unlink()  # the newest record taken out of one store, its head put back: no gap, no link
    (site.copy / journal.HEAD_KEY).write_bytes(before)
    done = rtvault(site.config_path, "journal", "verify", "--store", "copy", "--json", expect=7)
    report = json.loads(done.stdout)
    assert report["catalog"] == "compared" and report["intact"] is False
    assert f"journal record {journal.id_of(key)} is in the catalog but in store copy nor the spool for it" \
        in report["across"][0]
    assert rtvault_json(site.config_path, "journal", "verify", "--store", "primary")["intact"] is True
