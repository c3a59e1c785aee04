"""Issue 16's "done when", as a new user lives it from the README, every part real: a demo Pinnacle database
backed up; `[dicom]` with a port, the CT scanner as a watched sender (`silent_after`), a second node (dcmtk's
`storescp`) as the C-MOVE destination and rtvault's own node as a peer to check; `rtvault daemon` runs the node;
dcmtk's `storescu` sends a CT series and an RT plan of `rtvault demo dicom` (the same demo patients: PatientID =
MRN); `rtvault search --mrn` and the web search (Chromium) show one patient with its Pinnacle record and its DICOM
study, the patient page lists the received series; `movescu` retrieves the series to the second node byte for
byte; `rtvault dicom check` reports echo, store and find; `rtvault health` and the daemon's own health evaluation
show the node listening and the sender's last object, and a sender silent too long is a WARNING naming it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pydicom
import pytest
from playwright.sync_api import Browser, expect

from kit.browser import stop, wait_until_up
from kit.cli import run_cli
from kit.daemon import until
from kit.dicom_node import data_set, dcmtk
from kit.dicom_peers import Storescp, storescp
from kit.files import free_port

pytestmark = pytest.mark.slow

PASSWORD = "noeud-dicom-2026!"
SEED, PATIENTS = 7, 3


def _rtvault(home: Path, *args: str | Path, expect: int | None = 0, stdin: str | None = None,
             config: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`rtvault ARGS` typed in the working directory (its ./rtvault.toml), as the README's sessions do."""
    return run_cli(*args, cwd=home, expect=expect, stdin=stdin, config=config)


def _json(home: Path, *args: str | Path, expect: int | None = 0, config: Path | None = None) -> dict:
    return json.loads(_rtvault(home, *args, "--json", expect=expect, config=config).stdout)


def _site_config(node_port: int, archive_port: int, silent_after: str = "1h") -> str:
    """The README's configuration: the source and store of the quick start, the node, its peers."""
    return f"""[source.pinnacle]
root = "pinnacle"

[stores.primary]
path = "store"

[daemon]
state_dir = "state"

[health]
interval = "5s"

[dicom]
ae_title = "RTVAULT"
host = "127.0.0.1"
port = {node_port}

[dicom.peers.ct]
ae_title = "CT_SCANNER"
silent_after = "{silent_after}"

[dicom.peers.archive]
ae_title = "ARCHIVE"
host = "127.0.0.1"
port = {archive_port}

[dicom.peers.self]
ae_title = "RTVAULT"
host = "127.0.0.1"
port = {node_port}
"""


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def _process(home: Path, log: Path, *args: str) -> Iterator[subprocess.Popen]:
    """`rtvault ARGS` in the background (its output in `log`), stopped by SIGTERM at the end."""
    environment = {key: value for key, value in os.environ.items() if key != "RTVAULT_CONFIG"}
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "rtvault", *args], cwd=home, env=environment, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        stop(process)


def _objects(folder: Path) -> dict[str, list[Path]]:
    """The files `rtvault demo dicom` wrote for one patient, by modality (its DICOMDIR left out)."""
    found: dict[str, list[Path]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "DICOMDIR"):
        found.setdefault(pydicom.dcmread(path, stop_before_pixels=True).Modality, []).append(path)
    return found


def _check(report: dict, name: str) -> dict:
    return next(c for c in report["checks"] if c["name"] == name)


def _web_search(chromium: Browser, url: str, mrn: str, last_name: str, ct_count: int) -> None:
    """Signed in, the MRN searched: one row, its Pinnacle backups beside its DICOM study; its page lists the CT
    series and the RT plan as received from the scanner."""
    context = chromium.new_context(locale="en-GB")
    context.set_default_timeout(20_000)
    try:
        page = context.new_page()
        page.goto(url + "/")
        page.get_by_label("User name").fill("physicist")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#signed-in")).to_contain_text("physicist")
        page.locator("input#mrn").fill(mrn)
        page.get_by_role("button", name="Search").click()
        rows = page.locator("table.results tbody tr")
        expect(rows).to_have_count(1)
        expect(rows).to_contain_text(last_name)
        expect(rows).to_contain_text("backup(s) on primary")  # its Pinnacle record
        expect(rows.locator("li.dicom")).to_contain_text(f"DICOM, 1 study(ies), 2 series, {ct_count + 1} object(s)")
        rows.locator("a.patient-link").click()
        expect(page.locator("#mrn")).to_contain_text(mrn)
        series = page.locator("#dicom table.dicom-series tbody tr")
        expect(series).to_have_count(2)
        texts = sorted(series.all_inner_texts())
        ct = next(t for t in texts if "\tCT\t" in t)
        plan = next(t for t in texts if "\tRTPLAN\t" in t)
        assert f"\t{ct_count}\tCT_SCANNER\t" in ct, ct
        assert "\t1\tCT_SCANNER\t" in plan and "primary" in plan, plan
    finally:
        context.close()


def test_a_new_user_runs_the_dicom_node_from_the_readme(tmp_path: Path, chromium: Browser) -> None:
    home = tmp_path / "site"
    home.mkdir()
    started = time.monotonic()
    with ExitStack() as running:
        # The second node, a dcmtk storescp, runs already: the PACS a site retrieves to.
        second: Storescp = running.enter_context(storescp(tmp_path / "second-node", "ARCHIVE"))
        node_port = free_port()

        # The quick start: a demo database, the store, a first backup; then the node's configuration.
        _rtvault(home, "demo", "generate", "--out", "pinnacle", "--patients", str(PATIENTS), "--seed", str(SEED),
                 "--image-mb", "0.2")
        (home / "rtvault.toml").write_text(_site_config(node_port, second.port), encoding="utf-8")
        _rtvault(home, "init")
        _rtvault(home, "backup")
        pinnacle = {p["mrn"]: p for p in _json(home, "inspect", "pinnacle")["patients"]}

        # `rtvault demo dicom`: the same demo patients as DICOM-RT; one with a birth date is sent.
        demo = _json(home, "demo", "dicom", "--to", "dicom", "--patients", str(PATIENTS), "--seed", str(SEED))
        chosen = next(p for p in demo["patients"] if pinnacle[p["mrn"]]["birth_date"])
        mrn = chosen["mrn"]
        objects = _objects(home / "dicom" / chosen["folder"])
        cts, [plan] = objects["CT"], objects["RTPLAN"]
        assert len(cts) > 3

        # The daemon runs the node (and its schedule); the node listens.
        daemon_log = tmp_path / "daemon.log"
        daemon = running.enter_context(_process(home, daemon_log, "daemon"))
        until(lambda: _listening(node_port) or daemon.poll() is not None, timeout=60)
        assert daemon.poll() is None, daemon_log.read_text()

        # The daemon's health evaluation watches the scanner: nothing received from it yet.
        until(lambda: "health: dicom:ct OK -> WARNING: nothing received yet from ct" in daemon_log.read_text(),
              timeout=60)

        # The scanner sends the CT series and the RT plan with dcmtk.
        sent = dcmtk("storescu", "-aet", "CT_SCANNER", "-aec", "RTVAULT", "127.0.0.1", str(node_port),
                     *map(str, [*cts, plan]))
        assert sent.returncode == 0, sent.stdout + sent.stderr

        # One patient, found by its MRN: the Pinnacle record and the DICOM study together.
        found = _json(home, "search", "--mrn", mrn)
        assert found["total"] == 1, found
        [patient] = found["patients"]
        assert patient["path"] == pinnacle[mrn]["path"] and patient["status"] == "active"
        assert [loc["kind"] for loc in patient["locations"]] == ["snapshots"]
        assert patient["dicom"]["studies"] == 1 and patient["dicom"]["series"] == 2
        assert patient["dicom"]["instances"] == len(cts) + 1

        # The web search shows the same, and the patient page its received series.
        _rtvault(home, "user", "add", "physicist", "--role", "viewer", stdin=PASSWORD + "\n")
        web_port = free_port()
        web_log = tmp_path / "serve.log"
        server = running.enter_context(_process(home, web_log, "serve", "--host", "127.0.0.1", "--port",
                                                str(web_port)))
        wait_until_up(f"http://127.0.0.1:{web_port}", server, web_log)
        _web_search(chromium, f"http://127.0.0.1:{web_port}", mrn, patient["last_name"], len(cts))

        # C-MOVE of the series to the second node: every data set byte for byte as the scanner sent it.
        series_uid = pydicom.dcmread(cts[0], stop_before_pixels=True).SeriesInstanceUID
        study_uid = pydicom.dcmread(cts[0], stop_before_pixels=True).StudyInstanceUID
        moved = dcmtk("movescu", "-S", "-aet", "ARCHIVE", "-aec", "RTVAULT", "-aem", "ARCHIVE",
                      "-k", "QueryRetrieveLevel=SERIES", "-k", f"StudyInstanceUID={study_uid}",
                      "-k", f"SeriesInstanceUID={series_uid}", "127.0.0.1", str(node_port))
        assert moved.returncode == 0, moved.stdout + moved.stderr
        received = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: data_set(p) for p in second.files()}
        assert received == {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: data_set(p) for p in cts}

        # The test kit checks rtvault's own node: echo, a test object stored, found.
        checked = _json(home, "dicom", "check", "self")
        assert checked["ok"] is True, checked
        assert [(s["step"], s["ok"]) for s in checked["steps"]] == [("echo", True), ("store", True), ("find", True)]

        # Health: the node listens, the scanner's last object is named; the daemon's own evaluation says so too.
        health = _json(home, "health", expect=None)
        node, scanner = _check(health, "dicom_node"), _check(health, "dicom:ct")
        assert node["status"] == "OK" and f"listens on 127.0.0.1:{node_port}" in node["message"], node
        assert scanner["status"] == "OK", scanner
        assert "last object from ct received" in scanner["message"], scanner
        assert f"({len(cts) + 1} instance(s) held)" in scanner["message"], scanner
        assert _check(health, "journal")["status"] == "OK", health  # the node's audit entries are all there
        until(lambda: "health: dicom:ct WARNING -> OK: last object from ct received" in daemon_log.read_text(),
              timeout=30)

        # A sender silent for longer than its silent_after is a WARNING naming it and its last object.
        quiet = home / "rtvault-quiet.toml"
        quiet.write_text(_site_config(node_port, second.port, silent_after="1s"), encoding="utf-8")
        time.sleep(2.5)
        silent = _check(_json(home, "health", expect=7, config=quiet), "dicom:ct")
        assert silent["status"] == "WARNING", silent
        assert "nothing received from ct (AE title CT_SCANNER)" in silent["message"], silent
        assert "its last object at " in silent["message"], silent

        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=90) == 0, daemon_log.read_text(errors="replace")
    assert not _listening(node_port)
    log = daemon_log.read_text(errors="replace")
    assert "Traceback" not in log and "UserWarning" not in log and "journal OK -> CRITICAL" not in log, log
    assert "Traceback" not in web_log.read_text(errors="replace")
    assert time.monotonic() - started < 120
