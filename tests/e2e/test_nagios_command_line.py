"""`rtvault health --nagios` given a wrong command line (a typo in Centreon's command definition): the plugin
line UNKNOWN and exit 3, as the Nagios plugin guidelines ask, not exit 2 (CRITICAL) with nothing on stdout."""

from __future__ import annotations

import pytest

from kit.cli import run_cli


@pytest.mark.parametrize(("args", "reason"), [
    (["--nagios", "--warn", "3h"], "No such option '--warn'"),
    (["--nagios", "--json"], "--json and --nagios are two different outputs"),
    (["--nagios", "extra"], "unexpected extra argument (extra)")])
def test_a_wrong_command_line_is_unknown_with_its_reason(args: list[str], reason: str) -> None:
    done = run_cli("health", *args, expect=3)
    assert done.stdout.startswith("RTVAULT UNKNOWN - wrong command line: ") and reason in done.stdout
    assert done.stdout.count("\n") == 1


def test_without_nagios_a_wrong_command_line_is_still_a_usage_error() -> None:
    done = run_cli("health", "--warn", "3h", expect=2)
    assert done.stdout == "" and "No such option '--warn'" in done.stderr
