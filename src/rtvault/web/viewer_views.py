"""The patient viewer's views: `/patients/{key}/view` (the page: a plane of the CT with its contours and dose,
links to move through it, the DVH and the plan's summary), its images `slice.png` and `dvh.svg`. Each reads its
scene through `jobs.patient_view.open_scene` (the version chosen as a download chooses it; a user limited to
sites sees only their patients) and draws with `jobs/patient_drawing.py` (kept by `web/viewer.py`) and `web/charts.py`.

The page is audited (`view`, with the version, where it was read and the plan); its images are not, one row per
arrow key being noise, but a refused one is, as every patient page's refusal."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import Response

from rtvault.errors import InputError, NotFound
from rtvault.jobs.deliver import Chosen
from rtvault.jobs.patient_drawing import DOSE_MODES, WINDOWS, Drawing, isodose_levels, render
from rtvault.jobs.patient_view import PLANES, Scene, open_scene, scene_key
from rtvault.pinnacle.colours import hex_of
from rtvault.web.call import Call
from rtvault.web.charts import dvh_chart
from rtvault.web.i18n import DEFAULT, LANGUAGES, translator
from rtvault.web.views import _audited, _patient_key


def _one_of(call: Call, name: str, allowed: tuple[str, ...] | dict, default: str) -> str:
    value = call.get(name) or default
    if value not in allowed:
        raise InputError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _scene(call: Call) -> tuple[Chosen, Scene]:
    key = _patient_key(call)
    plan = call.number("plan", -1, least=0, most=1_000_000)
    return open_scene(call.config, call.db, call.viewer.scenes, key, version=call.get("version"),
                      location=call.get("location"), plan_id=None if plan < 0 else plan, trial=call.get("trial"),
                      sites=call.user.searched_sites)


def _drawing(call: Call, scene: Scene) -> Drawing:
    plane = _one_of(call, "plane", PLANES, "axial")
    number = call.number("slice", scene.first_slices()[plane], most=max(1, scene.slices(plane)))
    return Drawing(plane, number, _one_of(call, "window", WINDOWS, "soft"), _one_of(call, "dose", DOSE_MODES, "wash"))


def _pinned(chosen: Chosen, scene: Scene) -> dict[str, str]:
    """What every link and image of the page names: the version, its location, the plan and the trial shown."""
    pinned = {"version": chosen.version["version"], "location": chosen.location["location"]}
    if scene.plan is not None:
        pinned["plan"] = str(scene.plan.id)
    if scene.trial is not None:
        pinned["trial"] = scene.trial.name
    return pinned


def _links(key: str, pinned: dict[str, str], drawing: Drawing, count: int) -> dict[str, object]:
    here = {**pinned, "plane": drawing.plane, "slice": str(drawing.slice), "window": drawing.window,
            "dose": drawing.dose}

    def page(**changes: object) -> str:
        return f"/patients/{key}/view?{urlencode({**here, **{k: str(v) for k, v in changes.items()}})}"

    def step(by: int) -> str | None:
        wanted = min(max(drawing.slice + by, 1), count)
        return page(slice=wanted) if wanted != drawing.slice else None

    base = {k: v for k, v in here.items() if k != "slice"}
    return {
        "steps": {str(by): step(by) for by in (-10, -1, 1, 10)},
        "first": page(slice=1), "last": page(slice=count),
        "planes": {p: f"/patients/{key}/view?{urlencode({**base, 'plane': p})}" for p in PLANES},
        "windows": {w: page(window=w) for w in WINDOWS},
        "doses": {d: page(dose=d) for d in DOSE_MODES},
        "image": f"/patients/{key}/view/slice.png?{urlencode(here)}",
        "image_base": f"/patients/{key}/view/slice.png",
        "dvh": f"/patients/{key}/view/dvh.svg?{urlencode(pinned)}",
    }


def patient_view(call: Call) -> dict:
    """`GET /patients/{key}/view?version=&location=&plan=&trial=&plane=&slice=&window=&dose=`: one plane of the
    CT, its contours and dose, the links to move through it, each ROI's DVH and the plan's summary."""

    def work() -> tuple[dict, dict]:
        chosen, scene = _scene(call)
        drawing = _drawing(call, scene)
        detail = {"viewer": True, "version": chosen.version["version"], "source": chosen.source,
                  "plan": scene.plan.id if scene.plan else None, "trial": scene.trial.name if scene.trial else None}
        return detail, _page(call, chosen, scene, drawing)

    return _audited(call, "view", work)


def _page(call: Call, chosen: Chosen, scene: Scene, drawing: Drawing) -> dict:
    key, count = chosen.patient["key"], scene.slices(drawing.plane)
    pinned = _pinned(chosen, scene)
    dvhs = scene.dvhs()
    return {
        "key": key, "patient": {k: chosen.patient[k] for k in ("last_name", "first_name", "mrn", "birth_date")},
        "version": chosen.version["version"], "location": chosen.location["location"], **scene.summary(),
        "read_from": {k: chosen.location[k] for k in ("kind", "ref", "store")},
        "drawing": {"plane": drawing.plane, "slice": drawing.slice, "window": drawing.window, "dose": drawing.dose,
                    "count": count, "position_mm": scene.position_mm(drawing.plane, drawing.slice) if count else None},
        "isodoses": [{"percent": p, "colour": c, "gy": round(gy, 2)} for p, c, gy in isodose_levels(scene)]
        if scene.dose_gy is not None else [],
        "dvh": [{"number": r.number, "name": r.name, **{k: v for k, v in dvhs[r.number].to_json().items()
                                                         if k not in ("dose_gy", "percent")}}
                for r in scene.rois if r.number in dvhs],
        "links": _links(key, pinned, drawing, count) if count else None,
        "trials": [{"plan": p.name, "trial": t.name, "current": p is scene.plan and t is scene.trial,
                    "url": f"/patients/{key}/view?{urlencode({**pinned, 'plan': p.id, 'trial': t.name})}"}
                   for p in scene.treatment.plans for t in p.trials],
    }


def view_slice(call: Call) -> Response:
    """`GET /patients/{key}/view/slice.png?...`: one plane drawn as a PNG (the page's parameters), from the
    server's image cache when drawn before."""
    chosen, scene = _scene(call)
    if scene.hu is None:
        raise NotFound(f"patient {chosen.patient['key']}: this version has no CT voxels to draw "
                       f"({'; '.join(scene.problems[:2]) or 'no image set'})", "slice")
    drawing = _drawing(call, scene)
    key = (*scene_key(chosen, scene.plan.id if scene.plan else None, scene.trial.name if scene.trial else ""),
           drawing)
    png = call.viewer.images.get(key)
    if png is None:
        png = render(scene, drawing)
        call.viewer.images.put(key, png)
    return Response(png, media_type="image/png")


def view_dvh(call: Call) -> dict | Response:
    """`GET /patients/{key}/view/dvh.svg?...&lang=`: each ROI's cumulative DVH as SVG; its twin
    `/api/patients/{key}/view/dvh` gives the curves as JSON."""
    chosen, scene = _scene(call)
    dvhs = scene.dvhs()
    data = {"version": chosen.version["version"], "trial": scene.trial.name if scene.trial else None,
            "reference_gy": scene.reference_gy,
            "rois": [{"number": r.number, "name": r.name, "colour": hex_of(r.color), **dvhs[r.number].to_json()}
                     for r in scene.rois if r.number in dvhs]}
    if call.api:
        return data
    lang = call.get("lang") if call.get("lang") in LANGUAGES else DEFAULT
    return Response(dvh_chart(data, translator(lang)), media_type="image/svg+xml")
