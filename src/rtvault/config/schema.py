"""The schema language: how a setting is declared once and read by validation, the example and the docs.

Settings are frozen dataclasses: a field annotated with a settings dataclass is a section, one annotated
`dict[str, <settings dataclass>]` a map of named sections, any other a key whose doc, example and check
come from `about()`. `schema_of()` turns such a dataclass into a tree of `Section`, `SectionMap` and `Field`
nodes; the validator, the example generator and the reference renderer only ever walk that tree.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Check = Callable[[Any], "str | None"]
"""A value check: returns what is wrong with a well-typed value, or None when it is fine."""

REQUIRED: Any = dataclasses.MISSING
BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Kind:
    """A type of setting: its name in messages and docs, its TOML check and its conversion to Python."""

    name: str
    doc_name: str
    accepts: Callable[[object], bool]
    checks: tuple[Check, ...] = ()
    convert: Callable[[Any, Path], Any] = lambda value, _base_dir: value


def _not_empty(value: str) -> str | None:
    return "must not be empty" if not value.strip() else None


def _to_path(value: str | None, base_dir: Path) -> Path | None:
    # Relative paths follow the config file, not the working directory of whoever runs rtvault.
    return None if value is None else base_dir / Path(value).expanduser()


STRING = Kind("a string", "string", lambda v: isinstance(v, str))
INTEGER = Kind("an integer", "integer", lambda v: isinstance(v, int) and not isinstance(v, bool))
NUMBER = Kind(
    "a number",
    "number",
    lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    convert=lambda value, _base_dir: float(value),
)
BOOLEAN = Kind("true or false", "boolean", lambda v: isinstance(v, bool))
PATH = Kind("a string", "path", lambda v: isinstance(v, str), (_not_empty,), _to_path)
OPTIONAL_PATH = Kind(  # an empty string is "not set", so that the generated example can list the key
    "a string", "path", lambda v: isinstance(v, str),
    convert=lambda value, base_dir: base_dir / Path(value).expanduser() if value else None)
STRING_LIST = Kind(
    "an array of strings",
    "array of strings",
    lambda v: isinstance(v, list) and all(isinstance(item, str) for item in v),
    convert=lambda value, _base_dir: tuple(value),
)
_KIND_OF_ANNOTATION: dict[object, Kind] = {
    str: STRING,
    bool: BOOLEAN,
    int: INTEGER,
    float: NUMBER,
    Path: PATH,
    Path | None: PATH,
    tuple[str, ...]: STRING_LIST,
}


@dataclass(frozen=True)
class Field:
    """One key: `name = value`."""

    name: str
    kind: Kind
    doc: str
    default: Any
    example: Any
    checks: tuple[Check, ...]

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def sample(self) -> Any:
        """The value shown in the example config: the example if one is given, else the default."""
        return self.default if self.example is None else self.example


@dataclass(frozen=True)
class Section:
    """A TOML table whose keys are fixed: `[name]`."""

    name: str
    doc: str
    cls: type
    members: tuple[Member, ...]

    @property
    def fields(self) -> tuple[Field, ...]:
        return tuple(m for m in self.members if isinstance(m, Field))


@dataclass(frozen=True)
class SectionMap:
    """A table of named tables that all share one shape: `[name.<item>]`."""

    name: str
    doc: str
    item: Section
    example_name: str


Member = Field | Section | SectionMap


def about(
    doc: str | None = None, *, example: Any = None, check: Check | None = None, kind: Kind | None = None
) -> dict[str, Any]:
    """The metadata of a setting: `field(default=..., metadata=about("One line of doc.", ...))`.

    A key's kind follows its annotation unless `kind` is given. A section's doc defaults to its class
    docstring; a map of sections needs an `example` name for the generated example.
    """
    return {"doc": doc, "example": example, "checks": (check,) if check else (), "kind": kind}


NOT_A_SETTING = {"setting": False}
"""The metadata of a dataclass field that the file does not set (such as where the file was)."""


def schema_of(cls: type, name: str = "", doc: str | None = None) -> Section:
    """The schema tree of a settings dataclass."""
    hints = typing.get_type_hints(cls)
    members = tuple(_member(f, hints[f.name]) for f in dataclasses.fields(cls) if f.metadata.get("setting", True))
    return Section(name, doc or cls.__doc__ or "", cls, members)


def _member(field: dataclasses.Field[Any], annotation: Any) -> Member:
    meta = field.metadata or about()
    if dataclasses.is_dataclass(annotation):
        return schema_of(annotation, field.name, meta["doc"])
    if not meta["doc"]:
        raise TypeError(f"setting {field.name!r} needs metadata=about('its one-line doc')")
    if typing.get_origin(annotation) is dict:
        item = schema_of(typing.get_args(annotation)[1], "<name>", meta["doc"])
        return SectionMap(field.name, meta["doc"], item, meta["example"])
    kind = meta["kind"] or _KIND_OF_ANNOTATION[annotation]
    return Field(field.name, kind, meta["doc"], field.default, meta["example"], kind.checks + meta["checks"])


def dotted(prefix: str, key: str) -> str:
    """`prefix.key`, quoting the key as TOML does when it is not a bare key."""
    shown = key if BARE_KEY.fullmatch(key) else '"' + key.replace('"', '\\"') + '"'
    return f"{prefix}.{shown}" if prefix else shown


def tables(root: Section, prefix: str = "", *, example_names: bool = False) -> Iterator[tuple[str, Section]]:
    """Every section under `root` with its dotted name, in declaration order.

    A section map yields its item once, named `<name>` (or, with `example_names`, its example name).
    """
    for member in root.members:
        if isinstance(member, Field):
            continue
        if isinstance(member, SectionMap):
            name = dotted(prefix, member.name) + "." + (member.example_name if example_names else "<name>")
            child = member.item
        else:
            name, child = dotted(prefix, member.name), member
        yield name, child
        yield from tables(child, name, example_names=example_names)


def positive(value: int) -> str | None:
    return None if value > 0 else f"must be more than 0, got {value}"
