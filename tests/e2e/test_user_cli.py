"""`rtvault user`, `rtvault token` and `rtvault audit` run as an administrator runs them: in a subprocess."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import select
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kit.cli import run_cli
from kit.config import write_config
from rtvault.catalog import open_catalog
from rtvault.catalog.audit import record
from rtvault.catalog.users import authenticate, token_user
from rtvault.config.web import Ldap

PASSWORD = "Éloïse-N'Diaye-2026"


def rtvault(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`rtvault ARGS` in `cwd`, reading `stdin`; the caller checks the exit code."""
    return run_cli(*args, expect=None, cwd=cwd, stdin=stdin, timeout=60)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "pinnacle").mkdir()
    write_config(tmp_path / "rtvault.toml", root="pinnacle", stores={"primary": "store"},
                 catalog={"url": "sqlite:///catalog.sqlite"})
    return tmp_path


def catalog(site: Path):
    return open_catalog(f"sqlite:///{site / 'catalog.sqlite'}")


def test_user_round_trip(site: Path) -> None:
    added = rtvault("user", "add", "e.ndiaye", "--role", "operator", "--json", cwd=site, stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["role"] == "operator"
    assert rtvault("user", "add", "hlefevre", "--role", "viewer", "--ldap", cwd=site).returncode == 0
    short = rtvault("user", "add", "x", "--role", "viewer", cwd=site, stdin="court\n")
    assert short.returncode == 4 and "at least 12 characters" in short.stderr and "Traceback" not in short.stderr
    again = rtvault("user", "add", "e.ndiaye", "--role", "admin", cwd=site, stdin=PASSWORD + "\n")
    assert again.returncode == 4 and "already exists" in again.stderr
    assert rtvault("user", "role", "e.ndiaye", "admin", cwd=site).stdout == "e.ndiaye is now admin\n"
    assert rtvault("user", "passwd", "e.ndiaye", cwd=site, stdin="un autre mot de passe\n").returncode == 0
    with catalog(site) as db:
        assert authenticate(db, Ldap(), "e.ndiaye", PASSWORD) is None
        assert authenticate(db, Ldap(), "e.ndiaye", "un autre mot de passe").role == "admin"
    assert rtvault("user", "disable", "hlefevre", cwd=site).returncode == 0
    listed = json.loads(rtvault("user", "list", "--json", cwd=site).stdout)["users"]
    assert [(u["name"], u["role"], u["source"], u["disabled"]) for u in listed] == [
        ("e.ndiaye", "admin", "local", False), ("hlefevre", "viewer", "ldap", True)]
    assert rtvault("user", "enable", "hlefevre", cwd=site).returncode == 0
    assert "2 user(s)" in rtvault("user", "list", cwd=site).stdout


def test_token_round_trip(site: Path) -> None:
    rtvault("user", "add", "script", "--role", "viewer", cwd=site, stdin=PASSWORD + "\n")
    created = rtvault("token", "create", "--user", "script", "--label", "export de nuit", cwd=site)
    token = created.stdout.strip()
    assert created.returncode == 0 and token.startswith("rtv_")
    with catalog(site) as db:
        assert token_user(db, token).name == "script"
    [listed] = json.loads(rtvault("token", "list", "--json", cwd=site).stdout)["tokens"]
    assert listed["label"] == "export de nuit" and listed["last_used"] and token not in json.dumps(listed)
    revoked = rtvault("token", "revoke", listed["id"], "--json", cwd=site)
    assert json.loads(revoked.stdout)["revoked"][0]["id"] == listed["id"]
    with catalog(site) as db:
        assert token_user(db, token) is None
    assert rtvault("token", "revoke", listed["id"], cwd=site).returncode == 4
    assert rtvault("token", "create", "--user", "nobody", cwd=site).returncode == 4
    assert rtvault("token", "revoke", cwd=site).returncode == 2


def test_audit_shows_cli_actions_and_filters(site: Path) -> None:
    rtvault("user", "add", "c.roux", "--role", "viewer", cwd=site, stdin=PASSWORD + "\n")
    rtvault("token", "create", "--user", "c.roux", cwd=site)
    with catalog(site) as db:
        record(db, user="c.roux", address="10.0.0.8", action="view", patient="3f2a9c0e11b4d7a8")
        record(db, user="c.roux", address="10.0.0.8", action="search", detail="=1+1")
    everything = json.loads(rtvault("audit", "--json", cwd=site).stdout)
    assert everything["total"] == 4
    assert [e["action"] for e in everything["entries"]] == ["search", "view", "token_create", "user_add"]
    assert {e["address"] for e in everything["entries"][2:]} == {f"cli@{socket.gethostname()}"}  # from the journal
    view = json.loads(rtvault("audit", "--patient", "3f2a9c0e11b4d7a8", "--json", cwd=site).stdout)
    assert view["total"] == 1 and view["entries"][0]["user"] == "c.roux"
    text = rtvault("audit", "--user", "c.roux", "--limit", "1", cwd=site).stdout
    assert "search" in text and "1 of 2 entries" in text
    rows = list(csv.reader(io.StringIO(rtvault("audit", "--csv", "--action", "search", cwd=site).stdout)))
    assert rows[0][0] == "id" and rows[1][6] == "'=1+1"
    assert rtvault("audit", "--since", "hier", cwd=site).returncode == 4
    assert rtvault("audit", "--csv", "--json", cwd=site).returncode == 2


def test_audit_until_the_last_date_is_an_input_error(site: Path) -> None:
    answer = rtvault("audit", "--until", "9999-12-31", cwd=site)
    assert answer.returncode == 4 and "until '9999-12-31' is out of range" in answer.stderr
    assert "Traceback" not in answer.stderr


def test_password_prompt_is_hidden_and_asked_twice(site: Path) -> None:
    pid, fd = pty.fork()
    if pid == 0:  # the child: rtvault at a terminal
        os.chdir(site)
        os.execv(sys.executable, [sys.executable, "-m", "rtvault", "user", "add", "tty.user", "--role", "viewer"])
    seen = _answer(fd, [b"Password: ", b"Repeat for confirmation: "], PASSWORD)
    _, status = os.waitpid(pid, 0)
    seen += _drain(fd)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert PASSWORD.encode() not in seen and b"added tty.user: viewer, local" in seen
    with catalog(site) as db:
        assert authenticate(db, Ldap(), "tty.user", PASSWORD) is not None


def _answer(fd: int, prompts: list[bytes], answer: str) -> bytes:
    seen = b""
    for prompt in prompts:
        while not seen.endswith(prompt):
            assert select.select([fd], [], [], 30)[0], f"no {prompt!r} within 30 s: {seen!r}"
            chunk = os.read(fd, 1024)
            assert chunk, seen
            seen += chunk
        os.write(fd, answer.encode() + b"\n")
    return seen


def _drain(fd: int) -> bytes:
    seen = b""
    try:
        while chunk := os.read(fd, 1024):
            seen += chunk
    except OSError:  # the child closed the terminal
        pass
    return seen


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_a_new_catalog_holding_password_hashes_is_owner_only(site: Path, umask: int) -> None:
    run_cli("user", "add", "e.ndiaye", "--role", "admin", cwd=site, stdin=PASSWORD + "\n", timeout=60, umask=umask)
    made = sorted(site.glob("catalog.sqlite*"))
    assert made and {p.name: p.stat().st_mode & 0o777 for p in made} == {p.name: 0o600 for p in made}
    (site / "catalog.sqlite").chmod(0o640)  # an administrator's choice is kept
    assert rtvault("user", "list", cwd=site).returncode == 0
    assert (site / "catalog.sqlite").stat().st_mode & 0o777 == 0o640


def test_users_limited_to_sites(site: Path) -> None:
    added = rtvault("user", "add", "m.roux", "--role", "viewer", "--site", "Site A", "--site", "Site B", "--site",
                    "Site A", "--json", cwd=site, stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["sites"] == ["Site A", "Site B"]
    admin = rtvault("user", "add", "boss", "--role", "admin", "--site", "Site A", cwd=site, stdin=PASSWORD + "\n")
    assert admin.returncode == 4 and "an admin sees every site" in admin.stderr and "Traceback" not in admin.stderr
    assert rtvault("user", "add", "any", "--role", "operator", cwd=site, stdin=PASSWORD + "\n").returncode == 0
    promoted = rtvault("user", "role", "m.roux", "admin", cwd=site)
    assert promoted.returncode == 4 and "user sites m.roux" in promoted.stderr
    assert rtvault("user", "sites", "m.roux", "--site", "Site B", cwd=site).stdout == \
        "m.roux now sees the patients of Site B\n"
    listed = json.loads(rtvault("user", "list", "--json", cwd=site).stdout)["users"]
    assert [(u["name"], u["sites"]) for u in listed] == [("any", []), ("m.roux", ["Site B"])]
    text = rtvault("user", "list", cwd=site).stdout
    assert "sites Site B" in text and "every site" in text
    assert rtvault("user", "sites", "m.roux", cwd=site).stdout == "m.roux now sees the patients of every site\n"
    assert rtvault("user", "role", "m.roux", "admin", cwd=site).returncode == 0
    assert rtvault("user", "sites", "nobody", "--site", "Site A", cwd=site).returncode == 4
    changes = json.loads(rtvault("audit", "--action", "user_sites", "--json", cwd=site).stdout)["entries"]
    assert [(e["result"][:6], json.loads(e["detail"]).get("sites", [])) for e in changes] == [
        ("failed", ["Site A"]), ("ok", []), ("ok", ["Site B"])]  # newest first, from the journal of actions
