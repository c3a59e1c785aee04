"""`plan.roi`: Pinnacle's lowercase ROI dialect (`roi={`, `key: value`, `points={ x y z ... };`), no stamp."""

from __future__ import annotations

import math

from rtvault.demo import geometry
from rtvault.demo.sites import Roi
from rtvault.demo.spec import ImageSetSpec, PatientSpec, PlanSpec

_POINTS_PER_CURVE = 28
_BODY_POINTS = 64  # the skin's polygon stays within 0.3 mm of the body's ellipse
_MAX_CURVES = 24
_PAD = " " * 11
_CURVE_PAD = " " * 23
_SURFACE_MESH = (
    "               surface_mesh={",
    f"{_CURVE_PAD}allow_adaptation = 1;",
    f"{_CURVE_PAD}limit_feature_search_string: Full",
    f"{_CURVE_PAD}number_of_vertices = 0;",
    f"{_CURVE_PAD}number_of_triangles = 0;",
    f"{_CURVE_PAD}vertices={{",
    " };  // End of vertices for surface mesh",
    f"{_CURVE_PAD}triangles={{",
    " };  // End of triangles for surface mesh",
    "}; // End of surface_mesh ",
)


def _header(volume: str, stamp_date: str, version: str) -> list[str]:
    return [
        "// Region of Interest file",
        f"// Data set: {volume}",
        f"// File created: {stamp_date}",
        "",
        "//",
        f"// Pinnacle Treatment Planning System Version {version} ",
        f"// {version} ",
        "//",
        "",
        " file_stamp={",
        f"       write_date: {stamp_date}",
        "    write_program: Pinnacle Treatment Planning System",
        f"    write_version: {version}",
        "  }; // End of file_stamp",
    ]


def _roi_fields(roi: Roi, radii: tuple[float, float], volume: str, curves: int, uid: str) -> list[str]:
    return [
        " roi={",
        f"           name: {roi.name}",
        f"    volume_name: {volume}",
        f"stats_volume_name: {volume}",
        f"{_PAD}author:   ",
        f"{_PAD}organ_name:   ",
        f"{_PAD}flags =          135168;",
        f"{_PAD}roiinterpretedtype: {roi.interpreted_type}",
        f"{_PAD}color:           {roi.color}",
        f"{_PAD}box_size =       5;",
        f"{_PAD}line_2d_width =  2;",
        f"{_PAD}lower =          800;",
        f"{_PAD}upper =          4096;",
        f"{_PAD}density_units:   g/cm^3",
        f"{_PAD}override_data =  0;",
        f"{_PAD}material:        None",
        f"{_PAD}volume =         {math.pi * 4 / 3 * radii[0] * radii[1] * max(radii):.6g};",
        f"{_PAD}UID: {uid}",
        f"{_PAD}num_curve = {curves};",
    ]


def _curve(roi: Roi, name: str, number: int, total: int, points: list[tuple[float, float, float]]) -> list[str]:
    lines = [
        "//----------------------------------------------------",
        f"//  ROI: {name}",
        f"//  Curve {number} of {total}",
        "//----------------------------------------------------",
        "               curve={",
        f"{_CURVE_PAD}flags =       131092;",
        f"{_CURVE_PAD}block_size =  32;",
        f"{_CURVE_PAD}num_points =  {len(points)};",
        "points={",
    ]
    lines += [f"{_num(x)} {_num(y)} {_num(z)}" for x, y, z in points]
    lines += [f" }};  // End of points for curve {number}", f"}}; // End of curve {number}"]
    return lines


def _num(value: float) -> str:
    return f"{round(value, 5) + 0.0:.6g}"


def _ring(
    center: tuple[float, float], radii: tuple[float, float], z: float, wobble: float | None,
    points: int = _POINTS_PER_CURVE,
) -> list[tuple[float, float, float]]:
    ring = []
    for k in range(points + 1):
        angle = 2 * math.pi * (k % points) / points
        scale = 1 + 0.05 * math.sin(2 * angle + wobble) if wobble is not None else 1.0
        ring.append((center[0] + radii[0] * scale * math.cos(angle), center[1] + radii[1] * scale * math.sin(angle), z))
    return ring


def _curve_points(
    spec: PatientSpec, roi: Roi, image: ImageSetSpec, index: int, shift: float
) -> list[tuple[float, float, float]]:
    """One curve of `roi` on slice `index`, in the files' frame (`shift` added to y). The EXTERNAL ROI is the
    body's skin exactly as the CT voxels draw it; the organs keep their place in the room, mirrored and turned
    over with the patient's position."""
    z = geometry.slice_z(image, index)
    if roi.interpreted_type == "EXTERNAL":
        centre_y, rx, ry = geometry.body_outline(spec.site, image, geometry.slice_group(index, image.dims[2]))
        ring = _ring((0.0, centre_y), (rx, ry), z, None, _BODY_POINTS)
    else:
        (sx, sy), (body_rx, body_ry) = geometry.flips(image.position), spec.site.body_radii
        ring = _ring((sx * roi.center[0] * body_rx, sy * roi.center[1] * body_ry), roi.radii, z, index * 0.3)
    return [(x, y + shift, z) for x, y, z in ring]


def _roi_block(spec: PatientSpec, roi: Roi, image: ImageSetSpec, uid: str) -> list[str]:
    radii = spec.site.body_radii if roi.interpreted_type == "EXTERNAL" else roi.radii
    nz = image.dims[2]
    fractions = roi.z_fraction if image.position.startswith("HF") else (1 - roi.z_fraction[1], 1 - roi.z_fraction[0])
    first, last = int(fractions[0] * (nz - 1)), int(fractions[1] * (nz - 1))
    step = 1 if roi.interpreted_type == "EXTERNAL" else max(1, math.ceil((last - first + 1) / _MAX_CURVES))
    slices = list(range(first, last + 1, step))
    volume = spec.identity.volume_name
    shift = geometry.y_shift(spec.pinnacle_version, image)
    lines = [
        "//-----------------------------------------------------",
        f"//  Beginning of ROI: {roi.name}",
        "//-----------------------------------------------------",
        "",
        *_roi_fields(roi, radii, volume, len(slices), uid),
    ]
    for number, index in enumerate(slices, start=1):
        lines += _curve(roi, roi.name, number, len(slices), _curve_points(spec, roi, image, index, shift))
    return [*lines, *_SURFACE_MESH, f"        }}; // End of ROI {roi.name}"]


def roi_bytes(spec: PatientSpec, plan: PlanSpec, uid_root: str) -> bytes:
    image = spec.image_set(plan.image_set_id)
    lines = _header(spec.identity.volume_name, plan.created.strftime("%a %b %d %H:%M:%S %Y"), spec.pinnacle_version)
    for number, roi in enumerate(spec.site.rois):
        lines += _roi_block(spec, roi, image, f"{uid_root}.{plan.id}.{number}")
    return ("\n".join(lines) + "\n").encode("latin-1")
