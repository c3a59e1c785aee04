"""The `rtvault` command line: the only layer that prints or exits.

Each command parses its input, calls one library function and renders the result (text, or JSON with
--json). Errors from the library are `RtvaultError`s, printed as one sentence with their exit code.
"""

from __future__ import annotations

import sys
import traceback

import click

from rtvault import __version__
from rtvault.cli.archive_cmd import archive
from rtvault.cli.backup_cmd import backup_command, init_command
from rtvault.cli.catalog_cmd import catalog, search_command
from rtvault.cli.config_cmd import config
from rtvault.cli.copies_cmd import replicate_command, status_command
from rtvault.cli.demo import demo
from rtvault.cli.inspect_cmd import inspect_command
from rtvault.cli.output import AppContext, emit_error
from rtvault.cli.restore_cmd import diff_command, restore_command, snapshots_command
from rtvault.cli.serve_cmd import serve_command
from rtvault.cli.store_cmd import check_command, forget_command, prune_command
from rtvault.cli.user_cmd import audit_command, token, user
from rtvault.cli.verify_cmd import repair_command, verify_command
from rtvault.errors import EXIT_CODE_MEANINGS, ExitCode, RtvaultError

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


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
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


cli.add_command(config)
cli.add_command(demo)
cli.add_command(inspect_command)
cli.add_command(init_command)
cli.add_command(backup_command)
cli.add_command(snapshots_command)
cli.add_command(diff_command)
cli.add_command(restore_command)
cli.add_command(forget_command)
cli.add_command(prune_command)
cli.add_command(check_command)
cli.add_command(replicate_command)
cli.add_command(status_command)
cli.add_command(verify_command)
cli.add_command(repair_command)
cli.add_command(archive)
cli.add_command(catalog)
cli.add_command(search_command)
cli.add_command(user)
cli.add_command(token)
cli.add_command(audit_command)
cli.add_command(serve_command)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    as_json = "--json" in args
    try:
        code = cli.main(args=args, prog_name="rtvault", standalone_mode=False)
        if isinstance(code, int) and code:  # a command's ctx.exit(code) comes back as the return value
            sys.exit(code)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(ExitCode.USAGE)
    except (click.exceptions.Abort, KeyboardInterrupt):
        emit_error("interrupted", ExitCode.INTERRUPTED, as_json)
        sys.exit(ExitCode.INTERRUPTED)
    except RtvaultError as error:
        if debug:
            traceback.print_exc()
        emit_error(str(error), error.exit_code, as_json)
        sys.exit(error.exit_code)
    except Exception as error:  # a bug: say so in one line unless --debug
        if debug:
            traceback.print_exc()
        message = f"internal error: {type(error).__name__}: {error} (rerun with --debug for details)"
        emit_error(message, ExitCode.INTERNAL, as_json)
        sys.exit(ExitCode.INTERNAL)
    sys.exit(ExitCode.OK)
