"""How names are compared: folded to lowercase ASCII letters and digits, so that `lefevre` finds LEFÈVRE,
`ndiaye` finds N'DIAYE and `jean baptiste` finds Jean-Baptiste; one typo is tolerated through the
deletion neighbourhood of each distinct term (a term and a query within one edit share a deletion)."""

from __future__ import annotations

import re
import unicodedata

_SPECIAL = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ø": "o", "Ø": "o", "đ": "d",
                          "ł": "l", "Ł": "l"})
_WORD = re.compile(r"[a-z0-9]+")
_TITLES = {"dr", "pr", "docteur", "professeur", "prof", "mme", "mr", "m", "me"}
MIN_FUZZY = 4  # a shorter query would be one edit away from too many names


def fold(text: str) -> str:
    """Lowercase ASCII, accents removed, every other character a space."""
    text = unicodedata.normalize("NFKD", text.translate(_SPECIAL))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return " ".join(_WORD.findall(text))


def words(text: str) -> list[str]:
    return fold(text).split()


def compact(text: str) -> str:
    """The folded text without separators: `N'Diaye` and `n diaye` both give `ndiaye`."""
    return "".join(words(text))


def name_terms(text: str) -> set[str]:
    """What a name is found by: its compact form, and each of its words when it has several."""
    parts = words(text)
    terms = {"".join(parts)} if parts else set()
    if len(parts) > 1:
        terms.update(parts)
    return terms


def text_terms(text: str) -> set[str]:
    return {w for w in words(text) if len(w) > 1}


def physician_fold(text: str) -> str:
    """A physician compared without titles: `Dr MARTIN-DUPONT` gives `martindupont`."""
    parts = words(text)
    while len(parts) > 1 and parts[0] in _TITLES:
        parts = parts[1:]
    return "".join(parts)


def deletions(term: str) -> set[str]:
    """The term with one character removed, every way."""
    return {term[:i] + term[i + 1:] for i in range(len(term))}


def neighbourhood(term: str) -> set[str]:
    return {term} | deletions(term) if len(term) >= MIN_FUZZY else {term}


def within_one_edit(a: str, b: str) -> bool:
    """One insertion, deletion, substitution or swap of neighbours at most (Damerau)."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        i, j = diffs[0], diffs[-1]
        return len(diffs) == 2 and j == i + 1 and a[i] == b[j] and a[j] == b[i]
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1:] == short for i in range(len(long)))


def prefix_end(prefix: str) -> str:
    """The smallest string after every string starting with `prefix` (folded text is ASCII)."""
    return prefix + "\x7f"
