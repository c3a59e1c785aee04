"""A list of patients as physicists' spreadsheets save it: every encoding, separator and header spelling they
produce is read, and what cannot be a list is refused in one sentence naming the file (and the line)."""

from __future__ import annotations

import codecs

import pytest

from rtvault.errors import InputError
from rtvault.jobs.patient_list import MAX_LINE, read_patient_list

FRENCH = "N° IPP;Nom;Prénom;Date de naissance;Service\n2014566950;LÉVÊQUE;Anaïs;14/03/1957;Radiothérapie\n"


def asked(text: bytes | str, **options: int) -> list[dict]:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return [{"line": row.line, **row.to_json(), **({"problem": row.problem} if row.problem else {})}
            for row in read_patient_list(data, "liste.csv", **options).rows]


@pytest.mark.parametrize(("data", "encoding"), [
    (FRENCH.encode("utf-8"), "utf-8"),
    (codecs.BOM_UTF8 + FRENCH.encode("utf-8"), "utf-8-sig"),
    (FRENCH.encode("latin-1"), "windows-1252"),
    (FRENCH.encode("utf-16"), "utf-16"),  # a spreadsheet's "Unicode text", with its byte-order mark
    (FRENCH.replace("\n", "\r\n").encode("cp1252"), "windows-1252"),
], ids=["utf-8", "utf-8 with BOM", "latin-1", "utf-16", "windows line ends"])
def test_every_encoding_a_spreadsheet_saves_reads_the_same(data: bytes, encoding: str) -> None:
    listed = read_patient_list(data, "liste.csv")
    assert listed.encoding == encoding and listed.delimiter == ";"
    assert [row.to_json() for row in listed.rows] == [{"mrn": "2014566950", "last_name": "LÉVÊQUE",
                                                       "first_name": "Anaïs", "birth_date": "14/03/1957"}]
    assert listed.columns == {"mrn": "N° IPP", "last_name": "Nom", "first_name": "Prénom",
                              "birth_date": "Date de naissance"}
    assert listed.ignored == ("Service",)


def test_a_byte_latin_1_lacks_in_windows_1252_is_still_read_as_latin_1() -> None:
    listed = read_patient_list("mrn;nom\n12\x81;X\n".encode("latin-1"), "l.csv")
    assert listed.encoding == "latin-1" and listed.rows[0].mrn == "12\x81"


@pytest.mark.parametrize("header", [
    "mrn,last_name,birth_date", "MRN,Last Name,Birth Date", "Medical Record Number,Surname,Date of birth",
    "IPP,NOM,DATE DE NAISSANCE", "n°ipp,nom de famille,né(e) le", "MedicalRecordNumber,LastName,BirthDate",
    '"IPP","Nom","Date de naissance"',
])
def test_headers_in_french_or_english_any_case_accents_or_punctuation(header: str) -> None:
    listed = read_patient_list(f"{header}\n2014566950,Lévêque,1957-03-14\n".encode(), "l.csv")
    assert set(listed.columns) == {"mrn", "last_name", "birth_date"} and listed.delimiter == ","


def test_tabs_commas_semicolons_and_empty_lines() -> None:
    for delimiter in (";", ",", "\t"):
        text = f"\n\nnom{delimiter}date de naissance\n\n{delimiter}\nDupont{delimiter}1957-03-14\n   \n"
        assert asked(text) == [{"line": 6, "last_name": "Dupont", "birth_date": "1957-03-14"}], delimiter


def test_a_row_is_named_by_mrn_or_by_last_name_and_birth_date() -> None:
    rows = asked("ipp;nom;prénom;date de naissance\n"
                 "2014566950;;;\n"  # the MRN alone
                 ";Dupont;;14/03/1957\n"  # day first, as written in France
                 ";Dupont;Jean;1957-3-4\n"
                 ";Dupont;;1957-03-14 00:00:00\n"  # a date a spreadsheet wrote with a time
                 '2014566951;"Le Gall, Yann";;\n')  # a quoted field holding the separator
    assert rows == [
        {"line": 2, "mrn": "2014566950"},
        {"line": 3, "last_name": "Dupont", "birth_date": "1957-03-14"},
        {"line": 4, "last_name": "Dupont", "first_name": "Jean", "birth_date": "1957-03-04"},
        {"line": 5, "last_name": "Dupont", "birth_date": "1957-03-14"},
        {"line": 6, "mrn": "2014566951", "last_name": "Le Gall, Yann"},
    ]


def test_a_row_that_cannot_name_a_patient_says_why_and_the_others_are_kept() -> None:
    rows = asked("mrn,nom,date de naissance\n"
                 "2.01457E+09,,\n"  # a long number a spreadsheet rounded
                 ",Dupont,31/02/1957\n"
                 ",Dupont,\n"
                 ",,14/03/1957\n"
                 "--,,\n"
                 ",'-',14/03/1957\n"
                 ',"Martin\n'  # a quote never closed: the rest of the file is one field
                 "2014566950,,\n")
    problems = {row["line"]: row.get("problem", "") for row in rows}
    assert "rounded by a spreadsheet" in problems[2] and "'31/02/1957' is not a date" in problems[3]
    assert "needs a birth date" in problems[4] and "needs a last name" in problems[5]
    assert "no letter or digit" in problems[6] and "no letter or digit" in problems[7]
    assert "several lines" in problems[8] and len(rows) == 7


def test_duplicate_rows_are_kept_for_the_restore_to_name() -> None:
    assert [row["line"] for row in asked("mrn\n1\n1\n\n1\n")] == [2, 3, 5]


@pytest.mark.parametrize(("data", "said"), [
    (b"", "liste.csv is empty"),
    (b"\n \r\n;;;\n", "no column names the patients: found none"),
    (codecs.BOM_UTF8, "liste.csv is empty"),
    (b"PK\x03\x04\x14\x00\x06\x00\x08\x00" + bytes(range(256)) * 8, "is not a text file"),  # an .xlsx (a zip)
    (b"%PDF-1.7\n\x01\x02binary", "is not a text file"),
    (b"mrn\n" + b"1" * (MAX_LINE + 1) + b"\n", f"line 2: {MAX_LINE + 1} characters long"),
    (b"mrn\n" + b"x" * 9_000_000, "more than a list of patients"),
    (b"mrn\n\n\n", "names no patient under its header line"),
    (b"mrn;ipp\n1;2\n", "two columns give the mrn ('mrn' and 'ipp'): keep one"),
    (b"\xff\xfeX\x00\x00\xd8", "starts as UTF-16 text but is not"),
], ids=["0 bytes", "separators only", "a BOM only", "xlsx", "pdf", "huge line", "huge file", "header only",
        "two MRN columns", "broken UTF-16"])
def test_what_cannot_be_a_list_is_refused_in_one_sentence(data: bytes, said: str) -> None:
    with pytest.raises(InputError, match=r"^liste\.csv") as refused:
        read_patient_list(data, "liste.csv")
    assert said in str(refused.value)


def test_unknown_columns_are_named_with_those_expected() -> None:
    with pytest.raises(InputError) as refused:
        read_patient_list("Patient;Né;Numéro\nDupont;1957;1\n".encode(), "liste.csv")
    message = str(refused.value)
    assert "found 'Patient', 'Né', 'Numéro'" in message
    for expected in ("mrn", "ipp", "last name", "nom", "birth date", "date de naissance"):
        assert expected in message
    with pytest.raises(InputError, match="no column names the patients: found 'nom'"):
        read_patient_list(b"nom\nDupont\n", "liste.csv")  # a last name without a birth date names no one


def test_a_list_longer_than_allowed_is_refused_before_anything_is_restored() -> None:
    assert len(asked("mrn\n" + "1\n" * 3, most_rows=3)) == 3
    with pytest.raises(InputError, match="more than 3 patients: split the list"):
        read_patient_list(("mrn\n" + "1\n" * 4).encode(), "liste.csv", most_rows=3)
