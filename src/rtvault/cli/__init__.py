"""The `rtvault` command line: the only layer that prints or exits.

Each command parses its input, calls one library function and renders the result (text, or JSON with
--json). Errors from the library are `RtvaultError`s, printed as one sentence with their exit code.
"""

from __future__ import annotations

import importlib
import signal
import sys
import traceback
from collections import Counter
from collections.abc import Callable

import click

from rtvault import __version__
from rtvault.cli.output import AppContext, echo, emit_error, error_lines, show_traceback, show_usage_error
from rtvault.errors import EXIT_CODE_MEANINGS, ExitCode, InputError, RtvaultError, Terminated

_EXIT_CODES = "\n".join(f"  {int(code):<4} {meaning}" for code, meaning in EXIT_CODE_MEANINGS.items())

EPILOG = f"""\b
Examples:
  rtvault demo generate --out demo-db --patients 20 --seed 1
  rtvault inspect demo-db
  rtvault inspect demo-db/Institution_1/Mount_0/Patient_3 --json
  rtvault backup && rtvault restore --patient 2021993744 --to /tmp/restored
  rtvault archive ingest /media/old-dvd
  rtvault config example > rtvault.toml && rtvault config check

\b
Configuration: --config PATH, else $RTVAULT_CONFIG, else ./rtvault.toml.

\b
Exit codes:
{_EXIT_CODES}
"""


# Each command's module is imported only when that command runs (or help lists it): a command starts in a
# fraction of the time it would take to import every command's dependencies (web server, S3 client ...).
COMMANDS = {
    "config": "config_cmd:config",
    "demo": "demo:demo",
    "inspect": "inspect_cmd:inspect_command",
    "init": "backup_cmd:init_command",
    "backup": "backup_cmd:backup_command",
    "snapshots": "restore_cmd:snapshots_command",
    "diff": "restore_cmd:diff_command",
    "restore": "restore_cmd:restore_command",
    "machines": "machines_cmd:machines_command",
    "export": "export_cmd:export",
    "dicom": "dicom_subcommands:dicom",  # the group with its subcommands added (dicom_subcommands.py)
    "forget": "store_cmd:forget_command",
    "prune": "store_cmd:prune_command",
    "check": "store_cmd:check_command",
    "migrate": "store_cmd:migrate_command",
    "replicate": "copies_cmd:replicate_command",
    "status": "copies_cmd:status_command",
    "reconcile": "reconcile_cmd:reconcile_command",
    "health": "health_cmd:health_command",
    "verify": "verify_cmd:verify_command",
    "repair": "verify_cmd:repair_command",
    "passphrase": "crypto_cmd:passphrase_command",
    "volume": "volume_cmd:volume",
    "archive": "archive_cmd:archive",
    "catalog": "catalog_cmd:catalog",
    "search": "catalog_cmd:search_command",
    "user": "user_cmd:user",
    "token": "user_cmd:token",
    "audit": "user_cmd:audit_command",
    "serve": "serve_cmd:serve_command",
    "schedule": "schedule_cmd:schedule_command",
    "daemon": "daemon_cmd:daemon_command",
    "runs": "daemon_cmd:runs_command",
    "drill": "drill_cmd:drill_command",
    "failover": "failover_cmd:failover_command",
    "failback": "failover_cmd:failback_command",
    "procedure": "procedure_cmd:procedure_command",
    "report": "report_cmd:report_command",
    "journal": "journal_cmd:journal",
    "alert": "alert_cmd:alert",
}


def refuse_repeats(command: click.Command) -> click.Command:
    """`command` (and, for a group, every command under it) refusing an option given twice that takes one value
    (exit 4): click would silently keep the last one, and `--store a --store b` or `--patient A --patient B`
    on a command restoring one patient would do something the user did not ask. Options declared
    `multiple=True` (or counted) may repeat. Applied to every command as it is loaded (`LazyGroup`)."""
    if not getattr(command, "refuses_repeats", False):
        parse: Callable[[click.Context, list[str]], list[str]] = command.parse_args

        def parse_args(ctx: click.Context, args: list[str]) -> list[str]:
            if not ctx.resilient_parsing:  # shell completion parses partial lines: nothing is run
                _refuse_repeated(command, ctx, args)
            return parse(ctx, args)

        command.parse_args = parse_args  # type: ignore[method-assign]
        command.refuses_repeats = True  # type: ignore[attr-defined]
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            refuse_repeats(sub)
    return command


def _refuse_repeated(command: click.Command, ctx: click.Context, args: list[str]) -> None:
    """Parse `args` as click will (values unconverted: this only counts) and refuse an option seen twice."""
    _values, _rest, order = command.make_parser(ctx).parse_args(args=list(args))
    seen = Counter(param for param in order if isinstance(param, click.Option) and param.expose_value
                   and not param.multiple and not param.count)
    for option, times in seen.items():
        if times > 1:
            names = "/".join([*option.opts, *option.secondary_opts])
            raise InputError(f"{names} was given {times} times: give it once (it is not repeatable, and only "
                             "the last would count)")


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name].split(":")
        return refuse_repeats(getattr(importlib.import_module(f"rtvault.cli.{module}"), attribute))


@click.group(cls=LazyGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Configuration file (default: $RTVAULT_CONFIG, else ./rtvault.toml).",
)
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.version_option(__version__, prog_name="rtvault")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, debug: bool) -> None:
    """rtvault: backup, archiving and archive search for Philips Pinnacle databases."""
    ctx.obj = AppContext(config_path=config_path, debug=debug)


refuse_repeats(cli)



def _terminated(_number: int, _frame: object) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGTERM, _terminated)  # as Ctrl-C: journalled, exit 130 (daemon and serve set their own)
    debug = "--debug" in args
    as_json = "--json" in args
    try:
        code = cli.main(args=args, prog_name="rtvault", standalone_mode=False)
        if isinstance(code, int) and code:  # a command's ctx.exit(code) comes back as the return value
            sys.exit(code)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        show_usage_error(error)
        if "--nagios" in args:  # a plugin's wrong command line is UNKNOWN (Nagios plugin guidelines), with its line
            from rtvault.jobs.health_nagios import unknown_line

            echo(unknown_line(f"wrong command line: {error.format_message()} (see `rtvault health --help`)"))
            sys.exit(3)
        sys.exit(ExitCode.USAGE)
    except (click.exceptions.Abort, KeyboardInterrupt) as stopped:
        emit_error("interrupted (SIGTERM)" if isinstance(stopped, Terminated) else "interrupted",
                   ExitCode.INTERRUPTED, as_json)
        sys.exit(ExitCode.INTERRUPTED)
    except RtvaultError as error:
        if debug:
            show_traceback(traceback.format_exc())
        emit_error(error_lines(error), error.exit_code, as_json)
        sys.exit(error.exit_code)
    except Exception as error:  # a bug: say so in one line unless --debug
        if debug:
            show_traceback(traceback.format_exc())
        message = f"internal error: {type(error).__name__}: {error} (rerun with --debug for details)"
        emit_error(message, ExitCode.INTERNAL, as_json)
        sys.exit(ExitCode.INTERNAL)
    sys.exit(ExitCode.OK)
