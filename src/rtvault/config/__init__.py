"""The configuration: one TOML file, described by one schema.

The schema (settings.py, in the language of schema.py) is the single source of truth for validation
(validate.py), defaults, the example config and the reference docs (render.py). `load()` finds the file,
parses it and returns a typed `Config`, or raises a `ConfigError` listing every problem at once.
"""

from __future__ import annotations

import os
import shlex
import tomllib
from pathlib import Path

from rtvault.config.render import REFERENCE_COMMAND, example_toml, reference_markdown
from rtvault.config.settings import SCHEMA, Archive, Backup, Catalog, Config, PinnacleSource, Retention, Source, Store
from rtvault.config.validate import validate
from rtvault.errors import ConfigError

ENV_VAR = "RTVAULT_CONFIG"
DEFAULT_FILE = Path("rtvault.toml")

__all__ = [
    "DEFAULT_FILE",
    "ENV_VAR",
    "REFERENCE_COMMAND",
    "SCHEMA",
    "Archive",
    "Backup",
    "Catalog",
    "Config",
    "PinnacleSource",
    "Retention",
    "Source",
    "Store",
    "example_toml",
    "find",
    "load",
    "reference_markdown",
    "validate",
]


def find(path: Path | None = None) -> tuple[Path, str]:
    """Which file to read, and why: `path` (from --config), else $RTVAULT_CONFIG, else ./rtvault.toml."""
    if path is not None:
        return path.expanduser().absolute(), "given with --config"
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser().absolute(), f"from ${ENV_VAR}"
    return DEFAULT_FILE.absolute(), f"the default ./{DEFAULT_FILE}: no --config and no ${ENV_VAR}"


def load(path: Path | None = None) -> Config:
    """Find, parse and validate the configuration file; raises `ConfigError` naming the file."""
    file, origin = find(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        fix = f"create one with: rtvault config example > {_shell_word(file)}"
        raise ConfigError(str(file), [f"configuration file not found ({origin}); {fix}"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(str(file), [f"cannot read the configuration file: {_reason(error)}"]) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(str(file), [f"invalid TOML: {error}"]) from None
    return validate(data, file)


def _reason(error: OSError | UnicodeDecodeError) -> str:
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text (byte {error.start})"
    return error.strerror or str(error)


def _shell_word(path: Path) -> str:
    return shlex.quote(path.name if path.parent == Path.cwd() else str(path))
