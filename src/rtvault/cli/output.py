"""Rendering shared by every command: JSON, errors, progress bars, and text made safe for a terminal.

Every line a command prints for a person goes through `echo` (or `safe`): patient names, login names, file
and member names come from outside, and a control sequence in them (ESC, OSC, CR, a bidi override) would
otherwise be obeyed by the administrator's terminal, letting anyone who can type a login name or write a
Pinnacle file forge what is shown. They are shown escaped instead (`\\x1b`, `\\r`, `\\u202e`).
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from rtvault.config import Config, load
from rtvault.events import NoProgress
from rtvault.events import Progress as ProgressProtocol
from rtvault.report import Report

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


@dataclass
class AppContext:
    """What the top-level options give every command."""

    config_path: str | None
    debug: bool

    def load_config(self) -> Config:
        return load(Path(self.config_path) if self.config_path else None)


# C0 controls (tab and line feed too: a value must not start a line of its own), DEL, C1 controls, the
# bidirectional embeddings, overrides and isolates that reorder what is shown, and the lone surrogates that
# stand for undecodable bytes of a file name (printing one would fail).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# json.dumps escapes C0 controls itself; with ensure_ascii=False it leaves DEL, C1 and bidi characters raw
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SHORT:
        return _SHORT[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def safe(text: object) -> str:
    """`text` with every control character (C0, DEL, C1) and bidi control escaped visibly, as `\\x1b`, `\\r`,
    `\\u202e`: nothing a terminal would obey. Letters, accents, apostrophes and hyphens are kept. A backslash
    is kept too, so a name holding the four characters `\\x1b` reads the same as one holding ESC: harmless,
    as both are shown and neither is obeyed."""
    return _UNSAFE.sub(_escape, str(text))


def echo(text: object = "", err: bool = False, nl: bool = True) -> None:
    """Print one line for a person (stdout, or stderr with err=True), made safe: what every command uses."""
    click.echo(safe(text), err=err, nl=nl)


def echo_document(text: str) -> None:
    """Print a multi-line text that rtvault made itself (the example configuration): safe line by line."""
    click.echo("\n".join(safe(line) for line in text.split("\n")), nl=False)


def emit_json(data: object) -> None:
    """One JSON document on stdout. JSON escapes control characters; DEL, C1, bidi characters and lone
    surrogates are written as \\u escapes too (the same string once decoded): even JSON on a terminal is safe."""
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False)
    click.echo(_UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


def emit_csv(text: str) -> None:
    """CSV on stdout as it is (its line ends included): the caller made every cell safe."""
    click.echo(text, nl=False)


# The commands whose every run is an action in the journal (docs/design.md, "The journal of actions"): those
# that change the stores, the catalog's users or the archives, restore, or read who is in the vault (a group's
# subcommand alone by its two words: `dicom import`, not the node's `dicom serve`). The others
# watch or print (health, runs, status, procedure...), or journal themselves (drill, failover, the daemon).
JOURNALLED = frozenset({"init", "backup", "restore", "forget", "prune", "migrate", "replicate", "repair", "passphrase",
                        "volume", "archive", "catalog", "search", "snapshots", "user", "token", "reconcile",
                        "machines", "export", "dicom import"})


def reported(command: Callable[..., Report | None]) -> Callable[..., None]:
    """A command's --json option, and the `Report` it returns printed: its warnings, then its JSON or its lines,
    then the exit code of its verdict (for a person, ended by the verdict's error sentence). A command of
    JOURNALLED is written to the journal of actions with its result, whatever it is."""

    @functools.wraps(command)
    def run(*args: Any, **options: Any) -> None:
        report = _journalling(command, args, options)
        if report is not None:
            render(report, options["as_json"])

    return json_option(run)


def journalled(command: Callable[..., None]) -> Callable[..., None]:
    """A command that prints for itself (no Report), written to the journal of actions with its result."""

    @functools.wraps(command)
    def run(*args: Any, **options: Any) -> None:
        _journalling(command, args, options)

    return run


def _journalling(command: Callable[..., Any], args: tuple, options: dict[str, Any]) -> Any:
    """Run a command and journal it, whatever its end: its verdict, an error, or an interruption (Ctrl-C or
    SIGTERM, `errors.Terminated`: journalled as "interrupted"; a process killed by SIGKILL leaves no record)."""
    from rtvault.errors import ExitCode, RtvaultError

    try:
        result = command(*args, **options)
    except (KeyboardInterrupt, click.exceptions.Abort):
        journal_action(ExitCode.INTERRUPTED, "interrupted")
        raise
    except Exception as error:
        journal_action(error.exit_code if isinstance(error, RtvaultError) else ExitCode.INTERNAL, str(error))
        raise
    if isinstance(result, Report):
        verdict = result.verdict()
        journal_action(verdict.code, str(verdict.error) if verdict.error else "", result.journalled())
    else:
        journal_action(0, "")
    return result


def journal_action(code: int, error: str, each: Sequence[Mapping[str, object]] = ()) -> None:
    """The command that just ran, into the journal of actions (when it is one of JOURNALLED, and not run by the
    daemon, whose runs are recorded as runs), with an entry of its own for `each` patient it acted on one by one
    (`Report.journalled`); a warning on stderr when the record could be kept nowhere."""
    ctx = click.get_current_context()
    path = ctx.command_path.split()[1:]
    if not path or not {path[0], " ".join(path[:2])} & JOURNALLED or ctx.find_root().obj is None:
        return
    if os.environ.get("RTVAULT_RUN_BY") == "daemon":
        return  # the daemon records its jobs as runs, with this command's JSON

    from rtvault.errors import ExitCode, RtvaultError
    from rtvault.jobs.actions import record_command

    try:
        config = ctx.find_root().obj.load_config()
    except RtvaultError:
        return  # no configuration, no stores: nothing can be journalled (the error itself is said)
    try:
        result = "ok" if code == 0 else "partial" if code in (ExitCode.CHECK_FAILED, ExitCode.PARTIAL) else \
            "interrupted" if code == ExitCode.INTERRUPTED else "failed"
        written = record_command(config, "_".join(path), ctx.params, result, error or f"exit code {code}", each)
    except (RtvaultError, OSError) as failure:
        echo(f"rtvault: warning: this action is not in the journal: {failure}", err=True)
        return
    for problem in written.problems:
        echo(f"rtvault: warning: journal: {problem}", err=True)


def render(report: Report, as_json: bool) -> None:
    for warning in report.warnings():
        echo(f"rtvault: warning: {warning}", err=True)
    if as_json:
        emit_json(report.to_json())
        for note in report.notes():
            echo(note, err=True)
    else:
        for line in report.lines():
            echo(line.text, err=line.err)
    verdict = report.verdict()
    if verdict.error is not None and not as_json:
        raise verdict.error
    if verdict.code:
        click.get_current_context().exit(int(verdict.code))


def render_csv(report: Report, text: str) -> None:
    """A report given as CSV (`text`, its cells made safe by the caller) instead of its lines: its warnings on
    stderr, the CSV on stdout, then the exit code of its verdict (as with --json, the code alone speaks)."""
    for warning in report.warnings():
        echo(f"rtvault: warning: {warning}", err=True)
    emit_csv(text)
    verdict = report.verdict()
    if verdict.code:
        click.get_current_context().exit(int(verdict.code))


def emit_error(message: str | list[str], code: int, as_json: bool) -> None:
    """The error on stderr (and as JSON on stdout with --json); a list is one line each (a configuration's
    problems), every line made safe."""
    lines = [message] if isinstance(message, str) else message
    if as_json:
        emit_json({"error": {"message": "\n".join(lines), "exit_code": int(code)}})
    echo(f"rtvault: error: {lines[0]}", err=True)
    for line in lines[1:]:
        echo(line, err=True)


def error_lines(error: Exception) -> list[str]:
    """An error's message as the lines to print: a configuration error's problems one a line."""
    from rtvault.errors import ConfigError

    if isinstance(error, ConfigError) and len(error.problems) > 1:
        return [f"{error.file}: {len(error.problems)} problems:", *(f"  - {p}" for p in error.problems)]
    return [str(error)]


def show_usage_error(error: click.ClickException) -> None:
    """click's own message for a wrong command line (it may repeat what was typed), made safe."""
    shown = io.StringIO()
    error.show(file=shown)
    for line in shown.getvalue().rstrip("\n").split("\n"):
        echo(line, err=True)


def show_traceback(text: str) -> None:
    """A --debug traceback, line by line, made safe (an exception's message may carry a file name)."""
    for line in text.rstrip("\n").split("\n"):
        echo(line, err=True)


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
        from rich.markup import escape

        self._bar.start()
        self._task = self._bar.add_task(escape(safe(label)), total=total)  # a label may name a store or volume

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
