"""Arc beams and wedges in the RT Plan, read back with pydicom as a physicist would: dciodvfy finds no error; an
arc's control points carry the gantry angles, rotation direction (CW, CC, NONE on the last) and cumulative weights
of its Pinnacle control points (a Conformal Arc's single one becomes start and stop), also across 0° and 180°; a
wedge's ID, type, angle and orientation for each Pinnacle orientation; what cannot be written is named and the rest
exported."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pydicom
import pytest

from kit.dicom import dciodvfy_errors
from rtvault.demo import generate_database
from rtvault.dicom.common import Export, write_dataset
from rtvault.dicom.rtplan import build_rtplan
from rtvault.dicom.uids import Ids
from rtvault.pinnacle.treatment import DirectorySource, Treatment, read_treatment
from rtvault.pinnacle.treatment_machines import machine_geometry

SAMPLE = "Institution_1/Mount_0/Patient_1"
pytestmark = pytest.mark.slow  # a demo database and an export per case
WEDGED = 'Orientation = "Wedge'  # in a plan.Trial, a wedged control point


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three patients: the first plain, the second with a counter-clockwise Conformal Arc, the third wedged."""
    root = tmp_path_factory.mktemp("demo")
    generate_database(root / "db", patients=3, seed=41, image_mb=0.3)
    return root / "db"


def patient_with(demo: Path, needle: str, tmp_path: Path) -> Path:
    """A copy (to edit) of the demo patient whose Plan_0/plan.Trial contains `needle`."""
    source = next(p for p in sorted(demo.glob("Institution_*/Mount_*/Patient_*"))
                  if needle in (p / "Plan_0/plan.Trial").read_text(encoding="latin-1"))
    return Path(shutil.copytree(source, tmp_path / source.name))


def export_rtplan(patient: Path, out: Path) -> tuple[Treatment, pydicom.Dataset, list[str]]:
    """The RT Plan of Plan_0's first trial, written to `out`, checked by dciodvfy, read back; and its problems."""
    treatment = read_treatment(DirectorySource(patient))
    export = Export(Ids("2.25", patient.name, "tree-1"), treatment.identity, "2024-01-02T10:00:00Z",
                    "2024-03-04T05:06:07Z")
    built = build_rtplan(export, treatment, treatment.plans[0], 0)
    out.mkdir(parents=True, exist_ok=True)
    write_dataset(built.dataset, out / "RP.dcm")
    assert dciodvfy_errors(out / "RP.dcm") == []
    return treatment, pydicom.dcmread(out / "RP.dcm"), [str(p) for p in built.problems]


def beam_blocks(text: str) -> list[tuple[int, int]]:
    """Where each `Beam ={` block of a plan.Trial starts and ends (the next one's start, or the file's end)."""
    starts = [m.start() for m in re.finditer(r"\n\s*Beam =\{", text)]
    return list(zip(starts, [*starts[1:], len(text)], strict=True))


def make_arc(patient: Path, beam: int, beam_type: str, gantries: list[float], stop: float | None, ccw: bool) -> None:
    """Rewrite beam `beam` of Plan_0's first trial as an arc: its control points' Gantry, the last one's StopAngle
    (none when `stop` is None), GantryIsCCW."""
    path = patient / "Plan_0/plan.Trial"
    text = path.read_text(encoding="latin-1")
    start, end = beam_blocks(text)[beam]
    block = re.sub(r'SetBeamType = "[^"]*";', f'SetBeamType = "{beam_type}";', text[start:end], count=1)
    block = re.sub(r"\n(\s*)StopAngle = [-\d.]+;", "", block)
    angles = iter(gantries)
    block = re.sub(r"\bGantry = [-\d.]+;", lambda _: f"Gantry = {next(angles)};", block, count=len(gantries))
    if stop is not None:
        last = list(re.finditer(r"\n(\s*)Gantry = [-\d.]+;", block))[len(gantries) - 1]
        block = block[:last.end()] + f"\n{last.group(1)}StopAngle = {stop};" + block[last.end():]
    block = re.sub(r"GantryIsCCW = \d;", f"GantryIsCCW = {int(ccw)};", block, count=1)
    path.write_text(text[:start] + block + text[end:], encoding="latin-1")


def set_wedge(patient: Path, name: str, orientation: str, angle: str) -> None:
    """Every WedgeContext of Plan_0/plan.Trial's first beam set to this wedge."""
    path = patient / "Plan_0/plan.Trial"
    text = path.read_text(encoding="latin-1")
    start, end = beam_blocks(text)[0]
    block = re.sub(r'WedgeName = "[^"]*";', f'WedgeName = "{name}";', text[start:end])
    block = re.sub(r'Orientation = "[^"]*";', f'Orientation = "{orientation}";', block)
    block = re.sub(r"\bAngle = (\"[^\"]*\"|[\d.]+);", f"Angle = {angle};", block)
    path.write_text(text[:start] + block + text[end:], encoding="latin-1")


def arc_readback(item: pydicom.Dataset) -> list[tuple[float, str, float]]:
    cps = item.ControlPointSequence
    return [(float(cp.GantryAngle), str(cp.GantryRotationDirection), float(cp.CumulativeMetersetWeight))
            for cp in cps]


def test_the_demo_conformal_arc_is_two_control_points_from_start_to_stop(demo: Path, tmp_path: Path) -> None:
    patient = patient_with(demo, "Conformal Arc", tmp_path)
    treatment, rtplan, problems = export_rtplan(patient, tmp_path / "out")
    assert problems == []
    model = treatment.plans[0].trials[0]
    arcs = [(b, item) for b, item in zip(model.beams, rtplan.BeamSequence, strict=True) if b.is_arc]
    assert len(arcs) == 1 and len(rtplan.BeamSequence) == len(model.beams)  # no beam left out
    beam, item = arcs[0]
    (cp,) = beam.control_points
    turning = "CC" if beam.gantry_is_ccw else "CW"
    assert item.BeamType == "DYNAMIC" and int(item.NumberOfControlPoints) == 2
    assert arc_readback(item) == [(cp.gantry_deg, turning, 0.0), (cp.gantry_stop_deg, "NONE", 1.0)]
    # the jaws and leaves of its single control point on both
    for dicom_cp in item.ControlPointSequence:
        jaws = {d.RTBeamLimitingDeviceType: [float(v) for v in d.LeafJawPositions]
                for d in dicom_cp.BeamLimitingDevicePositionSequence}
        assert jaws["ASYMX"] == pytest.approx([-10 * cp.jaws.left, 10 * cp.jaws.right])
        assert len(jaws["MLCX"]) == 2 * len(cp.mlc_cm)


@pytest.mark.parametrize(("gantries", "stop", "ccw", "expected"), [
    ([340, 10], 40, False, [(340, "CW"), (10, "CW"), (40, "NONE")]),  # clockwise through 0°
    ([200, 170], 150, True, [(200, "CC"), (170, "CC"), (150, "NONE")]),  # counter-clockwise through 180°
    ([170, 190], 210, False, [(170, "CW"), (190, "CW"), (210, "NONE")]),  # clockwise through 180°
    ([20, 20], 330, True, [(20, "NONE"), (20, "CC"), (330, "NONE")]),  # a sector that does not turn
])
def test_a_dynamic_arc_keeps_each_control_points_angle_direction_and_weight(
        demo: Path, tmp_path: Path, gantries: list[float], stop: float, ccw: bool,
        expected: list[tuple[float, str]]) -> None:
    patient = patient_with(demo, "Conformal Arc", tmp_path)
    make_arc(patient, 0, "Dynamic Arc", gantries, stop, ccw)
    treatment, rtplan, problems = export_rtplan(patient, tmp_path / "out")
    assert problems == []
    beam, item = treatment.plans[0].trials[0].beams[0], rtplan.BeamSequence[0]
    assert [cp.gantry_deg for cp in beam.control_points] == gantries and beam.gantry_is_ccw is ccw
    weights = [cp.weight for cp in beam.control_points]
    cumulative = [0.0, weights[0] / sum(weights), 1.0]
    read = arc_readback(item)
    assert [(a, d) for a, d, _ in read] == expected
    assert [w for _, _, w in read] == pytest.approx(cumulative)
    assert item.BeamType == "DYNAMIC" and float(item.FinalCumulativeMetersetWeight) == 1.0


def test_an_arc_without_its_stop_angle_is_named_and_the_rest_exported(demo: Path, tmp_path: Path) -> None:
    patient = patient_with(demo, "Conformal Arc", tmp_path)
    make_arc(patient, 0, "Conformal Arc", [90], None, False)
    treatment, rtplan, problems = export_rtplan(patient, tmp_path / "out")
    lost = treatment.plans[0].trials[0].beams[0]
    assert any(f"beam {lost.name!r}" in p and "its stop angle (StopAngle of its last control point) is unknown"
               in p and "left out of the RT Plan" in p for p in problems), problems
    assert len(rtplan.BeamSequence) == len(treatment.plans[0].trials[0].beams) - 1
    assert 1 not in {int(b.BeamNumber) for b in rtplan.BeamSequence}


def test_the_demo_wedge_is_written_with_its_position_in(demo: Path, tmp_path: Path) -> None:
    patient = patient_with(demo, WEDGED, tmp_path)  # the TrueBeam's EDW or the Clinac's 45 Wedge
    treatment, rtplan, problems = export_rtplan(patient, tmp_path / "out")
    assert problems == []
    beam, item = treatment.plans[0].trials[0].beams[0], rtplan.BeamSequence[0]
    assert int(item.NumberOfWedges) == 1 and len(item.WedgeSequence) == 1
    wedge = item.WedgeSequence[0]
    assert wedge.WedgeID == beam.control_points[0].wedge_name and int(wedge.WedgeNumber) == 1
    positions = item.ControlPointSequence[0].WedgePositionSequence
    assert positions[0].WedgePosition == "IN" and int(positions[0].ReferencedWedgeNumber) == 1
    assert all("WedgeSequence" not in other for other in rtplan.BeamSequence[1:])


@pytest.mark.parametrize(("orientation", "degrees"), [
    ("WedgeTopToBottom", 0.0), ("WedgeLeftToRight", 90.0), ("WedgeBottomToTop", 180.0), ("WedgeRightToLeft", 270.0),
])
@pytest.mark.parametrize(("name", "angle", "kind", "nominal"), [
    ("45 Wedge", '"Fixed"', "STANDARD", 45), ("EDW", "20", "DYNAMIC", 20),
])
def test_a_wedge_has_its_id_type_angle_and_orientation(
        demo: Path, tmp_path: Path, orientation: str, degrees: float, name: str, angle: str, kind: str,
        nominal: int) -> None:
    patient = patient_with(demo, WEDGED, tmp_path)
    set_wedge(patient, name, orientation, angle)
    _, rtplan, problems = export_rtplan(patient, tmp_path / "out")
    assert problems == []
    wedge = rtplan.BeamSequence[0].WedgeSequence[0]
    assert (wedge.WedgeID, wedge.WedgeType, int(wedge.WedgeAngle), float(wedge.WedgeOrientation)) == (
        name, kind, nominal, degrees)
    assert float(wedge.SourceToWedgeTrayDistance) == (530.0 if name == "EDW" else 575.8)


@pytest.mark.parametrize(("name", "orientation", "why"), [
    ("Mystery Wedge", "WedgeLeftToRight", "wedge 'Mystery Wedge' is not in the WedgeList of machine"),
    ("30 Wedge", "WedgeSideways", "wedge '30 Wedge' has orientation 'WedgeSideways'"),
])
def test_a_wedge_that_cannot_be_read_is_named_and_the_beam_exported(
        demo: Path, tmp_path: Path, name: str, orientation: str, why: str) -> None:
    patient = patient_with(demo, WEDGED, tmp_path)
    set_wedge(patient, name, orientation, '"Fixed"')
    treatment, rtplan, problems = export_rtplan(patient, tmp_path / "out")
    beam = treatment.plans[0].trials[0].beams[0]
    assert any(f"beam {beam.name!r}: {why}" in p and "its wedge is not written" in p for p in problems), problems
    item = rtplan.BeamSequence[0]
    assert int(item.NumberOfWedges) == 0 and "WedgeSequence" not in item
    assert len(rtplan.BeamSequence) == len(treatment.plans[0].trials[0].beams)


def test_the_real_samples_machine_lists_its_wedges(pinnacle_sample: Path) -> None:
    treatment = read_treatment(DirectorySource(pinnacle_sample / SAMPLE))
    wedges = {m.name: m.wedges for m in machine_geometry(treatment.source, "Plan_0").values()}
    known = next(w for w in wedges.values() if "EDW" in w)
    assert known["15 Wedge"].nominal_angle_deg == 15 and not known["15 Wedge"].dynamic
    assert known["45 Wedge"].source_distance_cm == pytest.approx(57.58)
    assert known["EDW"].dynamic and known["EDW"].nominal_angle_deg == 0
    assert not any(b.is_arc for b in treatment.plans[0].trials[0].beams)  # its beams are static
