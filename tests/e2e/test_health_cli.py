"""`rtvault health` as Centreon, a script and a person run it: `--nagios` prints exactly one plugin line and exits 0,
1, 2 or 3 (3 also when the configuration or the catalog is what failed); plain and `--json` exit 0 or 7."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from kit.cli import run_cli
from kit.config import write
from kit.health import HealthSite, second
from rtvault.demo import generate_database

ITEM = r"'(?:[^'=]|'')+'=(?:-?[0-9.]+(?:s|%)?|U)(?:;[0-9.:]*){0,4}"
LINE = re.compile(rf"RTVAULT (OK|WARNING|CRITICAL|UNKNOWN) - [^|\n]+ \| {ITEM}(?: {ITEM})*\n")
QUIET = {"daemon": False, "free_warn_percent": 0, "free_critical_percent": 0}  # no daemon here; any disk will do


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> HealthSite:
    """Backed up two hours ago, replicated, the catalog in step."""
    base = tmp_path_factory.mktemp("health-cli")
    generate_database(base / "generated", patients=4, seed=3, image_mb=0.1)
    made = HealthSite.make(base / "site", base / "generated", health=QUIET)
    made.backup(second() - timedelta(hours=2))
    made.replicate()
    made.refresh()
    return made


def _config(site: HealthSite, name: str, **health: object) -> Path:
    """Another configuration of the same site, with these [health] settings over QUIET."""
    text = site.config_path.read_text()
    extra = "".join(f"{key} = {json.dumps(value)}\n" for key, value in health.items())
    text = text.replace("[health]\n", "[health]\n" + extra) if health else text
    return write(site.base / f"{name}.toml", text)


def nagios(config: Path, expect: int) -> str:
    done = run_cli("health", "--nagios", config=config, expect=expect)
    assert done.stderr == "" and LINE.fullmatch(done.stdout), done.stdout + done.stderr
    return done.stdout


def test_ok_exits_0(site):
    line = nagios(site.config_path, 0)
    assert line.startswith("RTVAULT OK - 15 checks OK | 'backup:pinnacle'=72")
    assert "'space:primary'=" in line and "'copies'=0;0;;0" in line
    assert run_cli("health", config=site.config_path).stdout.startswith("rtvault health: OK (15 of 15 checks OK")
    data = json.loads(run_cli("health", "--json", config=site.config_path).stdout)
    assert data["status"] == "OK" and len(data["checks"]) == 15


def test_warning_exits_1(site):
    line = nagios(_config(site, "warn", backup_warn_age="1h"), 1)
    assert line.startswith("RTVAULT WARNING - backup:pinnacle WARNING: last backup of pinnacle 2h 00m ago")
    assert "'backup:pinnacle'=72" in line and ";3600;21600;0" in line


def test_critical_exits_2_and_plain_exits_7(site):
    config = _config(site, "critical", backup_max_age="1h", backup_warn_age="30m")
    line = nagios(config, 2)
    assert line.startswith("RTVAULT CRITICAL - backup:pinnacle CRITICAL: ") and "backups have stopped" in line
    text = run_cli("health", config=config, expect=7).stdout
    assert text.splitlines()[1].startswith("CRITICAL backup:pinnacle: last backup of pinnacle 2h 00m ago")
    assert json.loads(run_cli("health", "--json", config=config, expect=7).stdout)["status"] == "CRITICAL"


def test_unknown_exits_3_when_the_catalog_cannot_be_read(site, tmp_path):
    broken = tmp_path / "broken.sqlite"
    broken.write_bytes(b"not a database, " * 300)
    text = site.config_path.read_text().replace(str(site.base / "catalog.sqlite"), str(broken))
    line = nagios(write(tmp_path / "rtvault.toml", text), 3)
    assert line.startswith("RTVAULT UNKNOWN - copies UNKNOWN: cannot count the copies: catalog ")


@pytest.mark.parametrize(("text", "said"), [
    (None, "configuration file not found"),
    ("[health]\nbackup_max_age = \"six hours\"\n", "health.backup_max_age: must be a duration")])
def test_unknown_exits_3_on_a_configuration_error(tmp_path, text, said):
    config = tmp_path / "rtvault.toml"
    if text is not None:
        write(config, text)
    done = run_cli("health", "--nagios", config=config, expect=3)
    assert done.stdout.startswith("RTVAULT UNKNOWN - ") and said in done.stdout, done.stdout
    assert done.stdout.count("\n") == 1 and done.stderr == ""


def test_json_and_nagios_together_are_a_usage_error(site):
    done = run_cli("health", "--json", "--nagios", config=site.config_path, expect=3)  # UNKNOWN for Nagios
    assert "two different outputs" in done.stderr and done.stdout.startswith("RTVAULT UNKNOWN - wrong command line")
