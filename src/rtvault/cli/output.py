"""Rendering shared by every command: JSON, errors and progress bars."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from rtvault.config import Config, load
from rtvault.events import NoProgress
from rtvault.events import Progress as ProgressProtocol

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


@dataclass
class AppContext:
    """What the top-level options give every command."""

    config_path: str | None
    debug: bool

    def load_config(self) -> Config:
        return load(Path(self.config_path) if self.config_path else None)


def emit_json(data: object) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False))


def update_catalog(config: Config, archives: frozenset[str] = frozenset()) -> None:
    """After a command changed a store: bring the catalog in step; a catalog problem is a warning on stderr,
    never a failure of the job that already succeeded."""
    from rtvault.jobs.catalog import refresh_quietly

    problem = refresh_quietly(config, archives=archives)
    if problem:
        click.echo(f"rtvault: warning: {problem}", err=True)


def emit_error(message: str, code: int, as_json: bool) -> None:
    if as_json:
        emit_json({"error": {"message": message, "exit_code": int(code)}})
    click.echo(f"rtvault: error: {message}", err=True)


class RichProgress:
    """A progress bar on stderr, shown only when it is a terminal."""

    def __init__(self) -> None:
        from rich.console import Console  # rich loads in 80 ms: only when a bar is shown
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = None

    def begin(self, label: str, total: int | None) -> None:
        self._bar.start()
        self._task = self._bar.add_task(label, total=total)

    def advance(self, step: int = 1) -> None:
        if self._task is not None:
            self._bar.advance(self._task, step)

    def end(self) -> None:
        self._bar.stop()
        self._task = None


def progress_for(as_json: bool) -> ProgressProtocol:
    """A progress bar when a person watches a terminal; nothing for --json, pipes and cron."""
    if as_json or not sys.stderr.isatty() or not sys.stdout.isatty():
        return NoProgress()
    return RichProgress()
