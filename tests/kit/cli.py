"""The `rtvault` command as a user runs it: a real subprocess, its exit code and its output checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import click


def run_cli(*args: str | Path, expect: int | None = 0, timeout: float = 120, cwd: Path | None = None,
            stdin: str | None = None, env: Mapping[str, str] | None = None, config: Path | None = None,
            via: Sequence[str] = (), umask: int = -1) -> subprocess.CompletedProcess[str]:
    """`rtvault ARGS` in a real subprocess (`rtvault --config CONFIG ARGS` when given a configuration), run
    through the `via` command when there is one (setpriv, for a user without root's read capabilities).

    It runs in `cwd`, reads `stdin` (when given), with the caller's environment less $RTVAULT_CONFIG, 200
    columns and `env` on top, and with `umask` (when given). Fails the test when a traceback or an internal
    error leaked out and, unless `expect` is None, when the exit code is not `expect`."""
    command = [*via, sys.executable, "-m", "rtvault", *(["--config", str(config)] if config else []),
               *map(str, args)]
    environment = {key: value for key, value in os.environ.items() if key != "RTVAULT_CONFIG"}
    environment.update({"COLUMNS": "200", **(env or {})})
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd, input=stdin,
                          env=environment, umask=umask)
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert "internal error" not in done.stderr, output
    if expect is not None:
        typed = " ".join(map(str, args))
        assert done.returncode == expect, f"rtvault {typed}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def first_json(text: str) -> dict:
    """The first JSON document printed (a failing command may print an error document after it)."""
    return json.JSONDecoder().raw_decode(text.lstrip())[0]


def rtvault(config: Path | None, *args: str | Path, **options: object) -> subprocess.CompletedProcess[str]:
    """`rtvault --config CONFIG ARGS` (without `--config` when CONFIG is None); run_cli's options."""
    return run_cli(*args, config=config, **options)  # type: ignore[arg-type]


def rtvault_json(config: Path | None, *args: str | Path, **options: object) -> dict:
    """`rtvault --config CONFIG ARGS --json`'s standard output, decoded (one JSON document, nothing else)."""
    return json.loads(rtvault(config, *args, "--json", **options).stdout)


class Operator:
    """`rtvault` as an operator types it in a working directory (no --config: the one found there); every output
    is kept, for tests that look at them all."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.outputs: list[str] = []

    def run(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        done = run_cli(*args, expect=None, cwd=self.cwd)
        self.outputs.append(done.stdout + done.stderr)
        assert done.returncode == expect, f"rtvault {' '.join(args)}: exit {done.returncode}\n{done.stderr}"
        return done

    def json(self, *args: str, expect: int = 0) -> dict:
        return json.loads(self.run(*args, "--json", expect=expect).stdout)


def leaf_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command under `group` that runs (no group), as the words that name it: ("archive", "ingest")."""
    found, context = [], click.Context(group)
    for name in sorted(group.list_commands(context)):  # the top group loads each command's module on demand
        command = group.get_command(context, name)
        if isinstance(command, click.Group):
            found.extend(leaf_commands(command, (*prefix, name)))
        else:
            found.append((*prefix, name))
    return found
