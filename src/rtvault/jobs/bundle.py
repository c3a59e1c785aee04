"""`rtvault export bundle`: the patient access bundle, for the patient's right of access or a transfer to another
centre (docs/design.md, "Patient access bundle"). One patient version, read in place as `export dicom` reads it,
written under a new directory:

- `DICOM/`: the files `export dicom --what all` writes: of every plan (CT, RTSTRUCT, RTPLAN, RTDOSE) and the
  objects the DICOM node received for the patient, byte for byte as stored, under one DICOMDIR;
- `summary.pdf`: identity, plans, prescriptions, beams with their MU, a DVH table per ROI and, per trial, the axial
  slice through the prescription point and a coronal and a sagittal slice, contours and dose drawn as the web
  viewer draws them (jobs/patient_drawing.py), printed with jobs/printed.py;
- `README.txt`: what the bundle is, how to open the DICOM files, the UIDs rule, who produced it and from which
  version, dated by the version (its newest file), never by the clock: the same version gives the same bundle;
  the received objects listed by file (the summary lists them too).

What cannot be exported or drawn is named in `missing` (exit 9) and the rest is written; the directory is written
under a temporary sibling and renamed into place whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rtvault import __version__
from rtvault.config import Config
from rtvault.dicom.dicomdir import Written
from rtvault.errors import InputError
from rtvault.jobs import printed
from rtvault.jobs.bundle_texts import TEXTS
from rtvault.jobs.dicom_export import (
    DicomExport,
    check_destination,
    dicom_fileset,
    patient_received,
    staging,
    stored_version,
    write_whole,
)
from rtvault.jobs.dicom_export_received import add_received
from rtvault.jobs.dicom_sources import StoredVersion
from rtvault.jobs.patient_drawing import Drawing, isodose_levels, render
from rtvault.jobs.patient_view import PLANES, Scene, scene_of
from rtvault.pinnacle.treatment import Treatment, read_treatment
from rtvault.report import Line
from rtvault.store import Store

LANGUAGES = ("fr", "en")
DICOM_DIR = "DICOM"
SUMMARY = "summary.pdf"
README = "README.txt"


@dataclass
class BundleExport(DicomExport):
    """What `export bundle` wrote (the DICOM files under DICOM/, the summary and the README) and what it could
    not."""

    lang: str = "fr"
    received_files: list[Written] = field(default_factory=list)  # the received objects among `written`

    def to_json(self) -> dict[str, object]:
        return {**super().to_json(), "lang": self.lang, "summary": SUMMARY, "readme": README,
                "received_files": [{"modality": w.modality, "path": w.path, "sop_instance": w.sop_instance}
                                   for w in self.received_files]}

    def lines(self) -> Iterable[Line]:
        yield from super().lines()
        yield Line(f"  {SUMMARY} and {README} written beside {DICOM_DIR}/")


def export_bundle(config: Config, store: Store, key: str, to: Path, *, lang: str = "fr",
                  snapshot: str | None = None, archive_id: str | None = None) -> BundleExport:
    """The access bundle of the patient KEY names, from `snapshot` (default: the latest holding it) or, when
    `archive_id` is given ("" for the newest archive holding it), from an archive, under the new directory `to`."""
    if lang not in TEXTS:
        raise InputError(f"unknown language {lang!r}: give {' or '.join(LANGUAGES)}")
    check_destination(to)
    version = stored_version(store, key, snapshot, archive_id)
    treatment = read_treatment(version.files)
    report = BundleExport(version.path, {"kind": version.kind, "id": version.id}, str(to), "all", lang=lang)
    who = treatment.identity
    held, unread = patient_received(config, store, [key, version.path, who.mrn, str(who.patient_id or "")], "all",
                                    True)
    with staging(to.parent) as stage:
        fileset = dicom_fileset(config.dicom.uid_root, version, treatment, list(treatment.plans), report, stage)
        report.problems += [unread] if unread else []
        report.received = add_received(store, held, fileset, report.missing)
    received = {h.sop_instance for h in held}
    words = TEXTS[lang]
    sections = [_identity(treatment, words), _plans(treatment, words)]
    for plan in treatment.plans:
        for trial in plan.trials:  # one scene at a time: each holds its CT and dose in memory
            sections += _trial_sections(scene_of(version.files.where, treatment, plan, trial, version.files.missing),
                                        words, report)

    def fill(temp: Path) -> None:
        written = fileset.write(temp / DICOM_DIR)
        report.written = [Written(w.modality, f"{DICOM_DIR}/{w.path}", w.sop_instance) for w in written]
        report.received_files = [w for w in report.written if w.sop_instance in received]
        if report.received_files:
            sections.append(_received(report, words))
        html = printed.render(**_document(config, version, treatment, sections, report, words))
        printed.write(temp / SUMMARY, html)
        (temp / README).write_text(_readme(config, version, treatment, report, words), encoding="utf-8")

    write_whole(to, fill, doing="write the patient bundle into")
    return report


def _source(version: StoredVersion, words: dict[str, str]) -> str:
    return words[f"source_{version.kind}"].format(id=version.id)


def _command(version: StoredVersion, lang: str) -> str:
    chosen = f"--from-archive {version.id}" if version.kind == "archive" else f"--snapshot {version.id}"
    return f"rtvault export bundle --patient {version.path} {chosen} --lang {lang} --to DIR"


def _name(treatment: Treatment) -> str:
    who = treatment.identity
    return " ".join(p for p in (who.last_name.upper(), who.first_name, who.middle_name) if p) or "?"


def _document(config: Config, version: StoredVersion, treatment: Treatment, sections: list[printed.Section],
              report: BundleExport, words: dict[str, str]) -> dict[str, object]:
    date = version.date or words["no_date"]
    if report.missing:
        sections.append(printed.Section(words["missing"], [printed.Cell(words["missing_intro"], mark=True),
                                                           *(printed.Cell(m) for m in report.missing)]))
    return {"lang": report.lang, "title": f"{words['title']} · {_name(treatment)}", "site": config.site.name,
            "todo": words["site_todo"], "page": words["page"], "audience": words["audience"],
            "printed": words["printed"].format(rtvault=__version__, source=_source(version, words), date=date),
            "reprint": f"{words['reprint']}\n{_command(version, report.lang)}", "keep": words["keep"],
            "sections": sections}


def _cells(*values: object) -> list[printed.Cell]:
    return [printed.Cell("" if v is None else str(v)) for v in values]


def _identity(treatment: Treatment, words: dict[str, str]) -> printed.Section:
    who = treatment.identity
    rows = [(words["name"], _name(treatment)), (words["mrn"], who.mrn), (words["birth"], who.birth_date),
            (words["gender"], who.gender), (words["oncologist"], who.radiation_oncologist),
            (words["referring"], who.referring_physician)]
    return printed.Section(words["identity"], head=words["identity_head"].split("|"),
                           rows=[_cells(*row) for row in rows])


def _plans(treatment: Treatment, words: dict[str, str]) -> printed.Section:
    rows = [_cells(p.id, p.name, p.pinnacle_version, p.patient_position, ", ".join(t.name for t in p.trials))
            for p in treatment.plans]
    return printed.Section(words["plans"], head=words["plans_head"].split("|"), rows=rows)


def _trial_sections(scene: Scene, words: dict[str, str], report: BundleExport) -> list[printed.Section]:
    """The trial's prescriptions, beams, DVH table and slices; what the scene could not show noted in `report`."""
    report.problems += [p for p in scene.problems if p not in report.problems]
    if scene.hu is None:
        report.missing.append(f"{scene.plan.directory}, trial {scene.trial.name}: no slices in {SUMMARY} "
                              "(no CT voxels placed by the plan)")
    summary = scene.summary()["trial"]
    which = {"plan": f"{scene.plan.id} ({scene.plan.name})" if scene.plan.name else scene.plan.id,
             "trial": scene.trial.name}
    prescriptions = printed.Section(words["prescriptions"].format(**which),
                                    head=words["prescriptions_head"].split("|"), rows=[
        _cells(p["name"], p["dose_per_fraction_gy"], p["fractions"], p["percent"], p["point"],
               p["total_at_point_gy"]) for p in summary["prescriptions"]])
    if not prescriptions.rows:
        prescriptions.paragraphs.append(printed.Cell(words["no_prescription"]))
    beams = printed.Section(words["beams"].format(**which), head=words["beams_head"].split("|"), rows=[
        _cells(b["number"], b["name"], b["machine"], b["energy"], b["type"], b["gantry_deg"], b["collimator_deg"],
               b["couch_deg"], b["mu"], b["fractions"]) for b in summary["beams"]])
    if not beams.rows:
        beams.paragraphs.append(printed.Cell(words["no_beam"]))
    return [prescriptions, beams, _dvh(scene, words, which), _slices(scene, words, which)]


def _dvh(scene: Scene, words: dict[str, str], which: dict[str, object]) -> printed.Section:
    found = scene.dvhs()
    section = printed.Section(words["dvh"].format(**which), head=words["dvh_head"].split("|"))
    for roi in scene.rois:
        curve = found.get(roi.number)
        if curve is not None:
            section.rows.append(_cells(roi.name, roi.interpreted_type, f"{curve.volume_cc:.1f}",
                                       f"{curve.min_gy:.2f}", f"{curve.mean_gy:.2f}", f"{curve.max_gy:.2f}",
                                       f"{curve.d95_gy:.2f}"))
    if not section.rows:
        section.paragraphs.append(printed.Cell(words["no_dvh"].format(why=words["no_dvh_why"])))
    return section


def _slices(scene: Scene, words: dict[str, str], which: dict[str, object]) -> printed.Section:
    section = printed.Section(words["slices"].format(**which))
    if scene.hu is None:
        why = next((p for p in scene.problems if "voxels" in p or "image set" in p), words["no_dvh_why"])
        section.paragraphs.append(printed.Cell(words["no_slices"].format(why=why)))
        return section
    first = scene.first_slices()
    through = words["through"] if scene.trial.prescriptions and scene.reference_gy else ""
    legend = tuple((colour, words["isodose"].format(percent=percent, gy=f"{gy:.2f}"))
                   for percent, colour, gy in isodose_levels(scene)) if scene.dose_gy is not None else ()
    for plane in PLANES:
        png = render(scene, Drawing(plane, first[plane], "soft", "lines"))
        caption = words[plane].format(n=first[plane], of=scene.slices(plane), through=through)
        section.figures.append(printed.Figure(png, caption, legend))
    return section


def _received(report: BundleExport, words: dict[str, str]) -> printed.Section:
    """The objects the DICOM node received, as written byte for byte under DICOM/."""
    section = printed.Section(words["received"], head=words["received_head"].split("|"),
                              rows=[_cells(w.path, w.modality, w.sop_instance) for w in report.received_files])
    section.paragraphs.append(printed.Cell(words["received_intro"]))
    return section


def _readme(config: Config, version: StoredVersion, treatment: Treatment, report: BundleExport,
            words: dict[str, str]) -> str:
    counts = ", ".join(f"{n} {modality}" for modality, n in report.counts().items() if modality != "DICOMDIR")
    site = words["readme_site"].format(site=config.site.name) if config.site.name else ""
    text = words["readme"].format(name=_name(treatment), mrn=treatment.identity.mrn or "?", counts=counts or "0",
                                  uid_root=config.dicom.uid_root, rtvault=__version__, site=site,
                                  source=_source(version, words), path=version.path,
                                  date=version.date or words["no_date"])
    if report.received_files:
        text += words["readme_received"] + "".join(f"  - {w.path}  {w.modality}  {w.sop_instance}\n"
                                                   for w in report.received_files)
    if report.missing:
        text += words["readme_missing"] + "".join(f"  - {m}\n" for m in report.missing)
    return text
