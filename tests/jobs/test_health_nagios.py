"""`rtvault health --nagios`: the plugin line `RTVAULT <STATUS> - <summary> | <perfdata>` as the Nagios plugin
guidelines define it, whatever the checks' names and messages hold."""

from __future__ import annotations

import re
from pathlib import Path

from kit.config import write_config
from rtvault.config import load
from rtvault.jobs.health import HealthReport, Status
from rtvault.jobs.health_nagios import label, nagios_line, number, perfdata, unknown_line
from rtvault.jobs.health_types import Check

# One perfdata item: a quoted label (a quote doubled inside), a value with its unit or U, then up to 4 levels.
ITEM = r"'(?:[^'=]|'')+'=(?:-?[0-9.]+(?:s|%|B|c)?|U)(?:;[0-9.:~@-]*){0,4}"
LINE = re.compile(rf"RTVAULT (OK|WARNING|CRITICAL|UNKNOWN) - [^|\n]+ \| {ITEM}(?: {ITEM})*")


def _config(tmp_path: Path):
    return load(write_config(tmp_path / "rtvault.toml", stores={"primary": tmp_path / "store"}))


def test_the_line_of_a_healthy_site(tmp_path):
    report = HealthReport((Check("backup:pinnacle", Status.OK, 3600, 10800.0, "fine", "s"),
                           Check("space:primary", Status.OK, 42.25, 15.0, "fine", "%"),
                           Check("daemon", Status.OK, 12, 240.0, "fine", "s"),
                           Check("copies", Status.OK, 0, 0.0, "fine")), "t")
    line = nagios_line(_config(tmp_path), report)
    assert line == ("RTVAULT OK - 4 checks OK | 'backup:pinnacle'=3600s;10800;21600;0 "
                    "'space:primary'=42.25%;15:;5:;0;100 'daemon'=12s;;240;0 'copies'=0;0;;0")
    assert LINE.fullmatch(line)


def test_the_summary_names_what_is_wrong_worst_first(tmp_path):
    report = HealthReport((Check("verify:primary", Status.WARNING, None, 2678400.0, "late verification", "s"),
                           Check("backup:pinnacle", Status.CRITICAL, 25200, 21600.0, "backups have stopped", "s"),
                           Check("jobs", Status.UNKNOWN, None, None, "catalog unreadable")), "t")
    line = nagios_line(_config(tmp_path), report)
    assert line.startswith("RTVAULT CRITICAL - backup:pinnacle CRITICAL: backups have stopped; jobs UNKNOWN: catalog "
                           "unreadable; verify:primary WARNING: late verification | ")
    assert "'verify:primary'=U;2678400;3024000;0" in line and "'jobs'=U;0;;0" in line
    assert LINE.fullmatch(line)


def test_hostile_store_names_and_messages_stay_one_valid_line(tmp_path):
    hostile = "nas'1=a|b\nc d"
    report = HealthReport((Check(f"space:{hostile}", Status.WARNING, 9.5, 15.0,
                                 "9.5 % free | on\nthe disk\x1b[31m of it", "%"),), "t")
    line = nagios_line(_config(tmp_path), report)
    assert "\n" not in line and "\x1b" not in line and line.count("|") == 1
    assert label(f"space:{hostile}") == "'space:nas''1_a_b_c d'"
    assert line.endswith(" | 'space:nas''1_a_b_c d'=9.5%;15:;5:;0;100")
    assert "9.5 % free / on the disk [31m of it" in line
    assert LINE.fullmatch(line)


def test_numbers_have_no_exponent():
    assert [number(v) for v in (0, 3.0, 12.345, 1e12, 0.5)] == ["0", "3", "12.35", "1000000000000", "0.5"]


def test_the_patient_count_warns_below_its_level(tmp_path):
    check = Check("source:pinnacle", Status.OK, 120, 96.0, "fine")
    assert perfdata(_config(tmp_path), check) == "'source:pinnacle'=120;96:;;0"


def test_a_check_that_could_not_run_is_one_unknown_line():
    assert unknown_line("/etc/rtvault.toml: invalid TOML:\nline 3 | oops") == \
        "RTVAULT UNKNOWN - /etc/rtvault.toml: invalid TOML: line 3 / oops"
