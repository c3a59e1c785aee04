"""A repeated option is never silently reduced to its last value: every option of every command that takes one
value (or is a flag) is refused when given twice, with a sentence naming it and exit 4, before anything runs;
the options meant to repeat (`restore --patient`) take every value."""

from __future__ import annotations

import click
import pytest

from kit.cli import leaf_commands
from rtvault.cli import cli, main
from rtvault.errors import ExitCode

COMMANDS = leaf_commands(cli)


def _command(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        found = command.get_command(click.Context(command), name)
        assert found is not None, path
        command = found
    return command


def _cases() -> list[tuple[tuple[str, ...], str, bool]]:
    """(where the option is: the root group, a group or a command; its spelling; whether it is a flag) for every
    option taking one value or none; each group's own options once."""
    cases, seen = [], set()
    for path in COMMANDS:
        for depth in range(len(path) + 1):
            where = path[:depth]
            if where in seen:
                continue
            seen.add(where)
            for param in _command(where).params:
                if isinstance(param, click.Option) and param.expose_value and not param.multiple:
                    cases += [(where, spelling, param.is_flag) for spelling in [*param.opts, *param.secondary_opts]]
    return cases


CASES = _cases()


def test_every_command_was_walked() -> None:
    assert len(COMMANDS) > 40 and len(CASES) > 100
    assert (("restore",), "--store", False) in CASES and (("archive", "ingest"), "--json", True) in CASES


@pytest.mark.parametrize(("where", "option", "flag"), CASES, ids=lambda v: " ".join(v) if isinstance(v, tuple)
                         else str(v))
def test_an_option_given_twice_is_refused(where: tuple[str, ...], option: str, flag: bool,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    twice = [option, option] if flag else [option, "first", option, "second"]
    # the rest of the command line (a subcommand, arguments) is never reached: the refusal comes first
    path = COMMANDS[[c[:len(where)] for c in COMMANDS].index(where)]
    with pytest.raises(SystemExit) as done:
        main([*where, *twice, *path[len(where):]])
    error = capsys.readouterr().err
    assert done.value.code == ExitCode.INPUT, error
    assert f"{option}" in error and "was given 2 times: give it once" in error, error
    assert "Traceback" not in error or option == "--debug"  # --debug shows every error's traceback


def test_an_option_meant_to_repeat_takes_every_value(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:  # no configuration here: every --patient is taken, then the config asked
        main(["--config", str(tmp_path / "none.toml"), "restore", "--patient", "A", "--patient", "B", "--to",
              str(tmp_path / "out")])
    assert done.value.code == ExitCode.CONFIG, capsys.readouterr().err
