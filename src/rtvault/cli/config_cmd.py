"""`rtvault config ...`: print the example config or the reference, check a config file."""

from __future__ import annotations

import click

from rtvault.cli.output import AppContext, echo_document, reported
from rtvault.config import Config, example_toml, reference_markdown
from rtvault.configured import where
from rtvault.report import Plain

GROUP_EPILOG = """\b
Examples:
  rtvault config example > rtvault.toml
  rtvault config check
  rtvault --config /etc/rtvault/rtvault.toml config check --json
  RTVAULT_CONFIG=/etc/rtvault/rtvault.toml rtvault config check

\b
The file is --config PATH, else $RTVAULT_CONFIG, else ./rtvault.toml.
Every key is documented in docs/configuration.md (rtvault config reference).
"""

EXAMPLE_EPILOG = """\b
Examples:
  rtvault config example > rtvault.toml
  rtvault config example | less
"""

CHECK_EPILOG = """\b
Examples:
  rtvault config check
  rtvault --config /etc/rtvault/rtvault.toml config check
  rtvault config check --json

\b
Exit code 0 when the file is valid, 3 when it is missing or invalid (every problem is listed).
"""

REFERENCE_EPILOG = """\b
Examples:
  rtvault config reference > docs/configuration.md
"""


@click.group(epilog=GROUP_EPILOG)
def config() -> None:
    """Show an example configuration or check one."""


@config.command(epilog=EXAMPLE_EPILOG)
def example() -> None:
    """Print a complete commented example configuration (TOML): every key, its doc and default."""
    echo_document(example_toml())


@config.command(epilog=REFERENCE_EPILOG)
def reference() -> None:
    """Print the Markdown reference of every configuration key."""
    echo_document(reference_markdown())


@config.command(epilog=CHECK_EPILOG)
@reported
@click.pass_obj
def check(app: AppContext, as_json: bool) -> Plain:
    """Validate the configuration file and summarise it."""
    cfg: Config = app.load_config()
    return Plain.of({"file": str(cfg.file), "valid": True, "config": cfg.to_json()}, *summary(cfg))


def summary(cfg: Config) -> list[str]:
    """`OK: <file>` and the few settings an operator checks first."""
    root = cfg.source.pinnacle.root
    stores = ", ".join(f"{name} ({where(store)})" for name, store in cfg.stores.items())
    return [
        f"OK: {cfg.file}",
        f"  source root: {root if root is not None else '(not set)'}",
        f"  stores:      {stores or '(none)'}",
        f"  catalog:     {cfg.catalog.shown_url}",
    ]
