"""Who the synthetic catalog's patients are: names, birth dates and physicians drawn like a French population.

Surnames follow a Zipf-like law over a fixed, invented-by-combination universe of about 70,000 French surnames
(accents, compound names, particles, apostrophes), headed by the demo database's own table
(`demo.names.LAST_NAMES`, most common first): the most common is ~0.4 % of patients, as MARTIN is in France.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache

from rtvault.demo.names import LAST_NAMES

_STEMS = (
    "Beau", "Bou", "Cha", "Chau", "Dela", "Fer", "Gal", "Gué", "Jou", "Lam", "Lan", "Mar", "Mor", "Pel", "Pey",
    "Ros", "Tou", "Ver", "Vill", "Bel", "Ber", "Bla", "Bro", "Cas", "Cor", "Dor", "Fon", "Gar", "Gir", "Lab",
    "Lar", "Mal", "Mon", "Pon", "Ram", "Rib", "Sal", "Tal", "Val", "Bé", "Lé", "Mé", "Pré", "Thé", "Hé", "Ché",
    "Ker", "Gou", "Quén", "Rou", "Sau", "Tré", "Vau", "Bau", "Cou", "Dau", "Fau", "Hau", "Lau", "Mau", "Bar",
    "Bon", "Bour", "Car", "Char", "Clé", "Cro", "Duf", "Es", "Fran", "Gau", "Gil", "Gra", "Jac", "Lef", "Leg",
    "Mas", "Mich", "Ner", "Pas", "Pic", "Pou", "Rav", "Ren", "Sou", "Tess", "Vid", "Aub", "Ar", "Or",
)  # fmt: skip
_JOINTS = {True: ("", "r", "ch", "l", "n", "ss", "rr", "v", "t", "ll", "rd", "gn", "m", "d", "b"),  # after a vowel
           False: ("", "a", "e", "i", "o", "ou", "ell", "ill", "ar", "er", "on", "an", "eg", "ag")}
_ENDINGS = (
    "and", "ard", "art", "aud", "ault", "eau", "eaux", "el", "elle", "er", "ès", "et", "ette", "eux", "ier", "in",
    "ine", "is", "on", "ot", "oux", "uc", "y", "é", "ère", "ais", "as", "at", "ert", "oud", "ac", "ec", "ou", "ic",
    "ent", "ieu", "ias", "chard", "let", "lier", "mont", "net", "ron", "teau", "ville", "court", "bert", "geot",
    "quet", "lin", "rand", "det", "mier", "baud", "lot", "nier", "vaux", "champ", "vier", "card", "çon", "zé",
    "gny", "thier", "rieu",
)  # fmt: skip
_VOWELS = frozenset("aeiouyéèêëàâîïôûüAEIOUÉ")
_PARTICLES = ("de ", "de la ", "du ", "des ", "Le ", "La ", "de Saint-", "Van ", "El ")
_N_APOSTROPHE = (("D", "G", "Gu", "Z", "K", "Dj", "Do", "Go"),
                 ("iaye", "essan", "oran", "ouba", "ala", "iallo", "ama", "ombo", "ué", "iré", "our", "ao"))
_L_APOSTROPHE = ("L'Hôte", "L'Huillier", "L'Hermitte", "L'Hostis", "L'Helgouac'h", "L'Hénoret")
FEMALE_FIRST = (
    "Marie", "Nathalie", "Isabelle", "Sylvie", "Catherine", "Françoise", "Christine", "Monique", "Valérie",
    "Sandrine", "Nicole", "Véronique", "Jacqueline", "Martine", "Hélène", "Chantal", "Anne", "Christiane",
    "Céline", "Brigitte", "Stéphanie", "Camille", "Léa", "Chloé", "Émilie", "Inès", "Zoé", "Anaïs", "Maëlle",
    "Noémie", "Agnès", "Bénédicte", "Geneviève", "Thérèse", "Cécile", "Élodie", "Éloïse", "Joséphine",
    "Aïcha", "Fatoumata", "Solène", "Gaëlle", "Josiane", "Danièle", "Ginette", "Paulette", "Yvette", "Odile",
    "Mireille", "Colette", "Françoise-Marie", "Marie-Thérèse", "Anne-Sophie", "Marie-Christine", "Marie-Hélène",
    "Anne-Marie", "Marie-Noëlle", "Marie-José", "Laure-Anne", "Rose-Marie",
)  # fmt: skip
MALE_FIRST = (
    "Jean", "Philippe", "Michel", "Alain", "Patrick", "Nicolas", "Christophe", "Pierre", "Christian", "Éric",
    "Frédéric", "Laurent", "Stéphane", "David", "Pascal", "Daniel", "Thierry", "Julien", "Olivier", "Bernard",
    "Jérôme", "Loïc", "Gaël", "Noël", "Hervé", "André", "René", "Raphaël", "Benoît", "Joël", "Théo",
    "Clément", "Grégoire", "Cédric", "Gérard", "Jacques", "Yannick", "Mamadou", "Karim", "Émile", "Léon",
    "Maël", "Anthony", "Sébastien", "Rémi", "Hugues", "Aurélien", "Jean-Baptiste", "Jean-François",
    "Jean-Pierre", "Jean-Claude", "Jean-Loïc", "Jean-Marc", "Pierre-Yves", "Jean-Michel", "Jean-Luc",
    "Marc-André", "Jean-Noël", "Paul-Émile", "Jean-Hervé",
)  # fmt: skip
MIDDLE_NAMES = ("Marie", "Joseph", "Louise", "Pierre", "Hélène", "Jean", "Thérèse", "Noël", "Andrée", "Hervé")

def _zipf_cumulative(count: int, offset: float, exponent: float = 1.0) -> list[float]:
    """Cumulative Zipf–Mandelbrot weights (rank + offset)^-exponent: a flat head, then a long tail."""
    return list(itertools.accumulate((rank + offset) ** -exponent for rank in range(1, count + 1)))


def _joins(left: str, right: str) -> bool:
    """Whether two pieces make a pronounceable French-looking name (no vowel or consonant pile-up)."""
    if left[-1] in _VOWELS:
        return right[0] not in _VOWELS
    return right[0] in _VOWELS or (left[-1] in "rln" and left[-2] in _VOWELS)


def _simple_surnames() -> list[str]:
    made = {stem + joint + ending for stem in _STEMS for joint in _JOINTS[stem[-1] in _VOWELS]
            for ending in _ENDINGS if _joins(stem + joint, ending) if joint or _joins(stem, ending)}
    return sorted(made - set(LAST_NAMES))


@lru_cache(maxsize=1)
def surname_universe() -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Every surname, most common first, with cumulative weights; the same for every seed."""
    rng = random.Random("rtvault synthetic surnames")
    simple = _simple_surnames()
    rng.shuffle(simple)
    with_vowel = [n for n in simple if n[0] in _VOWELS]
    particles = [rng.choice(_PARTICLES) + rng.choice(simple) for _ in range(8_000)]
    apostrophes = [f"N'{a}{b}" for a in _N_APOSTROPHE[0] for b in _N_APOSTROPHE[1]]
    apostrophes += [f"D'{rng.choice(with_vowel)}" for _ in range(1_500)] + list(_L_APOSTROPHE)
    head = list(LAST_NAMES) + simple[:2_000]
    compounds = [f"{rng.choice(head)}-{rng.choice(head)}" for _ in range(6_000)]
    tail = simple + particles + apostrophes + compounds
    rng.shuffle(tail)
    names = tuple(dict.fromkeys([*LAST_NAMES, *tail]))
    return names, tuple(_zipf_cumulative(len(names), 5.0, 0.75))


@dataclass
class Names:
    """Draws people: surnames by the law above, first names by a steeper one per gender."""

    rng: random.Random
    surnames: tuple[tuple[str, ...], tuple[float, ...]] = field(default_factory=surname_universe)
    female: list[float] = field(default_factory=lambda: _zipf_cumulative(len(FEMALE_FIRST), 4.0))
    male: list[float] = field(default_factory=lambda: _zipf_cumulative(len(MALE_FIRST), 4.0))
    doctors: list[float] = field(default_factory=lambda: _zipf_cumulative(len(physicians()), 3.0))

    def draw(self, names: tuple[str, ...], cumulative: list[float] | tuple[float, ...]) -> str:
        return names[bisect.bisect(cumulative, self.rng.random() * cumulative[-1])]

    def person(self) -> dict[str, str]:
        female = self.rng.random() < 0.5
        first = self.draw(*((FEMALE_FIRST, self.female) if female else (MALE_FIRST, self.male)))
        middle = self.rng.choice(MIDDLE_NAMES) if self.rng.random() < 0.25 else ""
        upper_first = self.rng.random() < 0.4
        last = self.draw(*self.surnames)
        return {"last_name": last.upper() if self.rng.random() < 0.85 else last,
                "first_name": first.upper() if upper_first else first,
                "middle_name": middle.upper() if upper_first else middle, "gender": "Female" if female else "Male",
                "radiation_oncologist": self.draw(physicians(), self.doctors)}

    def birth_date(self) -> str | None:
        """Radiotherapy patients are mostly born around 1955, but every year from 1920 to 2020 appears."""
        if self.rng.random() < 0.04:
            return None
        year = round(self.rng.gauss(1955, 14)) if self.rng.random() < 0.85 else self.rng.randint(1920, 2020)
        day = date(min(max(year, 1920), 2020), 1, 1) + timedelta(days=self.rng.randrange(365))
        return day.isoformat()


@lru_cache(maxsize=1)
def physicians() -> tuple[str, ...]:
    """Thirty radiation oncologists, the first ones busier."""
    rng = random.Random("rtvault synthetic physicians")
    picked = [*rng.sample(LAST_NAMES[:50], 26), "N'Diaye", "Le Goff", "Martin-Dupont", "Béranger"]
    return tuple(f"{'Pr' if i % 7 == 0 else 'Dr'} {name.upper()}" for i, name in enumerate(picked))
