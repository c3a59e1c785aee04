"""The generated patients are physically consistent, read back from the files with numpy as an exporter would
(design.md, "The demo generator"): the CT's header, ImageInfo and voxels agree; the EXTERNAL ROI lies on the CT's
skin; the per-beam doses give each prescription point its prescription divided by PrescriptionPercent; patients
show every position and the legacy Y frame of an old Pinnacle version."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from rtvault.demo import GeneratedDatabase
from rtvault.pinnacle.dialects import parse_header, parse_roi
from rtvault.pinnacle.grammar import PObject, parse_bytes
from rtvault.pinnacle.treatment import DirectorySource, read_treatment
from rtvault.pinnacle.treatment_bulk import dose_at_point

SKIN_LEVEL = (8 + 935) / 2  # halfway between air and the fat under the skin (CT number + 1000)


@dataclass(frozen=True)
class Ct:
    header: PObject
    voxels: np.ndarray  # (z, y, x) CT numbers + 1000
    table_positions: list[float]

    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        """x of each column and y of each row (cm, in the frame of the plan files: y_start_dicom when the header
        has it, else the legacy y_start), the starts being the centres of the first column and of the last row, as the
        treatment model reads them (design.md, "Image voxels"); the first row is anterior."""
        h = self.header
        nx, ny = h.get("x_dim"), h.get("y_dim")
        px, py = h.get("x_pixdim"), h.get("y_pixdim")
        y_start = h.get("y_start_dicom", h.get("y_start"))
        x = h.get("x_start") + np.arange(nx) * px
        y = y_start + (ny - 1 - np.arange(ny)) * py
        return x, y


def _ct(path: Path) -> Ct:
    header = parse_header(path.with_suffix(".header").read_bytes(), "header").root
    nx, ny, nz = (header.get(k) for k in ("x_dim", "y_dim", "z_dim"))
    dtype = "<i2" if header.get("byte_order") == 0 else ">i2"
    voxels = np.frombuffer(path.read_bytes(), dtype=dtype).reshape(nz, ny, nx)
    info = parse_bytes(path.with_suffix(".ImageInfo").read_bytes(), "ImageInfo").root
    return Ct(header, voxels, [item.get("TablePosition") for item in info.get_all("ImageInfo")])


def _plans(db: GeneratedDatabase) -> list[tuple[Path, Ct]]:
    found = []
    for spec in db.patients:
        for plan in spec.plans:
            image = db.out / spec.path / f"ImageSet_{plan.image_set_id}.img"
            found.append((db.out / spec.path / plan.directory, _ct(image)))
    return found


def _skin_crossings(plane: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Where the CT number crosses SKIN_LEVEL between neighbouring voxels of a slice, linearly interpolated: (n, 2)."""
    found = []
    for axis in (0, 1):
        a, b = (plane[:-1, :], plane[1:, :]) if axis == 0 else (plane[:, :-1], plane[:, 1:])
        rows, cols = np.nonzero((a < SKIN_LEVEL) != (b < SKIN_LEVEL))
        t = (SKIN_LEVEL - a[rows, cols]) / (b[rows, cols] - a[rows, cols])
        if axis == 0:
            found.append(np.stack([x[cols], y[rows] + t * (y[rows + 1] - y[rows])], axis=1))
        else:
            found.append(np.stack([x[cols] + t * (x[cols + 1] - x[cols]), y[rows]], axis=1))
    return np.concatenate(found)


def _body_distances(plan_dir: Path, ct: Ct, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The distance (cm) of every point of the EXTERNAL ROI's curves to the CT's skin on the curve's slice."""
    rois = parse_roi((plan_dir / "plan.roi").read_bytes(), "plan.roi").root.get_all("roi")
    body = next(roi for roi in rois if roi.get("roiinterpretedtype") == "EXTERNAL")
    x, y = ct.axes()
    distances = []
    for curve in body.get_all("curve"):
        points = np.array(curve.get("points"), dtype=float)
        index = int(np.argmin(np.abs(np.array(ct.table_positions) - points[0, 2])))
        assert abs(ct.table_positions[index] - points[0, 2]) < 1e-4, "a curve between slices"
        skin = _skin_crossings(ct.voxels[index].astype(float), x, y)
        distances.append(_to_skin(points[:, :2] + np.array(shift), skin))
    return np.concatenate(distances)


def _to_skin(points: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Each point's distance to the skin: to the segment joining its two nearest skin crossings (the crossings are
    samples of the skin about a voxel apart, so the nearest one alone may be half a voxel away from a point on it)."""
    gaps = np.sqrt(((points[:, None, :] - skin[None, :, :]) ** 2).sum(axis=2))
    nearest = np.argsort(gaps, axis=1)[:, :2]
    a, b = skin[nearest[:, 0]], skin[nearest[:, 1]]
    along = np.clip(((points - a) * (b - a)).sum(axis=1) / np.maximum(((b - a) ** 2).sum(axis=1), 1e-12), 0.0, 1.0)
    return np.sqrt(((a + along[:, None] * (b - a) - points) ** 2).sum(axis=1))


def _trilinear(grid: np.ndarray, origin: np.ndarray, voxel: np.ndarray, point: np.ndarray) -> float:
    """The dose at `point` (cm), trilinear between the voxel centres of a (z, y, x) grid."""
    where = (point - origin) / voxel  # x, y, z in voxel units
    low = np.floor(where).astype(int)
    frac = where - low
    total = 0.0
    for corner in np.ndindex(2, 2, 2):
        index = low + np.array(corner)
        weight = float(np.prod([f if c else 1 - f for f, c in zip(frac, corner, strict=True)]))
        if weight:
            total += weight * float(grid[index[2], index[1], index[0]])
    return total


def _point(plan_dir: Path, name: str) -> np.ndarray:
    points = parse_bytes((plan_dir / "plan.Points").read_bytes(), "plan.Points").root.get_all("Poi")
    poi = next(p for p in points if p.get("Name") == name)
    return np.array([poi.get("XCoord"), poi.get("YCoord"), poi.get("ZCoord")], dtype=float)


def _trial_checks(plan_dir: Path) -> list[tuple[float, float]]:
    """For each trial: (the total dose at its prescription point from the dose files, the prescription ÷ its
    percent), both in Gy, as the treatment reader (checked on a real Pinnacle plan: MU with the machine's
    DosePerMuAtCalibration, rows from the highest y) reads the generated files."""
    treatment = read_treatment(DirectorySource(plan_dir.parent), plan_ids={int(plan_dir.name.split("_")[1])})
    results = []
    for plan in treatment.plans:
        for trial in plan.trials:
            prescription = trial.prescriptions[0]
            point = next(p for p in plan.points if p.name == prescription.point_name)
            dose = treatment.trial_dose_gy(trial)
            assert dose is not None and trial.dose_grid is not None, treatment.problems
            got = dose_at_point(trial.dose_grid, dose, point.position_cm)
            assert got is not None
            results.append((got, prescription.dose_at_point_cgy * prescription.fractions / 100))
    return results


def test_header_image_info_and_voxels_agree(small_db: GeneratedDatabase) -> None:
    for path in sorted(small_db.out.rglob("ImageSet_*.img")):
        ct = _ct(path)
        h = ct.header
        nz, pz = h.get("z_dim"), h.get("z_pixdim")
        assert path.stat().st_size == h.get("x_dim") * h.get("y_dim") * nz * h.get("bytes_pix")
        assert len(ct.table_positions) == nz
        assert ct.table_positions == pytest.approx([h.get("z_start") + k * pz for k in range(nz)], abs=1e-5)
        assert ct.voxels.min() >= 0 and ct.voxels.max() <= 4095  # read in the header's byte order
        wrong = np.frombuffer(path.read_bytes(), dtype=">i2" if h.get("byte_order") == 0 else "<i2")
        assert (np.abs(wrong) > 4095).any()  # the other byte order is garbage: byte_order matters
        middle, (ny, nx) = ct.voxels[nz // 2], ct.voxels.shape[1:]
        centre = middle[ny // 2 - 1 : ny // 2 + 1, nx // 2 - 1 : nx // 2 + 1]
        assert abs(float(np.median(centre)) - 1040) < 80  # soft tissue at the image's centre
        assert float(np.median(middle[:3, :])) < 50  # air in the first (anterior) rows


def test_the_body_roi_lies_on_the_skin(small_db: GeneratedDatabase) -> None:
    for plan_dir, ct in _plans(small_db):
        distances = _body_distances(plan_dir, ct)
        assert float(np.median(distances)) < 0.2, plan_dir  # under 2 mm
        assert float(np.percentile(distances, 95)) < 0.5, plan_dir


def test_a_misplaced_body_roi_is_seen_off_the_skin(small_db: GeneratedDatabase) -> None:
    plan_dir, ct = _plans(small_db)[0]
    assert float(np.median(_body_distances(plan_dir, ct, shift=(0.0, 1.0)))) > 0.5  # the check has teeth


def test_each_prescription_point_gets_its_prescription(small_db: GeneratedDatabase) -> None:
    checked = 0
    for plan_dir, _ in _plans(small_db):
        for delivered, expected in _trial_checks(plan_dir):
            assert delivered == pytest.approx(expected, rel=0.005), plan_dir
            checked += 1
    assert checked >= len(small_db.patients)


def test_dose_grids_have_their_own_z_spacing(small_db: GeneratedDatabase) -> None:
    for path in small_db.out.rglob("plan.Trial"):
        for trial in parse_bytes(path.read_bytes(), "plan.Trial").root.get_all("Trial"):
            size = trial.child("DoseGrid").child("VoxelSize")
            assert size.get("X") == size.get("Y") != size.get("Z")


def test_prescription_percents_vary(tmp_path: Path) -> None:
    from rtvault.demo import generate_database

    db = generate_database(tmp_path / "db", patients=12, seed=3, image_mb=0.05)
    percents = Counter(t.prescription_percent for p in db.patients for plan in p.plans for t in plan.trials)
    assert percents[100.0] > sum(percents.values()) / 2 and len(percents) > 1


def test_positions_and_an_old_version_are_all_shown(small_db: GeneratedDatabase) -> None:
    positions = Counter()
    versions = set()
    for spec in small_db.patients:
        for image in spec.image_sets:
            header = parse_header((small_db.out / spec.path / f"{image.name}.header").read_bytes(), "h").root
            positions[header.get("patient_position")] += 1
            versions.add(str(header.get("Version")))
            assert ("y_start_dicom" in header) == (header.get("Version") == "16.2")
        for plan in spec.plans:
            setup = parse_bytes((small_db.out / spec.path / plan.directory / "plan.PatientSetup").read_bytes(), "s")
            position = spec.image_set(plan.image_set_id).position
            assert ("prone" in setup.root.get("Position")) == position.endswith("P")
            assert setup.root.get("Orientation").startswith("Head" if position.startswith("HF") else "Feet")
            trial = (small_db.out / spec.path / plan.directory / "plan.Trial").read_bytes()
            assert f'WriteVersion = "Pinnacle v{spec.pinnacle_version}";'.encode() in trial
    assert set(positions) == {"HFS", "HFP", "FFS", "FFP"} and positions["HFS"] == max(positions.values())
    assert versions == {"16.2", "7.4f"}


def test_the_legacy_frame_is_offset_by_couch_height_and_image_centre(small_db: GeneratedDatabase) -> None:
    old = [spec for spec in small_db.patients if spec.pinnacle_version != "16.2"]
    assert old
    for spec in old:
        plan = spec.plans[0]
        image = spec.image_set(plan.image_set_id)
        header = parse_header((small_db.out / spec.path / f"{image.name}.header").read_bytes(), "h").root
        assert header.get("has_couchheight") == 1
        offset = header.get("couch_height") + header.get("y_dim") * header.get("y_pixdim") / 2
        # the image centred on the scanner's axis: the last row's centre half an image height less half a row below
        recent_y_start = -(header.get("y_dim") - 1) * header.get("y_pixdim") / 2
        assert header.get("y_start") == pytest.approx(recent_y_start - offset, abs=1e-4)
        iso = _point(small_db.out / spec.path / plan.directory, "iso")
        assert iso[1] == pytest.approx(plan.isocenter[1] - offset, abs=1e-4)
