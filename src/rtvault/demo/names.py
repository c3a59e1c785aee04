"""Synthetic French identities: accents, hyphens, apostrophes and particles, typed the way centres type them.

Every name here is invented by combination; none is a real patient. All strings are Latin-1 encodable
(no œ, no ÿ), because Pinnacle writes Latin-1.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

LAST_NAMES = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
    "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "Bertrand", "Roux", "Vincent", "Fournier", "Morel",
    "Girard", "André", "Mercier", "Dupont", "Lambert", "Bonnet", "François", "Legrand", "Garnier", "Faure",
    "Rousseau", "Guérin", "Perrin", "Clément", "Gauthier", "Chevalier", "Hébert", "Noël", "Bénard",
    "Lemaître", "Chrétien", "Ménard", "Benoît", "Thébault", "Jégou", "Prévost", "Côté", "Lhôte", "Désiré",
    "Kerhervé", "Le Goff", "Le Gall", "Le Bihan", "de La Fontaine", "du Pont", "de Saint-Exupéry",
    "N'Diaye", "D'Almeida", "D'Aboville", "Martin-Dupont", "Durand-Lefèvre", "Nguyen", "Traoré", "Benali",
    "Da Silva", "Dos Santos", "Ferreira", "Bouchard", "Brûlé", "Besançon", "Aubépine", "Lefort-Hénaff",
)  # fmt: skip

FEMALE_FIRST_NAMES = (
    "Marie", "Jeanne", "Françoise", "Monique", "Hélène", "Zoé", "Anaïs", "Maëlle", "Chloé", "Léa", "Inès",
    "Noémie", "Agnès", "Bénédicte", "Geneviève", "Thérèse", "Cécile", "Élodie", "Éloïse", "Marie-Thérèse",
    "Anne-Sophie", "Joséphine", "Célestine", "Aïcha", "Fatoumata", "Nathalie", "Sylvie", "Solène", "Gaëlle",
)  # fmt: skip

MALE_FIRST_NAMES = (
    "Jean", "Pierre", "Jean-Baptiste", "François", "Jérôme", "Loïc", "Gaël", "Noël", "Hervé", "Stéphane",
    "Frédéric", "André", "René", "Raphaël", "Benoît", "Joël", "Jean-Loïc", "Théo", "Clément", "Grégoire",
    "Cédric", "Gérard", "Jacques", "Yannick", "Mamadou", "Karim", "Émile", "Léon", "Jean-François",
)  # fmt: skip

MIDDLE_NAMES = ("Marie", "Joseph", "Louise", "Pierre", "Hélène", "Jean", "Thérèse", "Noël")

RADIATION_ONCOLOGISTS = (
    "Dr BÉRANGER", "Dr LE GOFF", "Dr MARTIN-DUPONT", "Dr DESCHAMPS", "Dr N'DIAYE", "Dr FAURE",
)  # fmt: skip
REFERRING_PHYSICIANS = ("Dr GIRAUD", "Dr PÉRIGNON", "Dr DA SILVA", "Dr LEBRUN", "Dr ÉTIENNE", "")
ONCOLOGISTS = ("Dr CHÂTELAIN", "Dr MOREL", "Dr BENALI", "")
RADIOLOGISTS = ("Dr LEMOINE", "Dr FERRAND", "")
PHYSICISTS = ("CLAIRE MÉNARD", "THOMAS GIRAUD", "HÉLÈNE ROUSSEL", "YANN LE BRIS")
DOSIMETRISTS = ("AURÉLIE BONNET", "KEVIN LEROUX", "SÉBASTIEN MOREAU", "LÉA FONTAINE", "MAËVA CORRE")

COMMENTS = (
    "CT TREATMENT PLANNING ",
    "Patient sous anticoagulants",
    "Contention: masque 5 points",
    "Vessie pleine, rectum vide",
    "Pacemaker: voir cardiologue avant traitement",
    "Transport en ambulance",
    "",
    "",
)
QUOTED_COMMENTS = ('Surnom "Jojo" à l\'accueil', 'Préfère être appelée "Madame Lou"')


@dataclass(frozen=True)
class Identity:
    """Who a synthetic patient is, as written in the Patient file (birth_date_text) and as a reader should
    understand it (birth_date, ISO or None)."""

    last_name: str
    first_name: str
    middle_name: str
    mrn: str
    gender: str
    birth_date_text: str
    birth_date: str | None
    radiation_oncologist: str
    primary_physician: str
    referring_physician: str
    oncologist: str
    radiologist: str
    comment: str

    @property
    def volume_name(self) -> str:
        """The `LAST^FIRST^MIDDLE` name Pinnacle gives the patient's image volumes."""
        return f"{self.last_name}^{self.first_name}^{self.middle_name}"


def _typed(name: str, upper: bool) -> str:
    return name.upper() if upper else name


def birth_date(rng: random.Random) -> tuple[str, str | None]:
    """A birth date between 1930 and 2010 as typed (`-`, `/` or space separators) and as ISO; ~15% empty."""
    if rng.random() < 0.15:
        return "", None
    year = rng.randint(1930, 2010)
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    separator = rng.choices(("-", "/", " "), weights=(60, 25, 15))[0]
    iso = f"{year:04d}-{month:02d}-{day:02d}"
    return iso.replace("-", separator), iso


def new_mrn(rng: random.Random, used: set[str]) -> str:
    """A medical record number: year of first visit and a sequence, unique within `used`."""
    while True:
        mrn = f"{rng.randint(2012, 2025)}{rng.randint(0, 999999):06d}"
        if mrn not in used:
            used.add(mrn)
            return mrn


def _comment(rng: random.Random) -> str:
    if rng.random() < 0.12:
        return rng.choice(QUOTED_COMMENTS)
    return rng.choice(COMMENTS)


def make_identity(rng: random.Random, used_mrns: set[str]) -> Identity:
    female = rng.random() < 0.5
    first = rng.choice(FEMALE_FIRST_NAMES if female else MALE_FIRST_NAMES)
    upper_first = rng.random() < 0.4
    middle = rng.choice(MIDDLE_NAMES) if rng.random() < 0.3 else ""
    text, iso = birth_date(rng)
    return Identity(
        last_name=_typed(rng.choice(LAST_NAMES), rng.random() < 0.85),
        first_name=_typed(first, upper_first),
        middle_name=_typed(middle, upper_first),
        mrn=new_mrn(rng, used_mrns),
        gender="Female" if female else "Male",
        birth_date_text=text,
        birth_date=iso,
        radiation_oncologist=rng.choice(RADIATION_ONCOLOGISTS),
        primary_physician=rng.choice(REFERRING_PHYSICIANS),
        referring_physician=rng.choice(REFERRING_PHYSICIANS),
        oncologist=rng.choice(ONCOLOGISTS),
        radiologist=rng.choice(RADIOLOGISTS),
        comment=_comment(rng),
    )
