"""Treatment sites: what a synthetic patient is treated for decides the diagnosis, the CT, the plans and ROIs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Roi:
    name: str
    color: str
    center: tuple[float, float]  # axial position as fractions of the body half width and half height
    radii: tuple[float, float]  # cm
    z_fraction: tuple[float, float]  # first and last slice of the volume, as fractions of its length
    interpreted_type: str = "ORGAN"


@dataclass(frozen=True)
class Site:
    key: str
    diagnoses: tuple[str, ...]
    series: tuple[str, ...]
    plan_names: tuple[str, ...]
    prescriptions: tuple[tuple[float, int], ...]  # (cGy per fraction, fractions)
    body_radii: tuple[float, float]  # half width, half height of the body in cm
    lungs: bool
    head: bool
    gantries: tuple[tuple[float, ...], ...]
    rois: tuple[Roi, ...]


_BODY = Roi("BODY", "skyblue", (0.0, 0.0), (0.0, 0.0), (0.0, 1.0), "EXTERNAL")
_SPINE = Roi("MOELLE", "yellow", (0.0, -0.55), (0.6, 0.6), (0.0, 1.0))

SITES: tuple[Site, ...] = (
    Site(
        "sein",
        ("C50.9 Sein gauche", "C50.4 Sein droit", "D05.1 CCIS sein gauche"),
        ("THORAX SEIN", "SEIN DV", "THORAX RESPI BLOQUEE"),
        ("SEIN G 50Gy/25F", "BOOST LIT", "SEIN D 40Gy/15F", "SEIN + SUS-CLAV"),
        ((200.0, 25), (266.7, 15), (250.0, 16)),
        (17.0, 11.0),
        True,
        False,
        ((300.0, 120.0), (305.0, 125.0, 0.0)),
        (
            _BODY,
            Roi("PTV_SEIN", "red", (0.35, 0.45), (5.0, 3.0), (0.3, 0.7)),
            Roi("COEUR", "magenta", (0.15, 0.1), (4.0, 3.5), (0.3, 0.6)),
            Roi("POUMON_G", "blue", (0.38, 0.05), (4.5, 6.0), (0.1, 0.9)),
            _SPINE,
        ),
    ),
    Site(
        "prostate",
        ("C61 Prostate", "C61 Prostate (récidive biologique)"),
        ("PELVIS", "PELVIS INJECTE", "PELVIS VESSIE PLEINE"),
        ("PROSTATE 78Gy", "PROSTATE VMAT", "LOGE 66Gy", "PELVIS 46Gy"),
        ((200.0, 39), (250.0, 28), (300.0, 20)),
        (18.0, 12.0),
        False,
        False,
        ((0.0, 72.0, 144.0, 216.0, 288.0), (180.0, 0.0, 90.0, 270.0)),
        (
            _BODY,
            Roi("PTV_PROSTATE", "red", (0.0, 0.0), (2.5, 2.2), (0.4, 0.6)),
            Roi("RECTUM", "brown", (0.0, -0.3), (1.5, 1.5), (0.3, 0.7)),
            Roi("VESSIE", "yellow", (0.0, 0.33), (3.0, 2.5), (0.4, 0.7)),
            Roi("TETE_FEMORALE_D", "green", (-0.5, 0.0), (2.5, 2.5), (0.4, 0.55)),
        ),
    ),
    Site(
        "poumon",
        ("C34.1 Poumon lobe supérieur droit", "C34.3 Poumon lobe inférieur gauche"),
        ("THORAX 4D MIP", "THORAX", "THORAX AVEC INJECTION"),
        ("POUMON D 60Gy", "POUMON SBRT 3x18Gy", "MEDIASTIN"),
        ((200.0, 30), (1800.0, 3), (1100.0, 5)),
        (16.0, 11.0),
        True,
        False,
        ((0.0, 40.0, 160.0, 200.0, 320.0), (180.0, 30.0)),
        (
            _BODY,
            Roi("PTV_POUMON", "red", (-0.38, 0.18), (2.5, 2.5), (0.4, 0.6)),
            Roi("POUMON_D", "blue", (-0.38, 0.05), (4.5, 6.0), (0.1, 0.9)),
            Roi("POUMON_G", "lightblue", (0.38, 0.05), (4.5, 6.0), (0.1, 0.9)),
            _SPINE,
        ),
    ),
    Site(
        "orl",
        ("C32.0 Larynx glottique", "C01 Base de langue", "C10.9 Oropharynx"),
        ("TETE ET COU", "ORL MASQUE", "CERVICAL INJECTE"),
        ("ORL 70Gy/35F", "ORL 54Gy", "AIRES GG"),
        ((200.0, 35), (212.0, 33), (180.0, 30)),
        (8.0, 8.5),
        False,
        True,
        ((180.0, 220.0, 260.0, 300.0, 340.0, 20.0, 60.0, 100.0, 140.0),),
        (
            _BODY,
            Roi("PTV_70", "red", (0.0, 0.3), (2.0, 1.5), (0.4, 0.6)),
            Roi("PAROTIDE_D", "green", (-0.5, 0.0), (1.5, 1.5), (0.5, 0.7)),
            Roi("PAROTIDE_G", "lime", (0.5, 0.0), (1.5, 1.5), (0.5, 0.7)),
            _SPINE,
        ),
    ),
    Site(
        "cerveau",
        ("C71.9 Glioblastome", "C79.3 Métastases cérébrales"),
        ("ENCEPHALE", "CRANE MASQUE", "IRM RECALEE"),
        ("ENCEPHALE 60Gy", "ENCEPHALE IN TOTO", "STEREO LESION 1"),
        ((200.0, 30), (300.0, 10), (900.0, 3)),
        (7.5, 9.0),
        False,
        True,
        ((90.0, 270.0), (0.0, 60.0, 300.0, 180.0)),
        (
            _BODY,
            Roi("PTV_CERVEAU", "red", (0.27, 0.11), (2.0, 2.0), (0.5, 0.65)),
            Roi("TRONC_CEREBRAL", "orange", (0.0, -0.22), (1.2, 1.2), (0.35, 0.6)),
            Roi("CHIASMA", "purple", (0.0, 0.22), (0.6, 0.3), (0.55, 0.6)),
        ),
    ),
    Site(
        "rectum",
        ("C20 Rectum", "C21.0 Canal anal"),
        ("PELVIS DV", "PELVIS PRONE"),
        ("RECTUM 50Gy", "RECTUM 5x5Gy", "CANAL ANAL 45Gy"),
        ((200.0, 25), (500.0, 5), (180.0, 25)),
        (18.0, 12.0),
        False,
        False,
        ((0.0, 90.0, 270.0), (0.0, 120.0, 240.0)),
        (
            _BODY,
            Roi("PTV_RECTUM", "red", (0.0, -0.2), (3.5, 3.0), (0.35, 0.7)),
            Roi("VESSIE", "yellow", (0.0, 0.33), (3.0, 2.5), (0.4, 0.7)),
            Roi("GRELE", "orange", (0.0, 0.5), (7.0, 3.0), (0.6, 0.9)),
        ),
    ),
    Site(
        "os",
        ("C79.5 Métastase osseuse D12", "C79.5 Métastase osseuse col fémoral"),
        ("RACHIS", "BASSIN"),
        ("DORSALE 8Gy", "DORSALE 30Gy/10F", "HANCHE 20Gy/5F"),
        ((800.0, 1), (300.0, 10), (400.0, 5)),
        (16.0, 11.0),
        True,
        False,
        ((0.0, 180.0), (180.0,)),
        (_BODY, Roi("PTV_OS", "red", (0.0, -0.5), (2.5, 2.0), (0.4, 0.6)), _SPINE),
    ),
)


def site_by_key(key: str) -> Site:
    for site in SITES:
        if site.key == key:
            return site
    raise KeyError(key)
