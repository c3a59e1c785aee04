"""The dashboard's charts, drawn on the server by matplotlib as SVG from the series of jobs/dashboard.py.

No GUI and no pyplot: each chart is a `Figure` of its own saved with the SVG backend, so that charts drawn in the
server's worker threads share nothing. Text is kept as SVG `<text>` (readable, searchable, translated) and every
text matplotlib writes is escaped by its SVG writer; mathtext is off, so a `$` in a store name is only a `$`.
Each series is a group whose id names it (`size:<store>`, `forecast:<store>`, `backup:duration`, ...), for
the tests and for anyone reading the file. The output is the same for the same data (no date, a fixed hash salt).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime, timedelta

import matplotlib
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from rtvault.jobs.dashboard import when

matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "rtvault", "text.parse_math": False,
                            "font.family": "DejaVu Sans", "font.size": 9, "axes.spines.top": False,
                            "axes.spines.right": False})
SIZE = (7.2, 3.2)  # inches: 691 x 307 px at matplotlib's 96 dpi for SVG
GB = 1e9
STATUS_COLOURS = {"active": "#1a7f37", "archived": "#0969da", "deleted": "#cf222e"}
T = Callable[..., str]


def _figure() -> Figure:
    return Figure(figsize=SIZE, layout="constrained")


def _svg(figure: Figure) -> bytes:
    out = io.BytesIO()
    figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def _dates(axes: object, times: list[datetime]) -> None:
    """Dates on the x axis, at least a day wide (one sample alone would span years otherwise)."""
    if times and max(times) - min(times) < timedelta(days=1):
        middle = min(times) + (max(times) - min(times)) / 2
        axes.set_xlim(middle - timedelta(hours=12), middle + timedelta(hours=12))  # type: ignore[attr-defined]
    locator = AutoDateLocator()
    axes.xaxis.set_major_locator(locator)  # type: ignore[attr-defined]
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[attr-defined]


def _empty(figure: Figure, text: str) -> None:
    axes = figure.add_subplot()
    axes.set_axis_off()
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, gid="empty")


def size_chart(data: dict, t: T) -> bytes:
    """Each store's size over time (solid), its disk's use (dashed) and, dotted, the line to the day the disk is
    forecast full."""
    figure = _figure()
    stores = {name: s for name, s in data["stores"].items() if s["points"]}
    if not stores:
        _empty(figure, t("chart_no_samples"))
        return _svg(figure)
    axes = figure.add_subplot()
    for index, (name, store) in enumerate(stores.items()):
        colour = f"C{index % 10}"
        times = [when(p["time"]) for p in store["points"]]
        axes.plot(times, [p["store_bytes"] / GB for p in store["points"]], color=colour, marker=".",
                  label=t("chart_store_size", store=name), gid=f"size:{name}")
        axes.plot(times, [p["used_bytes"] / GB for p in store["points"]], color=colour, linestyle="--",
                  linewidth=1, label=t("chart_disk_used", store=name), gid=f"used:{name}")
        if store["full_on"]:
            last = store["points"][-1]
            full: datetime = when(store["full_on"])
            axes.plot([times[-1], full], [last["used_bytes"] / GB, last["disk_bytes"] / GB], color=colour,
                      linestyle=":", marker="x", markevery=[1], gid=f"forecast:{name}",
                      label=t("chart_full_on", store=name, day=store["full_on"][:10]))
    axes.set_ylabel(t("chart_gb"))
    axes.set_title(t("chart_size_title"))
    axes.legend(loc="upper left", fontsize=8)
    _dates(axes, [when(p["time"]) for s in stores.values() for p in s["points"]]
           + [when(s["full_on"]) for s in stores.values() if s["full_on"]])
    return _svg(figure)


def backup_chart(data: dict, t: T) -> bytes:
    """Per backup run: the bytes it added (bars, left) and how long it took (line, right)."""
    figure = _figure()
    runs = data["runs"]
    if not runs:
        _empty(figure, t("chart_no_backup"))
        return _svg(figure)
    axes = figure.add_subplot()
    times = [when(r["started"]) for r in runs]
    # one collection of vertical bars, not a patch per run: a year of hourly backups draws in tens of ms
    axes.vlines(times, 0, [(r["bytes_added"] or 0) / 1e6 for r in runs], colors="#8fb8e8",
                linewidth=_bar_points(times), label=t("chart_bytes_added"), gid="backup:bytes_added")
    axes.set_ylabel(t("chart_mb_added"))
    right = axes.twinx()
    right.plot(times, [r["duration_s"] for r in runs], color="#cf222e", marker="o", markersize=3,
               label=t("chart_duration"), gid="backup:duration")
    right.set_ylabel(t("chart_seconds"))
    right.spines["right"].set_visible(True)
    axes.set_title(t("chart_backup_title"))
    handles = axes.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    axes.legend(handles=handles, loc="upper left", fontsize=8)
    _dates(axes, times)
    return _svg(figure)


def _bar_points(times: list[datetime]) -> float:
    """The bars' width in points: wide for a few runs, thin for many (the axes are about 400 points wide)."""
    return max(0.5, min(12.0, 0.6 * 400 / max(1, len(times))))


def drill_chart(data: dict, t: T) -> bytes:
    """Each drill's time in minutes by kind (patient, archive, full) and the extrapolated full restores, against
    the two RTO lines."""
    figure = _figure()
    drills = data["drills"]
    if not drills:
        _empty(figure, t("chart_no_drill"))
        return _svg(figure)
    axes = figure.add_subplot()
    for kind, marker in (("patient", "o"), ("archive", "s"), ("full", "D")):
        mine = [d for d in drills if d["kind"] == kind]
        if mine:
            axes.plot([when(d["time"]) for d in mine], [d["seconds"] / 60 for d in mine], marker=marker,
                      linestyle="", label=t(f"chart_drill_{kind}"), gid=f"drill:{kind}")
    estimates = [d for d in drills if d["full_estimate_s"] is not None]
    if estimates:
        axes.plot([when(d["time"]) for d in estimates], [d["full_estimate_s"] / 60 for d in estimates], marker="^",
                  linestyle="", label=t("chart_drill_estimate"), gid="drill:full_estimate")
    axes.axhline(data["rto_patient_s"] / 60, color="#bf8700", linestyle="--", gid="rto:patient",
                 label=t("chart_rto_patient", minutes=f"{data['rto_patient_s'] / 60:g}"))
    axes.axhline(data["rto_full_s"] / 60, color="#cf222e", linestyle="--", gid="rto:full",
                 label=t("chart_rto_full", minutes=f"{data['rto_full_s'] / 60:g}"))
    axes.set_ylim(bottom=0)
    axes.set_ylabel(t("chart_minutes"))
    axes.set_title(t("chart_drill_title"))
    axes.legend(loc="upper left", fontsize=8)
    _dates(axes, [when(d["time"]) for d in drills])
    return _svg(figure)


def patients_chart(data: dict, t: T) -> bytes:
    """Patients of the catalog per status, as bars with their count."""
    figure = _figure()
    counts = data["patients"]
    axes = figure.add_subplot()
    statuses = [s for s in ("active", "archived", "deleted") if s in counts] + sorted(
        set(counts) - {"active", "archived", "deleted"})
    bars = axes.bar([t(f"status_{s}") for s in statuses], [counts[s] for s in statuses], gid="patients",
                    color=[STATUS_COLOURS.get(s, "#57606a") for s in statuses])
    for status, bar in zip(statuses, bars, strict=True):
        bar.set_gid(f"patients:{status}")
    axes.bar_label(bars)
    axes.set_ylabel(t("chart_patients"))
    axes.set_title(t("chart_patients_title"))
    return _svg(figure)


def dvh_chart(data: dict, t: T) -> bytes:
    """The cumulative DVH of each ROI of a patient's plan (`jobs.patient_view`'s curves), each in its colour."""
    figure = Figure(figsize=(SIZE[0], 4.2), layout="constrained")
    if not data["rois"]:
        _empty(figure, t("dvh_none"))
        return _svg(figure)
    axes = figure.add_subplot()
    for roi in data["rois"]:
        axes.plot(roi["dose_gy"], roi["percent"], color=roi["colour"], linewidth=1.5, label=roi["name"],
                  gid=f"dvh:{roi['name']}")
    if data.get("reference_gy"):
        axes.axvline(data["reference_gy"], color="#57606a", linestyle=":", linewidth=1, gid="dvh:prescription",
                     label=t("dvh_prescription", gy=f"{data['reference_gy']:g}"))
    axes.set_xlim(left=0)
    axes.set_ylim(0, 102)
    axes.set_xlabel(t("dvh_dose"))
    axes.set_ylabel(t("dvh_volume"))
    axes.set_title(t("dvh_title", trial=data.get("trial") or ""))
    axes.grid(True, linewidth=0.3)
    axes.legend(loc="upper right", fontsize=8)
    return _svg(figure)


DRAW: dict[str, Callable[[dict, T], bytes]] = {"size": size_chart, "backup": backup_chart, "drill": drill_chart,
                                               "patients": patients_chart}
