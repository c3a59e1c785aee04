"""`plan.Pinnacle.Machines`: the department's linac definitions, copied into every plan directory.

Real databases repeat this file byte for byte in every plan, which matters for deduplication; so it is built
once, from fixed data (no seed), and the same bytes are written everywhere.
"""

from __future__ import annotations

import functools
import math

from rtvault.demo.syntax import Entries, Numbers, Raw, document, object_version

_STAMP = b"\xb7\x1c"
VERSION_TIMESTAMP = "2019-03-13 11:12:23"  # the machines' version the plans of a generated database name
_WEDGES = ("No Wedge", "15 Wedge", "30 Wedge", "45 Wedge", "60 Wedge")
_FIELD_SIZES = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 35, 40)
_MACHINES = (
    ("Clinac iX", "Varian Clinac-2100", ((6, "6X"), (18, "18X")), ((6, "6E"), (9, "9E"), (12, "12E"))),
    ("TrueBeam STx", "Varian TrueBeam", ((6, "6X"), (10, "10X"), (6, "6X FFF")), ((9, "9E"), (16, "16E"))),
)


def _angle(name: str, minimum: float, maximum: float, can_arc: bool) -> Entries:
    return [
        ("Name", name),
        ("TwelveOClockAngle", 0),
        ("ClockwiseIncreases", 1),
        ("NominalAngle", 0),
        ("MinimumAngle", minimum),
        ("MaximumAngle", maximum),
        ("MaxGantryRotationSpeed", 6),
        ("DecimalPlaces", 1),
        ("CanBeArc", int(can_arc)),
        ("RotationDirection", "CW or CCW"),
        ("DiscreteAngleList", []),
    ]


def _leaf_pairs(count: int) -> Entries:
    pairs: Entries = []
    for index in range(count):
        width = 0.5 if 10 <= index < count - 10 else 1.0
        center = -20 + (index + 0.5) * 40 / count
        pairs.append(
            (
                "MLCLeafPair",
                [
                    ("YCenterPosition", round(center, 3)),
                    ("NegateLeafCoordinate", 1),
                    ("Width", width),
                    ("MinTipPosition", -20),
                    ("MaxTipPosition", 20),
                    ("SideLeakageWidth", 0.1),
                    ("TipLeakageWidth", 0.1),
                ],
            )
        )
    return pairs


def _wedge_context(wedge: str) -> Entries:
    return [
        ("WedgeName", wedge),
        ("Orientation", "NoWedge" if wedge == "No Wedge" else "WedgeLeftToRight"),
        ("OffsetOrigin", "Patient Surface"),
        ("OffsetDistance", -2.5),
        ("Angle", "No Wedge" if wedge == "No Wedge" else "Fixed"),
        ("MinDeliverableMU", 0),
        ("MaxDeliverableMU", Raw("1e+30")),
    ]


def _geometry(name: str, wedge: str, half: float, output: float) -> Entries:
    return [
        ("Name", name),
        ("MeasurementSSD", 90),
        ("WedgeContext", _wedge_context(wedge)),
        *[(f"{side}JawPosition", half) for side in ("Left", "Right", "Top", "Bottom")],
        *[(f"{side}MLCPosition", 0) for side in ("Left", "Right", "Top", "Bottom")],
        ("ClosedMLCLeafOffset", 0),
        ("CircularCollimatorName", ""),
        ("ElectronApplicatorName", ""),
        ("ProfileList", []),
        ("CompareList", []),
        ("MeasuredOutputFactor", round(output, 3)),
        ("PhantomOutputFactor", round(output * 1.004, 6)),
        ("OutputFactorDepth", 5),
        ("UserDefinedMLCInProfile", 0),
        ("MLCsViolateMachineLimits", 0),
        ("UseElectronCutout", 0),
        ("CutoutApertureIsRectangular", 1),
        ("CutoutApertureXHalfWidth", 5),
        ("CutoutApertureYHalfWidth", 5),
    ]


def _wedge(name: str) -> Entries:
    """A `WedgeList` item: the physical wedges by their nominal angle, "EDW" a Varian enhanced dynamic wedge (its
    angle is each beam's own)."""
    dynamic = name == "EDW"
    return [
        ("Name", name),
        ("SourceToWedgeDistance", 53 if dynamic else 57.58),
        ("NominalAngle", 0 if dynamic else int(name.split()[0])),
        ("Material", "Iron" if dynamic else "Steel"),
        ("IsDynamic", int(dynamic)),
    ]


def _calibration(energy: float) -> float:
    return round(0.78 + energy / 100, 4)


def dose_per_mu_at_calibration(machine: str, energy_name: str) -> float:
    """The `DosePerMuAtCalibration` (cGy/MU) of a machine's energy, as its file says: what Pinnacle multiplies
    into a beam's MU (MU = PrescriptionDose / (NormalizedDose x CollimatorOutputFactor x TotalTransmission x
    DosePerMuAtCalibration))."""
    spec = next(spec for spec in _MACHINES if spec[0] == machine)
    return _calibration(next(value for value, name in (*spec[2], *spec[3]) if name == energy_name))


def _output_factors(energy: float, wedges: tuple[str, ...]) -> Entries:
    geometries: Entries = []
    for w, wedge in enumerate(wedges):
        for size in _FIELD_SIZES:
            output = (0.62 + 0.38 * (1 - math.exp(-size / 6.0))) * (1 - 0.12 * w) * (1 + energy / 400)
            name = f"OutputFactorGeometry_{len(geometries)}"
            geometries.append(("MeasureGeometry", _geometry(name, wedge, size / 2, output)))
    return [
        ("ReferenceDepth", 10),
        ("SourceToCalibrationPointDistance", 100),
        ("DosePerMuAtCalibration", _calibration(energy)),
        ("CalibrationGeometry", _geometry("", "No Wedge", 5, 1.0)),
        ("MeasureGeometryList", geometries),
    ]


def _depth_dose(energy: float, points: int) -> Numbers:
    values: list[float] = []
    dmax = 0.15 * energy + 0.6
    for i in range(points):
        depth = i * 0.2
        buildup = 1 - math.exp(-depth / (dmax / 2.5))
        values += [round(depth, 2), round(100 * buildup * math.exp(-0.045 * max(0.0, depth - dmax)), 4)]
    return Numbers(values)


def _spectrum(energy: float) -> Entries:
    bins = [round(0.25 * (i + 1) * energy / 6, 3) for i in range(40)]
    weights = [round(b * math.exp(-b / (energy / 3)), 5) for b in bins]
    return [
        ("RawData", [("NumberOfDimensions", 2), ("NumberOfPoints", len(bins)), ("Points", Numbers([]))]),
        (
            "SpectrumData",
            [("NumberOfDimensions", 2), ("Points", Numbers([v for p in zip(bins, weights, strict=True) for v in p]))],
        ),
        ("DepthDose", [("NumberOfDimensions", 2), ("NumberOfPoints", 200), ("Points", _depth_dose(energy, 200))]),
    ]


def _energy(index: int, value: float, name: str, electrons: bool) -> Entries:
    physics: Entries = [("OutputFactor", _output_factors(value, _WEDGES[:1] if electrons else _WEDGES))]
    if not electrons:
        physics.append(
            (
                "PhotonModel",
                [
                    (
                        "ObjectVersion",
                        object_version("Pinnacle v16.0", "physique", "2019-03-13 11:12:23", "2019-12-12 10:10:53"),
                    ),
                    ("BeamSpectrum", _spectrum(value)),
                ],
            )
        )
    return [("Value", value), ("Id", index), ("Name", name), ("ScanPatternLabel", ""), ("PhysicsData", physics)]


def _machine(name: str, kind: str, photons: tuple, electrons: tuple, commissioned_by: str = "") -> Entries:
    return [
        ("Name", name),
        ("MachineType", kind),
        ("VersionTimestamp", VERSION_TIMESTAMP),
        ("VersionDescription", "recette 2019: angles bras et décimales mâchoires"),
        *([("CommissionedBy", commissioned_by)] if commissioned_by else []),
        ("ObjectVersion", object_version("Pinnacle v16.0", "physique", "2008-07-04 17:35:04", "2019-12-12 10:10:53")),
        ("CommissionedForPhotons", 1),
        ("CommissionedForElectrons", int(bool(electrons))),
        ("SAD", 100),
        ("SourceToBlockTrayDistance", 64.5),
        ("CouchAngle", _angle("", 265, 95, False)),
        ("GantryAngle", _angle("", 180, 179.9, True)),
        ("CollimatorAngle", _angle("", 165, 195, False)),
        ("HasMLC", 1),
        ("MultiLeaf", [("LeafPairList", _leaf_pairs(60)), ("Vendor", "Varian"), ("SourceToMLCDistance", 53.83)]),
        ("WedgeList", [("Wedge", _wedge(w)) for w in (*_WEDGES[1:], "EDW")]),
        ("ToleranceTableList", [("TolTable", [("Name", f"{n} Generic"), ("Number", n)]) for n in range(1, 8)]),
        ("PhotonEnergyList", [("MachineEnergy", _energy(i, v, n, False)) for i, (v, n) in enumerate(photons)]),
        ("ElectronEnergyList", [("MachineEnergy", _energy(i, v, n, True)) for i, (v, n) in enumerate(electrons)]),
        ("StereoEnergyList", []),
        ("MaxJawSpeed", 2),
    ]


@functools.cache
def machines_bytes() -> bytes:
    """The whole `plan.Pinnacle.Machines` file, built once per process and identical in every plan."""
    entries: Entries = [(f"#{i}", _machine(*spec)) for i, spec in enumerate(_MACHINES)]
    return document(entries, _STAMP)


def machine_entries(index: int, commissioned_by: str) -> Entries:
    """One machine as a physics tree's `Pinnacle.Machine` holds it: the same definition the plans name."""
    return _machine(*_MACHINES[index], commissioned_by)


MACHINE_NAMES = tuple(spec[0] for spec in _MACHINES)
MACHINE_ENERGIES = tuple((*spec[2], *spec[3]) for spec in _MACHINES)  # (value, name) of each machine's energies
