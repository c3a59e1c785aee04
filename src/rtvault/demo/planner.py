"""Deciding what a synthetic patient is made of, before anything is written: the `PatientSpec`."""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import replace
from datetime import datetime, timedelta

from rtvault.demo import clock, geometry
from rtvault.demo.names import DOSIMETRISTS, PHYSICISTS, QUOTED_COMMENTS, make_identity
from rtvault.demo.sites import SITES, Site
from rtvault.demo.spec import BeamSpec, ImageSetSpec, PatientSpec, PlanSpec, TrialSpec
from rtvault.demo.voxels import dose_dims, field_of_view_cm, image_dims

ACTIVE_DAYS = 25  # patients whose course started less than this many working days ago are under treatment
_ENERGIES = ("6X", "6X", "10X", "18X")
_PLAN_COMMENTS = (
    "Validé en staff du mardi",
    "Dosimétrie validée par le Dr\nContrôle qualité patient OK\nDébut prévu lundi",
    'Plan "de secours" si repositionnement impossible',
)


def _moment(rng: random.Random, offset: int, today: int) -> datetime:
    """A moment during opening hours of the working day `offset`, never after the working day `today`."""
    return clock.at(clock.working_day(min(offset, today)), clock.office_minute(rng.random()), rng.randrange(60))


def _uid(rng: random.Random) -> str:
    return f"2.25.{rng.getrandbits(96)}"


def _second_rng(rng: random.Random, number: int) -> random.Random:
    """A generator seeded by `rng`'s state without drawing from it: the choices added for the DICOM-RT export
    (position, version, prescription percent, ...) leave every earlier choice of a seed as it was."""
    digest = hashlib.sha256(f"{number}:{rng.getstate()!r}".encode()).hexdigest()
    return random.Random(digest)


def _image_sets(
    rng: random.Random, site: Site, start: int, today: int, image_mb: float, setup: tuple[random.Random, str, str]
) -> list[tuple[ImageSetSpec, int]]:
    """The CT image sets and the working day (offset) each was scanned; `setup`: the second generator, the
    patient's position and Pinnacle version."""
    extra, position, version = setup
    count = rng.choices((1, 2, 3), weights=(55, 33, 12))[0]
    day, sets = start, []
    for index in range(count):
        if day > today:
            break  # a rescan that has not happened yet
        dims = image_dims(image_mb, rng.uniform(-1.0, 1.0))
        fov = field_of_view_cm(site)
        thickness = rng.choice((0.2, 0.25, 0.3))
        label = rng.choice(site.series) if index == 0 else f"{rng.choice(site.series)} REPLANIF"
        image = ImageSetSpec(
            id=index,
            modality="CT",
            series_description=label,
            dims=dims,
            pixdim=(round(fov / dims[0], 6), round(fov / dims[1], 6), thickness),
            byte_order=1 if rng.random() < 0.2 else 0,
            scanned=_moment(rng, day, today),
            series_uid=_uid(rng),
            exam_id=str(rng.randrange(10**14, 10**15)),
            position=position,
            couch_height=extra.choice((18.4, 22.5, 31.0)) if geometry.is_legacy(version) else 28.1,
            body_phase=round(extra.uniform(0, 2 * math.pi), 6),
        )
        sets.append((image, min(day, today)))
        day += rng.randint(4, 12)
    return sets


def _beams(rng: random.Random, site: Site, dose_per_fraction: float) -> tuple[BeamSpec, ...]:
    gantries = rng.choice(site.gantries)
    energy = rng.choice(_ENERGIES)
    half = round(rng.uniform(3.0, 8.0), 1)
    weight = round(100 / len(gantries), 2)
    beams = []
    for index, gantry in enumerate(gantries):
        jaws = (half, half, round(half * 1.1, 1), round(half * 1.1, 1))
        mu = round(dose_per_fraction * weight / 100 * rng.uniform(1.0, 1.4), 1)
        beams.append(BeamSpec(f"{index + 1:02d} G{gantry:g}", gantry, 0.0, 0.0, jaws, weight, mu, energy))
    return tuple(beams)


def with_techniques(plans: list[PlanSpec], key: int) -> list[PlanSpec]:
    """The plans with, by the patient's rank (`key`, deterministic): every third patient from the second on, the
    last beam of each trial a Conformal Arc of 60° around its gantry (counter-clockwise on an odd key); from the
    third on, the first beam wedged (an EDW along Y on the TrueBeam, a 45° physical wedge along X on the Clinac iX,
    the orientation flipped on an odd key). The first patient of a database keeps its plain beams."""
    kind = key % 3
    if kind == 0:
        return plans
    flip = key % 2 == 1
    return [replace(plan, trials=tuple(replace(t, beams=_technique(t.beams, kind, flip)) for t in plan.trials))
            for plan in plans]


def _technique(beams: tuple[BeamSpec, ...], kind: int, flip: bool) -> tuple[BeamSpec, ...]:
    if kind == 1:
        last = beams[-1]
        above, below = (last.gantry + 30) % 360, (last.gantry - 30) % 360
        arc = replace(last, gantry=above if flip else below, arc_stop=below if flip else above, ccw=flip)
        return (*beams[:-1], arc)
    first = beams[0]
    if first.energy == "18X":
        wedged = replace(first, wedge="45 Wedge", wedge_angle="Fixed",
                         wedge_orientation="WedgeRightToLeft" if flip else "WedgeLeftToRight")
    else:
        wedged = replace(first, wedge="EDW", wedge_angle="30",
                         wedge_orientation="WedgeBottomToTop" if flip else "WedgeTopToBottom")
    return (wedged, *beams[1:])


def _isocenter(drawn: tuple[float, float, float], image: ImageSetSpec) -> tuple[float, float, float]:
    """The isocentre (recent frame, cm): inside the body, and on a CT slice's z within the scanned length."""
    nz, pz = image.dims[2], image.pixdim[2]
    index = min(max(round((drawn[2] + nz * pz / 2) / pz), 1), max(nz - 2, 0))
    return drawn[0], drawn[1], geometry.slice_z(image, index)


def _trials(
    rng: random.Random, site: Site, image: ImageSetSpec, image_mb: float, iso: tuple[float, float, float],
    extra: random.Random,
) -> tuple[TrialSpec, ...]:
    dose_per_fraction, fractions = rng.choice(site.prescriptions)
    target = next(roi.name for roi in site.rois if roi.name.startswith("PTV"))
    length = min(image.dims[2] * image.pixdim[2], 20.0)
    dims, voxel = dose_dims(image_mb, site.body_radii, length)
    origin = tuple(round(centre - (n // 2) * size, 4) for centre, n, size in zip(iso, dims, voxel, strict=True))
    trials = []
    for number in range(rng.choices((1, 2), weights=(75, 25))[0]):
        beams = _beams(rng, site, dose_per_fraction)
        name = f"{target} {dose_per_fraction * fractions / 100:g}Gy"
        percent = extra.choices((100.0, 95.0, 98.0, 90.0), weights=(70, 12, 10, 8))[0]
        trials.append(TrialSpec(f"Trial_{number + 1}", name, dose_per_fraction, fractions, beams, dims, voxel,
                                origin, percent, iso))  # fmt: skip
    return tuple(trials)


def _plan_name(rng: random.Random, site: Site, used: list[str]) -> str:
    name = rng.choice(site.plan_names)
    copies = sum(1 for other in used if other == name or other.endswith(f"_{name}"))
    return f"CopyOf_{copies}_{name}" if copies else name


def _plan_times(rng: random.Random, image: ImageSetSpec, offset: int, today: int) -> tuple[datetime, datetime]:
    """When a plan on `image` was created (working day `offset`) and last saved."""
    created = max(_moment(rng, offset, today), image.scanned + timedelta(hours=1))
    modified = max(_moment(rng, offset + rng.randint(0, 3), today), created + timedelta(minutes=20))
    return created, modified


def _plans(
    rng: random.Random, site: Site, images: list[tuple[ImageSetSpec, int]], start: int, today: int, image_mb: float,
    extra: random.Random,
) -> list[PlanSpec]:
    active = start > today - ACTIVE_DAYS
    count = rng.choices((1, 2, 3, 4), weights=(35, 35, 20, 10))[0]
    plans: list[PlanSpec] = []
    plan_id = 0
    for index in range(count):
        image, scanned_offset = images[min(index, len(images) - 1)]
        created, modified = _plan_times(rng, image, scanned_offset + 1 + index, today)
        locked = not (active and index == count - 1) and (not active or rng.random() < 0.6)
        comment = rng.choice(_PLAN_COMMENTS) if rng.random() < 0.3 else ""
        name = _plan_name(rng, site, [p.name for p in plans])  # the draws in their historical order
        physicist, dosimetrist = rng.choice(PHYSICISTS), rng.choice(DOSIMETRISTS)
        drawn = tuple(round(rng.uniform(-3.0, 3.0), 2) for _ in range(3))
        isocenter = _isocenter(drawn, image)  # type: ignore[arg-type]
        plans.append(
            PlanSpec(
                id=plan_id,
                name=name,
                physicist=physicist,
                dosimetrist=dosimetrist,
                locked=locked,
                comment=comment,
                image_set_id=image.id,
                isocenter=isocenter,
                trials=_trials(rng, site, image, image_mb, isocenter, extra),
                created=created,
                modified=modified,
                autosave=not locked,
                error_log=rng.random() < 0.3,
                transcript=active or rng.random() < 0.3,
            )
        )
        plan_id += 2 if rng.random() < 0.15 else 1  # a deleted plan leaves a gap
    return plans


def plan_patient(
    rng: random.Random, number: int, start: int, used_mrns: set[str], image_mb: float, today: int = 0,
    index: int | None = None,
) -> PatientSpec:
    """Everything about one patient whose course started `start` working days from day 0, as seen on the
    working day `today` (start <= today); `index`: its rank in a generated database (its position and Pinnacle
    version follow a cycle, demo/geometry.py), None for a patient admitted later (drawn)."""
    extra = _second_rng(rng, number)
    position, version = geometry.position_and_version(index, extra)
    site = rng.choice(SITES)
    identity = make_identity(rng, used_mrns)
    scans = _image_sets(rng, site, start, today, image_mb, (extra, position, version))
    images = [image for image, _ in scans]
    plans = with_techniques(_plans(rng, site, scans, start, today, image_mb, extra), number if index is None else index)
    moments = [i.scanned for i in images] + [p.modified for p in plans]
    return PatientSpec(
        number=number,
        identity=identity,
        site=site,
        diagnosis=rng.choice(site.diagnoses),
        image_sets=images,
        plans=plans,
        created=images[0].scanned,
        modified=max(moments),
        editor_backup=rng.random() < 0.2,
        pinnacle_version=version,
        scanner_slices=geometry.keeps_scanner_slices(index, number),
    )


def patient_numbers(rng: random.Random, count: int, first: int | None = None) -> list[int]:
    """Increasing, non-contiguous patient numbers, like a database whose patients were deleted over time."""
    number = rng.randint(1000, 20000) if first is None else first
    numbers = []
    for _ in range(count):
        numbers.append(number)
        number += 1 + (rng.randint(1, 6) if rng.random() < 0.25 else 0)
    return numbers


def history_starts(rng: random.Random, count: int) -> list[int]:
    """Working-day offsets (<= 0) at which each patient's course started, oldest first; the last is today."""
    spacing = max(3, min(40, 500 // max(1, count)))
    starts = [-(count - 1 - i) * spacing + rng.randint(-spacing // 3, spacing // 3) for i in range(count)]
    starts[-1] = 0
    return [min(0, s) for s in sorted(starts)]


def with_every_feature(spec: PatientSpec) -> PatientSpec:
    """The same patient with an editor backup, a comment with escaped quotes and, on its last plan, a
    multi-line comment, an autosave, an error log and a transcript: makes sure every database shows each
    kind of transient file and each tricky bit of grammar at least once."""
    comment = _PLAN_COMMENTS[1]
    last = replace(spec.plans[-1], comment=comment, autosave=True, error_log=True, transcript=True)
    identity = replace(spec.identity, comment=QUOTED_COMMENTS[0])
    return replace(spec, identity=identity, plans=[*spec.plans[:-1], last], editor_backup=True)
