"""A list of patients to restore, as a physicist keeps it in a spreadsheet saved as CSV: one patient a row,
named by its medical record number, or by its last name and birth date (`rtvault restore --patients-from`,
the web interface's list restore).

Read as it comes: UTF-8 with or without a byte-order mark, UTF-16 with one (a spreadsheet's "Unicode text"),
else Windows-1252 or Latin-1 (which the report says: accented names may then read wrong); separated by
semicolons (a French spreadsheet), commas or tabs, whichever the header line holds most; empty lines ignored;
headers in French or English, case, accents and punctuation ignored (`N° IPP`, `nipp`, `Date de naissance`,
`birth_date`). What cannot be a list of patients (no column naming them, an empty or binary file, a line
thousands of characters long) is refused whole, in one sentence (exit 4); a row that cannot be understood (a
date that is none, an MRN a spreadsheet rounded) is named with its line, and the other rows are used.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

from rtvault.catalog import fold as folding
from rtvault.catalog.search_query import parse_day
from rtvault.errors import InputError

MAX_BYTES = 8 * 1024 * 1024
MAX_LINE = 2000  # characters: a row names one patient in a few dozen
MAX_ROWS = 10_000

# How each column may be headed; compared folded and without separators, so `N° IPP`, `n_ipp` and `NIPP` match.
HEADERS: dict[str, tuple[str, ...]] = {
    "mrn": ("mrn", "ipp", "medical record number", "n ipp", "no ipp", "num ipp", "numero ipp", "medical record no",
            "record number", "hospital number", "identifiant permanent du patient", "numero de dossier",
            "n dossier", "no dossier", "dossier"),
    "last_name": ("last name", "nom", "surname", "nom de famille", "family name", "nom du patient", "nom patient",
                  "nom d usage", "nom usuel"),
    "first_name": ("first name", "prenom", "given name", "forename", "prenom du patient", "prenom patient"),
    "birth_date": ("birth date", "date de naissance", "date of birth", "dob", "date naissance", "naissance", "ddn",
                   "born", "ne le", "nee le", "ne e le"),
}
_COLUMN_OF = {folding.compact(header): name for name, headers in HEADERS.items() for header in headers}
_ROUNDED = re.compile(r"\d([.,]\d+)?[eE]\+?\d+")  # 2,01457E+09: a spreadsheet showed a long number rounded
_MIDNIGHT = re.compile(r"[ T]00:00(:00)?$")  # a date a spreadsheet wrote as a date and time
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f\x7f]")
_DELIMITERS = (";", ",", "\t")


@dataclass(frozen=True)
class Asked:
    """One row of the list: the line it starts on and what it names, as written (the birth date in ISO form once
    understood); `problem` says why the row cannot be used."""

    line: int
    mrn: str = ""
    last_name: str = ""
    first_name: str = ""
    birth_date: str = ""
    problem: str = ""

    def to_json(self) -> dict[str, str]:
        named = {"mrn": self.mrn, "last_name": self.last_name, "first_name": self.first_name,
                 "birth_date": self.birth_date}
        return {key: value for key, value in named.items() if value}

    def __str__(self) -> str:
        if self.mrn:
            return f"MRN {self.mrn}"
        name = " ".join(part for part in (self.last_name, self.first_name) if part)
        return f"{name or '(no name)'} born {self.birth_date or '(no date)'}"


@dataclass(frozen=True)
class PatientList:
    """A list as read: its rows, how it was read (encoding, delimiter), the columns used and those ignored."""

    name: str
    rows: tuple[Asked, ...]
    encoding: str
    delimiter: str
    columns: dict[str, str]  # column ("mrn", "last_name", ...) → its header as written
    ignored: tuple[str, ...] = ()

    @property
    def utf8(self) -> bool:
        return self.encoding.startswith("utf")

    def to_json(self) -> dict[str, object]:
        return {"file": self.name, "encoding": self.encoding, "delimiter": self.delimiter, "columns": self.columns,
                "ignored_columns": list(self.ignored), "rows": len(self.rows)}


def read_patient_list(data: bytes, name: str, *, most_rows: int = MAX_ROWS) -> PatientList:
    """The list in `data` (the bytes of the file `name`); an InputError naming the file, and the line, when it
    cannot be a list of patients."""
    if len(data) > MAX_BYTES:
        raise InputError(f"{name} holds {len(data)} bytes, more than a list of patients ({MAX_BYTES} at most): "
                         "is it the right file?")
    text, encoding = _decode(data, name)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for number, line in enumerate(text.split("\n"), 1):
        if len(line) > MAX_LINE:
            raise InputError(f"{name}, line {number}: {len(line)} characters long, where a row names one patient in "
                             "a few dozen: is it the right file?")
    first = next((line for line in text.split("\n") if line.strip()), "")
    delimiter = max(_DELIMITERS, key=first.count) if any(d in first for d in _DELIMITERS) else ","
    numbered = _numbered(name, text, delimiter)
    _, header = next(numbered, (0, []))
    index = _columns(name, header)
    rows: list[Asked] = []
    for line, cells in numbered:
        if len(rows) == most_rows:
            raise InputError(f"{name} names more than {most_rows} patients: split the list")
        values = {column: cells[i].strip() if i < len(cells) else "" for column, i in index.items()}
        rows.append(_asked(line, values, spans_lines="\n" in "".join(cells)))
    if not rows:
        raise InputError(f"{name} names no patient under its header line: nothing to restore")
    ignored = tuple(cell.strip() for i, cell in enumerate(header) if i not in index.values() and cell.strip())
    return PatientList(name, tuple(rows), encoding, delimiter,
                       {column: header[i].strip() for column, i in index.items()}, ignored)


def _numbered(name: str, text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Each row holding something, with the line it starts on (empty lines are skipped)."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    start = 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                yield start, cells
            start = reader.line_num + 1
    except csv.Error as error:
        raise InputError(f"{name}, line {reader.line_num}: not readable as CSV ({error})") from None


def _decode(data: bytes, name: str) -> tuple[str, str]:
    """The text and the encoding it was read with: UTF-8 (a byte-order mark dropped), UTF-16 with its mark, else
    Windows-1252, else Latin-1 (which reads any byte)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise InputError(f"{name} starts as UTF-16 text but is not: save the list again as CSV") from None
    if data.startswith(codecs.BOM_UTF8):
        try:
            return _text(data.decode("utf-8-sig"), name), "utf-8-sig"
        except UnicodeDecodeError:
            pass
    for encoding in ("utf-8", "windows-1252", "latin-1"):
        try:
            return _text(data.decode(encoding), name), encoding
        except UnicodeDecodeError:
            continue
    raise AssertionError("Latin-1 decodes any byte")


def _text(text: str, name: str) -> str:
    if not text.strip():
        raise InputError(f"{name} is empty: give a CSV file with a header line (mrn, or last_name and birth_date) "
                         "and one patient a line")
    if _CONTROLS.search(text):
        raise InputError(f"{name} is not a text file (it holds control characters: a spreadsheet's own format, "
                         "a PDF?): save the list as CSV and give that file")
    return text


def _columns(name: str, header: list[str]) -> dict[str, int]:
    """Which column of the header is the MRN, the last name, the first name, the birth date."""
    index: dict[str, int] = {}
    for position, cell in enumerate(header):
        column = _COLUMN_OF.get(folding.compact(cell))
        if column is None:
            continue
        if column in index:
            first = header[index[column]].strip()
            raise InputError(f"{name}: two columns give the {column.replace('_', ' ')} ({first!r} and "
                             f"{cell.strip()!r}): keep one")
        index[column] = position
    if "mrn" in index or {"last_name", "birth_date"} <= index.keys():
        return index
    found = ", ".join(repr(cell.strip()) for cell in header if cell.strip()) or "none"
    expected = "; ".join(f"{column}: {', '.join(HEADERS[column][:4])} ..." for column in HEADERS)
    raise InputError(f"{name}: no column names the patients: found {found}; expected an MRN column, or a last name "
                     f"column with a birth date column (a first name column may narrow the search), headed in French "
                     f"or English ({expected})")


def _asked(line: int, values: dict[str, str], *, spans_lines: bool) -> Asked:
    mrn, last, first = values.get("mrn", ""), values.get("last_name", ""), values.get("first_name", "")
    birth = _MIDNIGHT.sub("", values.get("birth_date", ""))
    problem = _problem(mrn, last, birth, spans_lines)
    if not problem and not mrn:
        try:
            birth = parse_day(birth, "birth date").isoformat()
        except InputError as error:
            problem = str(error)
    return Asked(line, mrn, last, first, birth, problem)


def _problem(mrn: str, last: str, birth: str, spans_lines: bool) -> str:
    """Why a row cannot name a patient, or "" (its birth date is checked by the caller)."""
    if spans_lines:
        return "the row runs over several lines (a quote opened and never closed?)"
    if mrn:
        if _ROUNDED.fullmatch(mrn):
            return (f"MRN {mrn!r} was rounded by a spreadsheet (scientific notation): format the column as text and "
                    "save the list again")
        return "" if folding.compact(mrn) else f"MRN {mrn!r} holds no letter or digit"
    if not last and not birth:
        return "neither an MRN nor a last name with a birth date"
    if not birth:
        return "a last name needs a birth date (or give the MRN)"
    if not last:
        return "a birth date needs a last name (or give the MRN)"
    return "" if folding.compact(last) else f"last name {last!r} holds no letter or digit"
