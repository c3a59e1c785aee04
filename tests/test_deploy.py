"""The systemd deployment in deploy/ as an administrator installs it: `systemd-analyze verify` has nothing to say
about either unit, the hardening the issue asks for is there with the paths of `rtvault config example`,
`systemd-analyze security` rates each unit OK, and sysusers.d creates the rtvault user. Every check is also run on
a broken copy, so that it can fail."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from rtvault.config import example_toml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
COMMANDS = {"rtvault-daemon.service": "daemon", "rtvault-web.service": "serve"}
UNITS = tuple(COMMANDS)
INSTALLED = "/opt/rtvault/bin/rtvault"  # where the units expect rtvault (README: "Installation (production)")

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd is not installed (scripts/system-packages.sh installs it)")


def placed(tmp_path: Path, name: str) -> Path:
    """The unit copied to `tmp_path`, its ExecStart running this test's rtvault: verify checks that the program
    exists."""
    text = (DEPLOY / name).read_text()
    assert INSTALLED in text, f"{name} no longer runs {INSTALLED}"
    unit = tmp_path / name
    unit.write_text(text.replace(INSTALLED, f"{sys.executable} -m rtvault"))
    return unit


def analyze(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", *map(str, args)], capture_output=True, text=True, timeout=60)


def service(name: str) -> dict[str, list[str]]:
    """The [Service] section of a unit: each key with its values in order (a key may be given several times)."""
    section, values = "", {}
    for line in (DEPLOY / name).read_text().splitlines():
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


@pytest.mark.parametrize("name", UNITS)
def test_verify_finds_nothing_to_say(tmp_path: Path, name: str) -> None:
    done = analyze("verify", placed(tmp_path, name))
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@pytest.mark.parametrize(("change", "said"), [
    (("ProtectSystem=strict", "ProtectSystm=strict"), "Unknown key 'ProtectSystm'"),
    (("KillMode=mixed", "KillMode=gently"), "Failed to parse kill mode"),
    ((f"ExecStart={sys.executable}", "ExecStart=/opt/rtvault/bin/missing"), "is not executable"),
])
def test_verify_names_what_is_broken(tmp_path: Path, change: tuple[str, str], said: str) -> None:
    unit = placed(tmp_path, "rtvault-daemon.service")
    old, new = change
    assert old in unit.read_text()
    unit.write_text(unit.read_text().replace(old, new))
    done = analyze("verify", unit)
    assert said in done.stdout + done.stderr


@pytest.mark.parametrize("name", UNITS)
def test_hardening_is_there(name: str) -> None:
    unit = service(name)
    expected = {"User": ["rtvault"], "Group": ["rtvault"], "NoNewPrivileges": ["yes"], "ProtectSystem": ["strict"],
                "PrivateTmp": ["yes"], "ProtectHome": ["yes"], "CapabilityBoundingSet": [""],
                "ProtectKernelTunables": ["yes"], "ProtectKernelModules": ["yes"], "ProtectKernelLogs": ["yes"],
                "RestrictAddressFamilies": ["AF_UNIX AF_INET AF_INET6"], "Restart": ["on-failure"],
                "StateDirectory": ["rtvault"]}
    assert {key: unit.get(key) for key in expected} == expected
    assert unit["ExecStart"] == [f"{INSTALLED} --config /etc/rtvault/rtvault.toml {COMMANDS[name]}"]


def test_only_the_configured_folders_are_writable() -> None:
    """The example configuration's folders: the daemon writes its state (/var/lib/rtvault, the StateDirectory),
    the store and the inbox and only reads Pinnacle; the web server writes the restore folder, never a store."""
    example = tomllib.loads(example_toml())
    assert example["daemon"]["state_dir"] == "/var/lib/rtvault"
    daemon, web = service("rtvault-daemon.service"), service("rtvault-web.service")
    assert daemon["ReadWritePaths"] == ["-" + example["stores"]["primary"]["path"], "-" + example["archive"]["inbox"]]
    assert daemon["ReadOnlyPaths"] == ["-" + example["source"]["pinnacle"]["root"]]
    assert web["ReadWritePaths"] == ["-" + example["web"]["restore_dir"]]
    assert daemon["KillMode"] == ["mixed"]  # SIGTERM to the daemon alone: it brings its job to a safe point
    minutes = re.fullmatch(r"(\d+)min", daemon["TimeoutStopSec"][0])
    assert minutes and int(minutes[1]) >= 10


@pytest.mark.parametrize("name", UNITS)
def test_security_rates_each_unit_ok(tmp_path: Path, name: str) -> None:
    """`systemd-analyze security` exposure 2.0 at most (of 10; "OK"); the same unit without its hardening is
    refused."""
    unit = placed(tmp_path, name)
    done = analyze("security", "--offline=yes", "--threshold=20", unit)
    assert done.returncode == 0, done.stdout
    assert "# Hardening" in unit.read_text()
    (tmp_path / "bare").mkdir()
    bare = tmp_path / "bare" / name
    bare.write_text(unit.read_text().split("# Hardening")[0] + "\n[Install]\nWantedBy=multi-user.target\n")
    assert analyze("verify", bare).returncode == 0
    assert analyze("security", "--offline=yes", "--threshold=20", bare).returncode != 0


def test_sysusers_creates_a_system_user_without_login(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    config = (DEPLOY / "sysusers.d" / "rtvault.conf").read_text()
    done = subprocess.run(["systemd-sysusers", f"--root={tmp_path}", "-"], input=config, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    user = next(line for line in (tmp_path / "etc/passwd").read_text().splitlines() if line.startswith("rtvault:"))
    _, _, uid, gid, _, home, shell = user.split(":")
    assert (int(uid) < 1000, home, shell) == (True, "/var/lib/rtvault", "/usr/sbin/nologin")
    assert f"rtvault:x:{gid}:" in (tmp_path / "etc/group").read_text()
    broken = subprocess.run(["systemd-sysusers", f"--root={tmp_path}", "-"], input=config + "x rtvault\n",
                            capture_output=True, text=True, timeout=60)
    assert broken.returncode != 0 and "Unknown command type 'x'" in broken.stderr
