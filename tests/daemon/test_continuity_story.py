"""Issue 13's story on the demo (scripts/demo-rtvault.toml), every part real: `rtvault daemon` catches up the weekly
restore drill at its start, and a new user signed in to `rtvault serve` sees within minutes its time against the
RTO on the dashboard (the page, its JSON twin and the drill chart); the copy store's NAS gone turns the dashboard
red and sends a CRITIQUE e-mail (to the demo's own mailbox: the SMTP server scripts/demo runs, filing each message in
demo-data/mail/new/) within an interval or two, and a RÉTABLI one once it is back; `rtvault procedure` prints the
site's stores, the restore command and the drill."""

from __future__ import annotations

import email
import email.policy
import html
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pypdf
import pytest

from kit.browser import wait_until_up
from kit.cli import rtvault, rtvault_json
from kit.daemon import until
from kit.files import free_port
from kit.web import sign_in
from rtvault.demo import generate_physics
from rtvault.jobs.health_drill import minutes

pytestmark = pytest.mark.slow
DEMO_CONFIG = Path(__file__).parents[2] / "scripts" / "demo-rtvault.toml"
USER, PASSWORD = "demo", "rtvault-demo-2026"  # scripts/demo's account
INTERVAL_S = 2


def demo_site(base: Path, db: Path, mail_port: int) -> Path:
    """scripts/demo's site: the demo configuration beside a Pinnacle database (its `root`, "pinnacle") and a physics
    tree ("physics"), a health interval of 2 s (the demo's is 30 s) and its [alerts.mail] on `mail_port` (the demo's
    is 8025); initialised, backed up once and with its admin account, as scripts/demo leaves it before it starts the
    daemon."""
    shutil.copytree(db, base / "pinnacle")
    generate_physics(base / "physics")
    demo = DEMO_CONFIG.read_text(encoding="utf-8")
    assert 'interval = "30s"' in demo and 'host = "127.0.0.1"\nport = 8025\nstarttls = false' in demo
    config = base / "rtvault.toml"
    # a 2 s health interval, and the space checks kept off the host's own disk (the story is about the copy)
    config.write_text(demo.replace('interval = "30s"', f'interval = "{INTERVAL_S}s"\nfree_warn_percent = 0.5\n'
                                                       'free_critical_percent = 0.1')
                      .replace("port = 8025", f"port = {mail_port}")
                      .replace("\nport = 11112\n", f"\nport = {free_port()}\n"), encoding="utf-8")
    rtvault(config, "init")
    rtvault(config, "backup")
    rtvault(config, "user", "add", USER, "--role", "admin", stdin=PASSWORD + "\n")
    return config


def mails(folder: Path) -> list[email.message.EmailMessage]:
    """The e-mails the demo's mailbox filed (a maildir), oldest first."""
    files = sorted((folder / "new").glob("*"), key=lambda p: p.stat().st_mtime_ns) if (folder / "new").is_dir() else []
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files]  # type: ignore


def text_of(message: email.message.EmailMessage) -> str:
    return message.get_content().replace("\r\n", "\n")


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def running(command: list[str], log: Path) -> Iterator[subprocess.Popen]:
    """A process whose output goes to `log`; at the end SIGTERM, then waited for."""
    env = {k: v for k, v in os.environ.items() if k != "RTVAULT_CONFIG"}
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, text=True, env=env)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)


def clear_of_the_schedule(config: Path, margin_s: float = 30) -> None:
    """Return at a time when the demo's `*/2` backup (and `*/10` verify) will not run for `margin_s` seconds: when
    the next even minute is nearer, wait until it has passed and its runs (backup, then replicate) are recorded.
    A replication failed while the copy is away would leave the `jobs` check WARNING until the next one."""
    now = datetime.now().astimezone()
    boundary = now.replace(second=0, microsecond=0) + timedelta(minutes=1 if now.minute % 2 else 2)
    if (boundary - now).total_seconds() > margin_s:
        return
    time.sleep(max(0.0, (boundary - datetime.now().astimezone()).total_seconds()))
    since = boundary.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    wanted = {"backup", "replicate"} | ({"verify"} if boundary.minute % 10 == 0 else set())
    until(lambda: wanted <= {r["job"] for r in rtvault_json(config, "runs") if r["start"] >= since}, timeout=60)


def test_the_demo_proves_it_can_restore_and_says_when_its_copy_is_lost(tmp_path: Path, small_db: Path) -> None:
    base = tmp_path / "demo-data"
    base.mkdir()
    mail_port = free_port()
    mailbox = base / "mail"
    # scripts/demo's mailbox, started as it starts it
    with running([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{mail_port}", "-c",
                  "aiosmtpd.handlers.Mailbox", str(mailbox)], tmp_path / "mail.log"):
        until(lambda: listening(mail_port), timeout=30)
        config = demo_site(base, small_db, mail_port)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        rt = [sys.executable, "-m", "rtvault", "--config", str(config)]
        with running([*rt, "daemon"], tmp_path / "daemon.log") as daemon, \
                running([*rt, "serve", "--host", "127.0.0.1", "--port", str(port)], tmp_path / "serve.log") as server:
            wait_until_up(url, server, tmp_path / "serve.log")

            # A new user sees, within minutes, a drill on the dashboard with its time against the RTO line.
            until(lambda: any(r["job"] == "drill" and r["result"] == "ok" for r in rtvault_json(config, "runs")),
                  timeout=120)  # the daemon catches up the weekly drill at its start
            [drill] = rtvault_json(config, "runs", "--job", "drill")
            patient = next(d for d in drill["summary"]["drills"] if d["kind"] == "patient")  # the check's figure
            back_in = f"a patient back in {patient['seconds']} s (target 10 min)"
            with httpx.Client(base_url=url, follow_redirects=False, timeout=30) as web:
                assert sign_in(web, USER, PASSWORD, "/dashboard").status_code == 303
                until(lambda: dashboard(web)["status"] == "OK", timeout=30)  # the catch-up's runs all recorded
                board = dashboard(web)
                assert board["targets"]["rto_patient_s"] == 600 and board["targets"]["rto_full_s"] == 1800
                assert [j["result"] for j in board["jobs"] if j["job"] == "drill"] == ["ok"]
                said = check(board, "drill")["message"]
                assert back_in in said, said
                chart = web.get("/api/dashboard/chart/drill").json()
                assert chart["rto_patient_s"] == 600
                assert {(d["store"], d["kind"], d["result"]) for d in chart["drills"]} >= {
                    ("primary", "patient", "ok"), ("copy", "patient", "ok")}
                assert patient["seconds"] in [d["seconds"] for d in chart["drills"]]
                page = page_text(web)
                assert site_status(page) == 'class="health health-OK">OK'
                assert back_in in page and "<dt>Remise en service d'un patient (RTO)</dt><dd>10 min</dd>" in page
                svg = web.get("/dashboard/chart/drill.svg")
                assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
                assert ElementTree.fromstring(svg.content).tag == "{http://www.w3.org/2000/svg}svg"
                assert 'id="drill:patient"' in svg.text  # the drills' times
                assert "RTO patient (10 min)" in svg.text  # against the RTO line, labelled
                assert mails(mailbox) == []  # all is well: nothing sent

                # The copy's NAS is gone: the dashboard turns red and an e-mail says so.
                clear_of_the_schedule(config)
                shutil.move(base / "copy", base / "copy-away")
                moved = time.monotonic()
                until(lambda: len(mails(mailbox)) >= 1, timeout=30)
                assert time.monotonic() - moved < 2 * INTERVAL_S + 10  # within an interval or two (and the sending)
                alert = mails(mailbox)[0]
                assert alert["Subject"].startswith("[rtvault] CRITIQUE"), alert["Subject"]
                assert "réplication vers copy" in alert["Subject"] and alert["To"] == "physique@demo.invalid"
                assert "copy cannot be reached" in text_of(alert) and str(base / "copy") in text_of(alert)
                board = dashboard(web)
                assert board["status"] == "CRITICAL"
                assert check(board, "replication:copy")["status"] == "CRITICAL"
                assert [s["status"] for s in board["stores"] if s["name"] == "copy"] == ["CRITICAL"]
                page = page_text(web)
                assert site_status(page) == 'class="health health-CRITICAL">CRITIQUE'
                assert "copy cannot be reached" in page
                assert daemon.poll() is None  # the daemon runs on without its copy

                # The copy is back: a recovery e-mail, and the dashboard green again.
                shutil.move(base / "copy-away", base / "copy")
                until(lambda: len(mails(mailbox)) >= 2, timeout=30)
                recovered = mails(mailbox)[1]["Subject"]
                assert recovered.startswith("[rtvault] RÉTABLI") and "réplication vers copy" in recovered, recovered
                until(lambda: dashboard(web)["status"] == "OK", timeout=10)
                assert site_status(page_text(web)) == 'class="health health-OK">OK'
        assert daemon.returncode == 0, (tmp_path / "daemon.log").read_text()
    log = (tmp_path / "daemon.log").read_text()
    assert "drill: ok" in log and "health: replication:copy OK -> CRITICAL" in log, log
    assert "health: replication:copy CRITICAL -> OK" in log, log

    # The printed procedures: the demo's stores, how to restore a patient, the last drill's figures.
    pdf = tmp_path / "procedures.pdf"
    rtvault(config, "procedure", "--out", pdf)
    text = " ".join("\n".join(page.extract_text() for page in pypdf.PdfReader(pdf).pages).split())
    assert "Centre de démonstration rtvault" in text
    assert "primary" in text and "copie de primary" in text and "Dr Anaïs Lefèvre" in text
    assert "restore --patient <MRN> --to" in text and "Restaurer un patient" in text
    assert f"Dernier exercice de restauration : {drill['start']}, résultat ok" in text
    assert f"{patient['store']} un patient {minutes(patient['seconds'])}" in text


def dashboard(web: httpx.Client) -> dict:
    answer = web.get("/api/dashboard")
    assert answer.status_code == 200, answer.text
    return answer.json()


def check(board: dict, name: str) -> dict:
    return next(c for c in board["checks"] if c["name"] == name)


def page_text(web: httpx.Client) -> str:
    answer = web.get("/dashboard")
    assert answer.status_code == 200, answer.text
    return html.unescape(answer.text)


def site_status(page: str) -> str:
    """The site's state as the dashboard's lead says it: the badge's class and its word."""
    found = re.search(r'<p id="site-status"[^>]*>.*?<span ([^<]*)</span>', page, re.S)
    assert found, page
    return found[1]
