"""`rtvault export dicom`: one patient version, read in place from a snapshot or an archive (no restore), written as
DICOM-RT under a new directory: CT (one instance per slice), RTSTRUCT per plan, RTPLAN and RTDOSE per trial (from
`dicom/rtplan.py` and `dicom/rtdose.py`), and a DICOMDIR (docs/design.md, "DICOM export").

What cannot be exported (an image set without voxels, ROIs drawn on it, a plan without a coordinate frame, a beam
without its dose file) is named in the report's `missing` and the exit code is 9; the rest is written. UIDs are
`Ids(uid_root, patient path, tree hash or archive id)`: the same version exported twice gives the same bytes.
The files are written under a temporary sibling of the destination and renamed into place whole.

`what` chooses the parts: `pinnacle` (the version, as above), `received` (the objects the DICOM node received for
the patient, byte for byte, `jobs/dicom_export_received.py`) or `all` (both, one DICOMDIR covering them; the
default). A patient the DICOM node alone knows (no Pinnacle record) is exported by its DICOM PatientID.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from rtvault import __version__
from rtvault.catalog.dicom import Held
from rtvault.config import Config
from rtvault.dicom.common import Export
from rtvault.dicom.ct import CtSeries, ct_datasets, plan_series
from rtvault.dicom.dicomdir import DicomFileSet, Written, disk_error
from rtvault.dicom.rtdose import build_rtdoses
from rtvault.dicom.rtplan import build_rtplan
from rtvault.dicom.rtstruct import rtstruct_dataset
from rtvault.dicom.uids import Ids
from rtvault.errors import CatalogError, InputError, NotFound, PartialResult, os_failure
from rtvault.jobs.dicom_export_received import add_received, received_ids, received_of
from rtvault.jobs.dicom_sources import StoredVersion, archive_version, snapshot_version
from rtvault.jobs.history import NoSuchPatient
from rtvault.pinnacle.treatment import CoordinateFrame, ImageSet, Plan, Treatment, read_treatment
from rtvault.pinnacle.treatment_plan import decide_frame
from rtvault.report import OK, Line, Report, Verdict, err
from rtvault.store import Store

T = TypeVar("T")
WHAT = ("pinnacle", "received", "all")


@dataclass
class DicomExport(Report):
    """What `export dicom` wrote and what it could not."""

    patient: str
    source: dict[str, str]  # {"kind": "snapshot", "archive" or "received", "id": ...}
    to: str
    what: str = "all"
    received: int = 0  # received objects written, byte for byte
    plans: list[str] = field(default_factory=list)  # the plans exported, "Plan_K (name)"
    written: list[Written] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # what could not be exported: exit 9
    problems: list[str] = field(default_factory=list)  # what the reader met in the files (warnings)

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for item in self.written:
            found[item.modality] = found.get(item.modality, 0) + 1
        return found

    def to_json(self) -> dict[str, object]:
        return {"patient": self.patient, "source": self.source, "to": self.to, "what": self.what,
                "received": self.received, "plans": self.plans,
                "written": self.counts(), "files": [{"modality": w.modality, "path": w.path} for w in self.written],
                "missing": self.missing, "problems": self.problems}

    def lines(self) -> Iterable[Line]:
        counts = ", ".join(f"{n} {modality}" for modality, n in self.counts().items()) or "nothing"
        yield Line(f"{self.patient} ({self.source['kind']} {self.source['id'][:20]}): {counts} written to {self.to}"
                   + (f" ({self.received} received object(s) as stored)" if self.received else ""))
        yield from (Line(f"  plan {name}") for name in self.plans)
        yield from (err(f"  missing: {what}") for what in self.missing)

    def warnings(self) -> Iterable[str]:
        return self.problems

    def verdict(self) -> Verdict:
        if not self.missing:
            return OK
        return Verdict.failed(PartialResult(f"{len(self.missing)} part(s) of the patient could not be exported "
                                            "(named above); everything else was written"))


def export_dicom(config: Config, store: Store, key: str, to: Path, *, plan: str | None = None,
                 snapshot: str | None = None, archive_id: str | None = None, what: str = "all") -> DicomExport:
    """Export the patient KEY names, from `snapshot` (default: the latest holding it) or, when `archive_id` is
    given ("" for the newest archive holding it), from an archive, as DICOM-RT under the new directory `to`; with
    `what` "received" or "all", the objects the DICOM node received for the patient too."""
    if what not in WHAT:
        raise InputError(f"--what {what!r}: give pinnacle, received or all")
    if plan is not None and what == "received":
        raise InputError("--plan chooses among the Pinnacle plans: give it with --what pinnacle or all")
    check_destination(to)
    version, treatment = _pinnacle(store, key, snapshot, archive_id, what)
    ids = [key] if treatment is None else [key, treatment.identity.mrn, str(treatment.identity.patient_id or "")]
    held, unread = ([], None) if what == "pinnacle" else patient_received(config, store, ids, what, version is not None)
    if (version is None or treatment is None) and not held:
        raise NotFound(f"no received DICOM object of PatientID {key!r} in {store.location}, and no Pinnacle "
                       "patient of that key (`rtvault search --mrn` finds both)")
    with staging(to.parent) as stage:
        if version is None or treatment is None:
            report = DicomExport(key, {"kind": "received", "id": store.location}, str(to), what)
            fileset = DicomFileSet(received_ids(config, key, held).of("fileset"), stage)
        else:
            report = DicomExport(version.path, {"kind": version.kind, "id": version.id}, str(to), what)
            chosen = _chosen_plans(treatment, plan) if what != "received" else []
            fileset = dicom_fileset(config.dicom.uid_root, version, treatment, chosen, report, stage)
        report.problems += [unread] if unread else []
        report.received = add_received(store, held, fileset, report.missing)
    if len(fileset):  # nothing at all to write (each part named missing): no empty File-set
        report.written = write_whole(to, fileset.write, doing="write the DICOM export into")
    else:
        fileset.close()
    return report


@contextmanager
def staging(folder: Path) -> Iterator[Path]:
    """Where a File-set is staged: beside its destination (same file system, not the system's temporary area);
    an operating-system error while staging (a full disk) is one sentence naming the folder."""
    try:
        yield folder
    except OSError as error:
        raise os_failure(disk_error(error) or error, folder, doing="stage the DICOM objects in") from None


def _pinnacle(store: Store, key: str, snapshot: str | None, archive_id: str | None,
              what: str) -> tuple[StoredVersion | None, Treatment | None]:
    """The Pinnacle version KEY names and its treatment; (None, None) when there is none and `what` does not need
    one (the key may be a PatientID the DICOM node alone knows)."""
    try:
        version = stored_version(store, key, snapshot, archive_id)
    except NoSuchPatient:
        if what == "pinnacle" or snapshot:
            raise
        return None, None
    return version, read_treatment(version.files)


def patient_received(config: Config, store: Store, ids: list[str], what: str,
              pinnacle: bool) -> tuple[list[Held], str | None]:
    """The patient's received objects; with `all` and a Pinnacle version, a catalog that cannot be read only leaves
    them out, with a warning saying so (a site without a DICOM node may have no catalog)."""
    try:
        return received_of(config, store, ids), None
    except CatalogError as error:
        if what == "received" or not pinnacle:
            raise
        return [], f"received DICOM objects not looked for: {error}"


def stored_version(store: Store, key: str, snapshot: str | None, archive_id: str | None) -> StoredVersion:
    """The version of patient KEY a command names: an archive when `archive_id` is given ("" for the newest
    holding the patient), else `snapshot` (default: the latest holding it)."""
    if archive_id is not None:
        return archive_version(store, key, archive_id or None)
    return snapshot_version(store, key, snapshot)


def dicom_fileset(uid_root: str, version: StoredVersion, treatment: Treatment, plans: list[Plan],
                  report: DicomExport, stage: Path | None = None) -> DicomFileSet:
    """The DICOM-RT objects of `plans` and the image sets they use, staged (in `stage`: see `DicomFileSet`); what
    was exported and what could not be noted in `report`."""
    report.plans = [f"{p.directory} ({p.name})" if p.name else p.directory for p in plans]
    report.missing += list(version.files.missing)
    report.problems += [str(p) for p in treatment.problems]
    export = _export(uid_root, version, treatment, plans)
    fileset = DicomFileSet(export.ids.of("fileset"), stage)
    ct = _add_ct(export, treatment, plans, fileset, report)
    for chosen in plans:
        _add_plan(export, treatment, chosen, ct, fileset, report)
    return fileset


def check_destination(to: Path) -> None:
    """InputError unless `to` is a new or empty directory whose parent exists."""
    if to.exists() and (not to.is_dir() or any(to.iterdir())):
        raise InputError(f"{to} already exists and is not an empty directory: choose a new or empty --to")
    if not to.parent.is_dir():
        raise InputError(f"{to.parent} does not exist: create it or choose another --to")


def _chosen_plans(treatment: Treatment, wanted: str | None) -> list[Plan]:
    if wanted is None:
        return list(treatment.plans)
    chosen = [p for p in treatment.plans if wanted in (p.name, str(p.id), p.directory)]
    if len(chosen) != 1:
        known = ", ".join(f"{p.id} ({p.name})" for p in treatment.plans) or "none"
        how = "names several plans" if chosen else "names no plan of this patient"
        raise InputError(f"--plan {wanted!r} {how}: give a plan id or name among {known}")
    return chosen


def _export(uid_root: str, version: StoredVersion, treatment: Treatment, plans: list[Plan]) -> Export:
    primary = next((treatment.image_set(p.primary_image_set_id) for p in plans
                    if treatment.image_set(p.primary_image_set_id)), None)
    image = primary or (treatment.image_sets[0] if treatment.image_sets else None)
    return Export(Ids(uid_root, version.path, version.version), treatment.identity,
                  image.scan_datetime if image else None, version.date, f"rtvault {__version__}")


def _image_sets(treatment: Treatment, plans: list[Plan]) -> list[ImageSet]:
    """Every image set when no plan was chosen, else those the chosen plans use (primary and ROIs')."""
    if len(plans) == len(treatment.plans):
        return list(treatment.image_sets)
    used = {p.primary_image_set_id for p in plans} | {r.image_set_id for p in plans for r in p.rois}
    return [i for i in treatment.image_sets if i.id in used]


def image_frame(image: ImageSet, plans: list[Plan]) -> CoordinateFrame | None:
    """The frame CT positions are computed in: that of a plan whose primary image set this is, else the image's
    own (its header's position and version). Either gives the same DICOM positions: the frame's offset takes
    the start it names into the scanner's frame."""
    for plan in plans:
        if plan.primary_image_set_id == image.id and plan.frame is not None:
            return plan.frame
    return decide_frame(image, image.patient_position, image.version, (), (), image.name, [])


def _add_ct(export: Export, treatment: Treatment, plans: list[Plan], fileset: DicomFileSet,
            report: DicomExport) -> dict[int, CtSeries]:
    """Each image set's CT, staged; the series written, by image set id."""
    written: dict[int, CtSeries] = {}
    for image in _image_sets(treatment, plans):
        frame = image_frame(image, plans)
        if frame is None:
            report.missing.append(f"{image.name}: its patient position or geometry is unknown: no CT written")
            continue
        try:
            voxels = treatment.voxels(image)
        except PartialResult as error:
            report.missing.append(f"{image.name}: {error}")
            continue
        if voxels is None or not plan_series(export, image, frame).slices:
            report.missing.append(f"{image.name}: no voxels ({_why(treatment, image)}): no CT written")
            continue
        fileset.add(ct_datasets(export, image, frame, voxels))
        written[image.id] = plan_series(export, image, frame)
    return written


def _why(treatment: Treatment, image: ImageSet) -> str:
    said = [p.message for p in treatment.problems if p.file.startswith(f"{image.name}.")]
    return said[-1] if said else "the image set's files give none"


def _add_plan(export: Export, treatment: Treatment, plan: Plan, ct: dict[int, CtSeries], fileset: DicomFileSet,
              report: DicomExport) -> None:
    if plan.frame is None:
        report.missing.append(f"{plan.directory}: no primary image set or patient position: its coordinates cannot "
                              "be placed, no RTSTRUCT, RTPLAN or RTDOSE written")
        return
    lacking = sorted({f"ImageSet_{r.image_set_id}" for r in plan.rois if r.image_set_id not in ct})
    if lacking:
        report.missing.append(f"{plan.directory}: its ROIs lie on {', '.join(lacking)}, whose CT is not written: "
                              "their contours reference no CT image")
    structures = rtstruct_dataset(export, plan, ct)
    fileset.add([structures.dataset])
    report.problems += structures.notes
    _add_rt_plan(export, treatment, plan, structures.dataset.SOPInstanceUID, fileset, report)


def _add_rt_plan(export: Export, treatment: Treatment, plan: Plan, structure_set_uid: str, fileset: DicomFileSet,
                 report: DicomExport) -> None:
    """The RTPLAN of each trial and its RTDOSEs (per beam, and the sum when every beam has its dose)."""
    for index in range(len(plan.trials)):
        built = build_rtplan(export, treatment, plan, index, structure_set_uid=structure_set_uid)
        fileset.add([built.dataset])
        doses = build_rtdoses(export, treatment, plan, index, built)
        fileset.add(d.dataset for d in doses.doses)
        report.missing += [str(p) for p in (*built.problems, *doses.problems)]


def write_whole(to: Path, fill: Callable[[Path], T], *, doing: str) -> T:
    """`fill` writes into a temporary sibling of `to` (which it creates), renamed to `to` when done: the
    destination is whole or absent."""
    temp = to.with_name(f".{to.name}.rtvault-partial")
    try:
        shutil.rmtree(temp, ignore_errors=True)
        done = fill(temp)
        if to.exists():
            to.rmdir()  # checked empty before
        temp.rename(to)
    except OSError as error:
        raise os_failure(error, error.filename or to, doing=doing) from None
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return done
