"""Every command is documented: in the README, with examples in its --help, and exit codes in both."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kit.cli import leaf_commands
from rtvault.cli import cli
from rtvault.errors import EXIT_CODE_MEANINGS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


COMMANDS = leaf_commands(cli)


def test_there_are_commands():
    assert ("inspect",) in COMMANDS
    assert len(COMMANDS) >= 5


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_command_is_in_readme_and_its_help_shows_examples(command):
    assert f"rtvault {' '.join(command)}" in README
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.output
    assert f"rtvault {' '.join(command)}" in result.output


def test_exit_codes_are_documented_in_help_and_readme():
    result = CliRunner().invoke(cli, ["--help"])
    for code, meaning in EXIT_CODE_MEANINGS.items():
        assert f"{int(code)}" in result.output and meaning in result.output
        assert f"| {int(code)} |" in README
