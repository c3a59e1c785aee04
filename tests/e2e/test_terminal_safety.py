"""Terminal escape injection: what comes from outside (a login name typed at the sign-in page, a patient field in
a Pinnacle file, a file or archive member name) is shown escaped by every command, never obeyed by the terminal.

A visitor who signs in as `admin ESC]0;... BEL CR ...` or a Pinnacle file whose LastName holds `ESC[2J` must
not be able to retitle, clear or rewrite what an administrator reads. Each command runs in a subprocess, as
an administrator runs it; its raw bytes are searched for control characters.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from kit.config import write_config
from kit.files import set_last_name
from rtvault.catalog import open_catalog
from rtvault.catalog.audit import record
from rtvault.demo import generate_database

# An OSC that retitles the window, a CSI that clears the screen, a CR that rewrites the line, an 8-bit CSI, and
# rich markup: all fit in a latin-1 Pinnacle file.
EVIL_NAME = "Evil\x1b]0;pwned\x07\x1b[2J\rForged\x9b31m[bold red]x[/bold red]"
# A login name also carries a line feed (a forged audit row) and a right-to-left override
EVIL_LOGIN = "admin\x1b]0;pwned\x07\x1b[2J\r\n2026-11-30T00:00:00Z  root forged\u202etxt.exe"
EVIL_MEMBER = "evil\x1b]0;pwned\x07\x1b[2J\r\u202etxt.exe"
# Every C0 control but LF (lines end with it), DEL, C1, bidi embeddings, overrides and isolates
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def rtvault(cwd: Path, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[bytes]:
    env = {key: value for key, value in os.environ.items() if key != "RTVAULT_CONFIG"}
    done = subprocess.run([sys.executable, "-m", "rtvault", *args], cwd=cwd, env=env, capture_output=True,
                          timeout=120)
    if expect is not None:
        assert done.returncode == expect, done.stderr.decode("utf-8", "replace")
    return done


def assert_safe(done: subprocess.CompletedProcess[bytes]) -> str:
    """stdout + stderr decoded, after checking that no byte there is a control a terminal would obey."""
    text = done.stdout.decode("utf-8") + done.stderr.decode("utf-8")
    assert b"Traceback" not in done.stderr, text
    found = RAW.findall(text)
    assert not found, f"raw control characters {found!r} in:\n{text!r}"
    return text


def _evil_tar(db: Path, patient: str, out: Path) -> None:
    """A Pinnacle tar of one patient, with a member whose name carries escapes, cut short inside that member."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(db / patient.split("/")[0] / "Institution", arcname="Institution")
        tar.add(db / patient, arcname=patient)
        info = tarfile.TarInfo(f"{patient}/{EVIL_MEMBER}")
        info.size = 8192
        tar.addfile(info, fileobj=__import__("io").BytesIO(b"x" * info.size))
        cut = tar.offset - 8192  # the last member's data ends where the archive's end blocks begin
    out.write_bytes(out.read_bytes()[:cut + 1000])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("terminal")
    generate_database(root / "pinnacle", patients=3, seed=5, image_mb=0.05)
    patients = sorted(p.relative_to(root / "pinnacle").as_posix()
                      for p in (root / "pinnacle").glob("Institution_*/Mount_*/Patient_*"))
    set_last_name(root / "pinnacle" / patients[0] / "Patient", EVIL_NAME)
    write_config(root / "rtvault.toml", root="pinnacle", stores={"primary": "store"},
                 catalog={"url": "sqlite:///catalog.sqlite"})
    rtvault(root, "init")
    rtvault(root, "backup")
    _evil_tar(root / "pinnacle", patients[0], root / f"old{EVIL_MEMBER}.tar")
    rtvault(root, "archive", "ingest", f"old{EVIL_MEMBER}.tar", expect=9)  # cut short: partial
    with open_catalog(f"sqlite:///{root / 'catalog.sqlite'}") as db:
        record(db, user=EVIL_LOGIN, address="203.0.113.9", action="login_failed", detail={"name": EVIL_LOGIN},
               result="refused")
    return root


def test_inspect_escapes_patient_fields_and_markup(site: Path) -> None:
    text = assert_safe(rtvault(site, "inspect", "pinnacle"))
    assert "Evil\\x1b]0;pwned\\x07\\x1b[2J\\rForged" in text  # rich may wrap the rest of the cell
    assert "x[/bold red]" in text  # shown, not read as markup


def test_search_escapes_patient_names(site: Path) -> None:
    text = assert_safe(rtvault(site, "search", "--last-name", "evil"))
    assert "Evil\\x1b]0;pwned\\x07\\x1b[2J\\rForged\\x9b31m" in text


def test_snapshots_of_a_patient_escape_the_name(site: Path) -> None:
    found = json.loads(rtvault(site, "search", "--last-name", "evil", "--json").stdout)["patients"]
    text = assert_safe(rtvault(site, "snapshots", "--patient", found[0]["path"]))
    assert "Evil\\x1b]0;pwned\\x07\\x1b[2J\\rForged" in text


def test_audit_escapes_the_login_name_and_cannot_forge_a_row(site: Path) -> None:
    text = assert_safe(rtvault(site, "audit"))
    assert "admin\\x1b]0;pwned\\x07\\x1b[2J\\r\\n2026-11-30T00:00:00Z  root forged\\u202etxt.exe" in text
    assert not any(line.startswith("2026-11-30T00:00:00Z") for line in text.splitlines())


def test_audit_csv_escapes_controls_and_defuses_formulas(site: Path) -> None:
    with open_catalog(f"sqlite:///{site / 'catalog.sqlite'}") as db:
        record(db, user="=HYPERLINK(\"http://x\")", address="cli", action="login_failed", result="refused")
    done = rtvault(site, "audit", "--csv")
    rows = done.stdout.decode("utf-8").replace("\r\n", "\n")
    assert not RAW.findall(rows), rows
    assert "admin\\x1b]0;pwned\\x07" in rows and "'=HYPERLINK" in rows


def test_json_output_stays_json_and_escapes_every_control(site: Path) -> None:
    done = rtvault(site, "audit", "--json")
    assert_safe(done)
    users = [e["user"] for e in json.loads(done.stdout)["entries"]]
    assert EVIL_LOGIN in users  # the same string once decoded
    done = rtvault(site, "inspect", "pinnacle", "--json")
    assert_safe(done)
    assert EVIL_NAME in [p["last_name"] for p in json.loads(done.stdout)["patients"]]


def test_archive_list_and_show_escape_file_member_and_patient_names(site: Path) -> None:
    listed = assert_safe(rtvault(site, "archive", "list"))
    assert "oldevil\\x1b]0;pwned\\x07\\x1b[2J\\r\\u202etxt.exe.tar" in listed
    archive_id = json.loads(rtvault(site, "archive", "list", "--json").stdout)["archives"][-1]["id"]
    shown = assert_safe(rtvault(site, "archive", "show", archive_id[:12]))
    assert "Evil\\x1b]0;pwned\\x07\\x1b[2J\\rForged" in shown
    assert "evil\\x1b]0;pwned\\x07\\x1b[2J\\r\\u202etxt.exe: data cut short" in shown


def test_error_messages_are_escaped(site: Path) -> None:
    missing = rtvault(site, "inspect", "no\x1b]0;pwned\x07\u202eway", expect=4)
    assert "no\\x1b]0;pwned\\x07\\u202eway" in assert_safe(missing)
    as_json = rtvault(site, "inspect", "no\x1b]0;pwned\x07\u202eway", "--json", expect=4)
    assert_safe(as_json)
    assert "no\x1b]0;pwned\x07\u202eway" in json.loads(as_json.stdout)["error"]["message"]
    usage = rtvault(site, "search", "--no\x1b]0;pwned\x07\u202eway", expect=2)
    assert "--no\\x1b]0;pwned\\x07\\u202eway" in assert_safe(usage)
    debug = rtvault(site, "--debug", "inspect", "no\x1b]0;pwned\x07\u202eway", expect=4)
    assert "Traceback" in debug.stderr.decode() and "no\\x1b]0;pwned\\x07\\u202eway" in debug.stderr.decode()
    assert not RAW.findall(debug.stderr.decode())


def test_ingest_problems_name_the_member_escaped(site: Path) -> None:
    """Problems (warnings name files and members) are escaped too: the same damaged tar ingested again."""
    text = assert_safe(rtvault(site, "archive", "ingest", f"old{EVIL_MEMBER}.tar", expect=9))
    assert "already stored" in text and "\\u202etxt.exe: data cut short" in text


def test_no_command_prints_around_the_safe_echo() -> None:
    """Every command prints through rtvault.cli.output (echo, emit_json ...), which makes text safe."""
    cli = Path(__file__).resolve().parents[2] / "src" / "rtvault" / "cli"
    for module in cli.glob("*.py"):
        if module.name == "output.py":
            continue
        source = module.read_text(encoding="utf-8")
        assert not re.search(r"\bclick\.echo\(|\bclick\.secho\(|(?<![.\w])print\(", source), module.name
