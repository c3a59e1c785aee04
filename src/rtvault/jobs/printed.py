"""Documents made to be printed (the site's procedures, the monthly report): one Jinja2 template,
templates/printed.html (A4, the site's name and page numbers on every page, every value escaped: a value from the
configuration or a store is text, never markup), written as HTML or, with WeasyPrint, as PDF, whole or not at all.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from rtvault.errors import InputError, os_failure
from rtvault.localfile import write_atomically

TEMPLATES = Path(__file__).parent / "templates"
FORMATS = (".pdf", ".html")


@dataclass(frozen=True)
class Cell:
    text: str
    todo: bool = False  # printed as a field to complete by hand
    mark: bool = False  # printed in bold: a thing to look at


@dataclass(frozen=True)
class Step:
    text: str
    command: str = ""


@dataclass(frozen=True)
class Figure:
    """A picture printed with its caption and, when given, a legend of coloured squares and their meaning."""

    png: bytes
    caption: str
    legend: tuple[tuple[str, str], ...] = ()  # ("#rrggbb", what the colour means)

    @property
    def src(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass
class Section:
    title: str
    paragraphs: list[Cell] = field(default_factory=list)
    lists: list[tuple[str, list[Step]]] = field(default_factory=list)  # (heading, numbered steps)
    head: list[str] = field(default_factory=list)
    rows: list[list[Cell]] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


def check_out(out: Path) -> str:
    """The format `out` asks for (".pdf" or ".html", from its extension); InputError for a name that says
    neither or a folder that does not exist."""
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"cannot tell the format of {out}: give a file name ending in .pdf or .html")
    if not out.parent.is_dir():
        raise InputError(f"folder {out.parent} does not exist: create it or give another --out")
    return suffix


def render(**values: object) -> str:
    """The document as HTML: `title`, `site`, `todo`, `page`, `audience`, `printed`, `reprint`, `keep` and
    `sections` (see the template)."""
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True))
    return environment.get_template("printed.html").render(**values)


def write(out: Path, html: str) -> None:
    """`html` into `out`, as PDF or HTML after its extension, whole or not at all (a printed document must never
    be half a file)."""
    if check_out(out) == ".html":
        data = html.encode("utf-8")
    else:
        from weasyprint import HTML  # imported here: a second to load, for these commands only

        data = HTML(string=html).write_pdf()
    try:
        write_atomically(out, data)
    except OSError as error:
        raise os_failure(error, out) from error
