"""The one writer of rtvault.toml in the tests: tables given as dictionaries, rendered as TOML.

    write_config(path, root=db, stores={"primary": store})          # [source.pinnacle] and [stores.primary]
    write_config(path, root="pinnacle", stores={"primary": "store"}, catalog={"url": "sqlite:///catalog.sqlite"})
    write_config(path, root=db, stores={"primary": nas, "offsite": {**seaweed.store_settings(bucket), "encrypt": True}},
                 backup={"max_shrink": 0.5}, retention=KEEP_LAST, verify={"cycle_days": 30})

    write(path, text)   # a hand-written text, as the configuration tests give it (its directory made if need be)

A store given as a path (or a string) is a directory store (`path = ...`); given as a dictionary, it is its table.
A table or a setting given as None is left out; an empty dictionary is an empty table; a dictionary inside a table
is its sub-table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

Table = Mapping[str, object]

# A retention keeping only the last snapshot.
KEEP_LAST = {"keep_last": 1, "keep_hourly": 0, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0,
             "keep_yearly": 0}


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(str(value))  # a JSON string is a TOML basic string


def render(tables: Mapping[str, Table | None]) -> str:
    """`[name]` and its `key = value` lines for each table, a blank line between tables; a value that is a
    dictionary is a sub-table (`alerts={"mail": {...}}` gives `[alerts.mail]`)."""
    blocks = []
    for name, settings in tables.items():
        if settings is not None:
            lines = [f"[{name}]", *(f"{key} = {toml_value(value)}" for key, value in settings.items()
                                     if value is not None and not isinstance(value, Mapping))]
            blocks.append("\n".join(lines) + "\n")
            subtables = {f"{name}.{key}": value for key, value in settings.items() if isinstance(value, Mapping)}
            if subtables:
                blocks.append(render(subtables))
    return "\n".join(blocks)


def config_text(*, root: str | Path | None = None, exclude: list[str] | None = None,
                stores: Mapping[str, str | Path | Table] | None = None, **tables: Table | None) -> str:
    """The configuration: the Pinnacle source (when `root` is given), the stores, then the other tables
    (backup, retention, archive, catalog, web, verify, ...) in the order given."""
    source = None if root is None else {"root": root, "exclude": exclude}
    stored = {f"stores.{name}": {"path": store} if isinstance(store, str | Path) else store
              for name, store in (stores or {}).items()}
    return render({"source.pinnacle": source, **stored, **tables})


def write_config(path: Path, **settings: object) -> Path:
    """Write `config_text(**settings)` to `path` (its directory made if need be); returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_text(**settings), encoding="utf-8")  # type: ignore[arg-type]
    return path


def add_tables(path: Path, **tables: Table | None) -> Path:
    """Append tables (`retention=KEEP_LAST`, ...) to an existing configuration; returns `path`."""
    with path.open("a", encoding="utf-8") as out:
        out.write("\n" + render(tables))
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
