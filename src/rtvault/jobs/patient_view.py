"""One patient version as the web viewer shows it (`/patients/{key}/view`): its CT in HU on the image grid, the
chosen trial's dose in Gy, each ROI as a voxel mask, the DVH of each ROI and the plan's summary, read straight
from the store (a snapshot's tree or an archive's members: `treatment_files.py`), never restored.

A `Scene` is built once per (location, version, plan, trial) and kept in a small LRU (`SceneCache`): a
patient's CT is a few to a few hundred MB, so at most `SCENES` are held; two requests for the same scene wait
for one build. What cannot be shown (no voxels, a beam without its dose file, an ROI off the image) is named in
`Scene.problems`, and the rest is shown.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rtvault.catalog.db import Catalog
from rtvault.config import Config
from rtvault.errors import NotFound, RtvaultError
from rtvault.jobs.deliver import Chosen, choose
from rtvault.jobs.treatment_files import version_files
from rtvault.pinnacle.colours import hex_of
from rtvault.pinnacle.coordinates import couch_iec, to_dicom_mm
from rtvault.pinnacle.treatment import read_treatment
from rtvault.pinnacle.treatment_bulk import fractions_of
from rtvault.pinnacle.treatment_grid import Dvh, ImageGrid, Mask, dvh, roi_mask
from rtvault.pinnacle.treatment_types import ImageSet, Plan, Roi, Treatment, Trial

SCENES = 3  # patient versions kept in memory at once
PLANES = ("axial", "coronal", "sagittal")


@dataclass
class Scene:
    """What the viewer draws for one version, plan and trial. `hu` is (z, y, x) int16 in HU; `dose_gy` is on the
    trial's dose grid; `order` lists the frames from the most superior (for the coronal and sagittal planes)."""

    source: str
    treatment: Treatment
    plan: Plan | None
    trial: Trial | None
    image: ImageSet | None
    grid: ImageGrid | None
    hu: np.ndarray | None
    dose_gy: np.ndarray | None
    reference_gy: float | None  # 100 % of the isodoses: the prescription's total dose at its point (Gy)
    rois: tuple[Roi, ...]  # the plan's ROIs drawn on this image set, in plan.roi order
    masks: dict[int, Mask]  # by ROI number
    order: np.ndarray  # frame indices, most superior first
    problems: list[str] = field(default_factory=list)
    _dvh: dict[int, Dvh] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def slices(self, plane: str) -> int:
        """How many slices the plane has (0 without a CT)."""
        if self.hu is None:
            return 0
        return self.hu.shape[{"axial": 0, "coronal": 1, "sagittal": 2}[plane]]

    def first_slices(self) -> dict[str, int]:
        """The slice (1-based) of each plane through the prescription point, else the isocentre of the first beam,
        else the middle of the image."""
        if self.grid is None:
            return {plane: 1 for plane in PLANES}
        point = self._focus()
        if point is None:
            return {plane: self.slices(plane) // 2 + 1 for plane in PLANES}
        frame = int(np.argmin(np.abs(self.grid.zs - point[2])))
        return {"axial": int(np.nonzero(self.order == frame)[0][0]) + 1,
                "coronal": int(np.argmin(np.abs(self.grid.ys - point[1]))) + 1,
                "sagittal": int(np.argmin(np.abs(self.grid.xs - point[0]))) + 1}

    def _focus(self) -> tuple[float, float, float] | None:
        names = [p.point_name for p in self.trial.prescriptions] if self.trial else []
        for name in names:
            poi = next((p for p in self.plan.points if p.name == name), None) if self.plan else None
            if poi is not None:
                return poi.position_cm
        return next((b.isocenter_cm for b in self.trial.beams if b.isocenter_cm), None) if self.trial else None

    def position_mm(self, plane: str, number: int) -> float | None:
        """Where slice `number` of `plane` lies in DICOM patient coordinates (mm, along the plane's axis)."""
        if self.grid is None or self.plan is None or self.plan.frame is None:
            return None
        axis = {"axial": 2, "coronal": 1, "sagittal": 0}[plane]
        point = [float(self.grid.xs[0]), float(self.grid.ys[0]), float(self.grid.zs[0])]
        point[axis] = float((self.grid.xs, self.grid.ys, self.grid.zs[self.order])[axis][number - 1])
        return round(to_dicom_mm(point, self.plan.frame)[axis], 1)

    def dvhs(self) -> dict[int, Dvh]:
        """Each ROI's DVH (ROIs without voxels or a scene without dose: none), computed once."""
        with self._lock:
            if self._dvh is None:
                self._dvh = {}
                if self.dose_gy is not None and self.grid is not None and self.trial and self.trial.dose_grid:
                    top = float(self.dose_gy.max()) * 1.02
                    for number, mask in self.masks.items():
                        found = dvh(mask, self.grid, self.dose_gy, self.trial.dose_grid, top)
                        if found is not None:
                            self._dvh[number] = found
            return self._dvh

    def summary(self) -> dict[str, object]:
        """The plan, trial, prescriptions, beams and ROIs, as the page and its JSON twin show them."""
        treatment, plan, trial = self.treatment, self.plan, self.trial
        return {
            "source": self.source,
            "patient_position": plan.patient_position if plan else None,
            "plans": [{"id": p.id, "name": p.name, "trials": [t.name for t in p.trials]} for p in treatment.plans],
            "plan": None if plan is None else {"id": plan.id, "name": plan.name,
                                               "pinnacle_version": plan.pinnacle_version},
            "trial": None if trial is None else _trial_summary(trial),
            "image_set": None if self.image is None else {
                "name": self.image.name, "modality": self.image.modality, "dims": self.image.dims,
                "series_description": self.image.series_description},
            "slices": {plane: self.slices(plane) for plane in PLANES},
            "reference_gy": None if self.reference_gy is None else round(self.reference_gy, 3),
            "rois": [{"number": r.number, "name": r.name, "colour": hex_of(r.color), "type": r.interpreted_type,
                      "drawn": r.number in self.masks} for r in self.rois],
            "problems": self.problems,
        }


def _trial_summary(trial: Trial) -> dict[str, object]:
    prescriptions = [{"name": p.name, "dose_per_fraction_gy": None if p.dose_cgy is None else p.dose_cgy / 100,
                      "fractions": p.fractions, "percent": p.percent, "point": p.point_name,
                      "total_at_point_gy": _total_gy(p.dose_at_point_cgy, p.fractions)} for p in trial.prescriptions]
    beams = []
    for beam in trial.beams:
        first = beam.control_points[0] if beam.control_points else None
        beams.append({"number": beam.number, "name": beam.name, "machine": beam.machine_name,
                      "energy": beam.energy_name, "modality": beam.modality, "type": beam.beam_type,
                      "gantry_deg": first.gantry_deg if first else None,
                      "collimator_deg": first.collimator_deg if first else None,
                      "couch_deg": couch_iec(first.couch_deg) if first and first.couch_deg is not None else None,
                      "mu": None if beam.monitor_units is None else round(beam.monitor_units, 1),
                      "fractions": fractions_of(trial, beam), "segments": len(beam.control_points),
                      "prescription": beam.prescription_name, "has_dose": beam.dose_file is not None})
    return {"name": trial.name, "prescriptions": prescriptions, "beams": beams}


def _total_gy(per_fraction_cgy: float | None, fractions: int | None) -> float | None:
    if per_fraction_cgy is None or not fractions:
        return None
    return round(per_fraction_cgy * fractions / 100, 3)


def _pick_plan(treatment: Treatment, plan_id: int | None) -> Plan | None:
    if plan_id is not None:
        plan = next((p for p in treatment.plans if p.id == plan_id), None)
        if plan is None:
            raise NotFound(f"this version has no plan {plan_id} (its plans: "
                           f"{', '.join(str(p.id) for p in treatment.plans) or 'none'})", "plan")
        return plan
    with_dose = [p for p in treatment.plans if any(b.dose_file for t in p.trials for b in t.beams)]
    return (with_dose or list(treatment.plans) or [None])[0]


def _pick_trial(plan: Plan | None, name: str) -> Trial | None:
    if plan is None or not plan.trials:
        return None
    if not name:
        return plan.trials[0]
    trial = next((t for t in plan.trials if t.name == name), None)
    if trial is None:
        raise NotFound(f"plan {plan.id} has no trial {name!r} (its trials: "
                       f"{', '.join(t.name for t in plan.trials)})", "trial")
    return trial


def _pick_image(treatment: Treatment, plan: Plan | None) -> ImageSet | None:
    primary = treatment.image_set(plan.primary_image_set_id) if plan else None
    if primary is not None:
        return primary
    return next((i for i in treatment.image_sets if i.voxel_file), treatment.image_sets[0] if treatment.image_sets
                else None)


def _reference_gy(trial: Trial | None) -> float | None:
    for prescription in trial.prescriptions if trial else ():
        total = _total_gy(prescription.dose_at_point_cgy, prescription.fractions)
        if total:
            return total
    return None


def _superior_first(grid: ImageGrid, position: str | None) -> np.ndarray:
    """Frames from head to feet: head first, Pinnacle's TablePosition grows towards the feet."""
    order = np.argsort(grid.zs, kind="stable")
    return order[::-1] if (position or "HFS").startswith("FF") else order


def build_scene(config: Config, chosen: Chosen, plan_id: int | None, trial_name: str) -> Scene:
    """Read the chosen version and prepare what the viewer draws (NotFound for a plan or trial it lacks)."""
    files = version_files(config, chosen)
    treatment = read_treatment(files.files)
    plan = _pick_plan(treatment, plan_id)
    return scene_of(chosen.source, treatment, plan, _pick_trial(plan, trial_name), files.files.missing)


def scene_of(source: str, treatment: Treatment, plan: Plan | None, trial: Trial | None,
             unreadable: Sequence[str] = ()) -> Scene:
    """What is drawn of `plan` and `trial` of a treatment already read (`unreadable`: the version's files the
    store could not give, each with why)."""
    problems = list(dict.fromkeys([*unreadable, *(str(p) for p in treatment.problems)]))
    image = _pick_image(treatment, plan)
    grid, hu = _image(treatment, plan, image, problems)
    dose = _dose(treatment, trial, problems) if grid is not None else None
    rois = tuple(r for r in (plan.rois if plan else ()) if image is None or r.image_set_id in (None, image.id))
    masks: dict[int, Mask] = {}
    for roi in rois if grid is not None else ():
        mask = roi_mask(roi, grid)
        if mask is None:
            problems.append(f"ROI {roi.name}: no contour lies on {image.name if image else 'the image'}: not drawn")
        else:
            masks[roi.number] = mask
    order = _superior_first(grid, plan.patient_position if plan else None) if grid is not None else np.arange(0)
    return Scene(source, treatment, plan, trial, image, grid, hu, dose, _reference_gy(trial), rois, masks, order,
                 list(dict.fromkeys(problems)))


def _image(treatment: Treatment, plan: Plan | None, image: ImageSet | None,
           problems: list[str]) -> tuple[ImageGrid | None, np.ndarray | None]:
    if image is None:
        problems.append("this version has no image set: nothing to draw")
        return None, None
    try:
        stored = treatment.voxels(image)
    except RtvaultError as error:
        problems.append(str(error))
        return None, None
    if stored is None or plan is None or plan.frame is None:
        problems.append(f"{image.name}: no CT voxels (or no plan placing them): the slices cannot be drawn")
        return None, None
    try:
        grid = ImageGrid.of(image, plan.frame)
    except ValueError as error:
        problems.append(str(error))
        return None, None
    hu = stored.astype(np.int32) * image.rescale_slope + image.rescale_intercept
    return grid, np.clip(hu, -32768, 32767).astype(np.int16)


def _dose(treatment: Treatment, trial: Trial | None, problems: list[str]) -> np.ndarray | None:
    if trial is None:
        problems.append("this plan has no trial: no dose")
        return None
    missing = [b.name for b in trial.beams if b.dose_file is None or b.monitor_units is None]
    if missing:
        problems.append(f"trial {trial.name}: beams without a dose file or MU, left out of the dose: "
                        f"{', '.join(missing)}")
    try:
        dose = treatment.trial_dose_gy(trial)
    except RtvaultError as error:
        problems.append(str(error))
        return None
    if dose is None:
        problems.append(f"trial {trial.name}: no beam has both its dose file and its MU: no dose")
    return dose


class SceneCache:
    """The last `size` scenes built, by key; a scene being built is built once, whoever else asks meanwhile."""

    def __init__(self, size: int = SCENES) -> None:
        self.size = size
        self.scenes: OrderedDict[tuple, Scene] = OrderedDict()
        self.building: dict[tuple, threading.Lock] = {}
        self.lock = threading.Lock()

    def get(self, key: tuple, build: Callable[[], Scene]) -> Scene:
        with self.lock:
            if key in self.scenes:
                self.scenes.move_to_end(key)
                return self.scenes[key]
            mine = self.building.setdefault(key, threading.Lock())
        with mine:
            with self.lock:
                if key in self.scenes:
                    return self.scenes[key]
            try:
                scene = build()
            finally:
                with self.lock:
                    self.building.pop(key, None)
            with self.lock:
                self.scenes[key] = scene
                while len(self.scenes) > self.size:
                    self.scenes.popitem(last=False)
            return scene


def scene_key(chosen: Chosen, plan_id: int | None, trial_name: str) -> tuple:
    return (chosen.location["location"], chosen.version["version"], plan_id, trial_name)


def open_scene(config: Config, catalog: Catalog, cache: SceneCache, key: str, *, version: str = "",
               location: str = "", plan_id: int | None = None, trial: str = "",
               sites: Sequence[str] = ()) -> tuple[Chosen, Scene]:
    """The version of patient `key` chosen as a download chooses it (`jobs.deliver.choose`: the newest, from the
    best location, of `sites` only when given), read into a scene or taken from `cache`."""
    chosen = choose(catalog, config, key, version, location, sites=sites)
    return chosen, cache.get(scene_key(chosen, plan_id, trial), lambda: build_scene(config, chosen, plan_id, trial))
