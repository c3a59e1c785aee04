"""The views: each parses its parameters, calls one library function and returns data (rendered as a page,
or as JSON by the /api twin) or a file; the audit trail records what was asked and how it ended."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from starlette.background import BackgroundTask
from starlette.responses import FileResponse, Response

from rtvault.catalog import audit as audit_trail
from rtvault.catalog.patients import archive_list, patient_detail, patient_names, patient_site
from rtvault.catalog.search import MAX_PER_PAGE, Criteria, search
from rtvault.configured import store_labels
from rtvault.errors import NotFound, RtvaultError
from rtvault.jobs.dashboard import CHARTS, overview, series
from rtvault.jobs.deliver import choose, discard, download_name, export_tar, restore_to_dir
from rtvault.jobs.dicom_download import asked_count, received_zip
from rtvault.jobs.reconcile import limited_to, reconcile
from rtvault.jobs.restore_list import OUTCOMES, WEB_MOST_ROWS, kept_report, restore_list_web
from rtvault.utc import now_iso
from rtvault.web.call import Call
from rtvault.web.charts import DRAW
from rtvault.web.i18n import DEFAULT, LANGUAGES, translator
from rtvault.web.params import Upload

AUDIT_PER_PAGE = 50
OTHER_SITE = "a patient of a site this user is not limited to"  # the audited result of such a refusal
_AUDIT_FILTERS = ("user", "action", "patient", "since", "until")
Result = TypeVar("Result")


def no_search(page: int = 1, per_page: int = 20) -> dict:
    """What the search page shows before a search, or when its criteria cannot be understood."""
    return {"patients": [], "total": 0, "page": page, "per_page": per_page, "more": False, "criteria": {},
            "searched": False}


def search_patients(call: Call) -> dict:
    """`GET /` and `/api/search`: one page of patients matching the criteria (none given: no search)."""
    criteria = Criteria(**{name: call.get(name) for name in Criteria.names()})
    page, per_page = call.number("page", 1), call.number("per_page", 20, most=MAX_PER_PAGE)
    if criteria.is_empty():
        return no_search(page, per_page)
    try:
        result = search(call.db, criteria, page=page, per_page=per_page, shown=store_labels(call.config, call.db),
                        sites=call.user.searched_sites)
    except RtvaultError as error:
        call.audit("search", detail=criteria.to_json(), result=str(error))
        raise
    call.audit("search", detail=criteria.to_json())
    return {**result.to_json(), "criteria": criteria.to_json(), "searched": True}


def _patient_key(call: Call) -> str:
    """The request's patient key; a patient of a site the user does not see is answered as unknown (404: its
    existence is not told) and the refusal audited."""
    key = call.path_params["key"]
    site = patient_site(call.db, key)
    if site is not None and not call.user.sees(site):
        call.audit("refused", patient=key, detail={"method": call.method, "site": site, "sites": list(call.user.sites)},
                   result=OTHER_SITE)
        raise NotFound(f"no patient {key!r} in the catalog")
    return key


def show_patient(call: Call) -> dict:
    """`GET /patients/{key}`: identity, plans, image sets, every version and where it is."""
    key = _patient_key(call)
    patient = patient_detail(call.db, key, store_labels(call.config, call.db), call.user.searched_sites)
    if patient is None:
        raise NotFound(f"no patient {key!r} in the catalog")
    call.audit("view", patient=key)
    return patient


def _audited(call: Call, action: str, work: Callable[[], tuple[dict, Result]]) -> Result:
    """Run `work` (which answers (audit detail, result)); record the outcome either way."""
    key = _patient_key(call)
    asked = {"version": call.get("version"), "location": call.get("location")}
    try:
        detail, result = work()
    except RtvaultError as error:
        call.audit(action, patient=key, detail={k: v for k, v in asked.items() if v}, result=str(error))
        raise
    call.audit(action, patient=key, detail=detail)
    return result


def download(call: Call) -> Response:
    """`GET /patients/{key}/download?version=&location=`: the version as a Pinnacle-format tar. `HEAD` checks
    the same things and answers the same headers without building the tar; nothing was sent, nothing is
    recorded."""
    if call.method == "HEAD":
        chosen = choose(call.db, call.config, _patient_key(call), call.get("version"), call.get("location"),
                        sites=call.user.searched_sites)
        head = Response(b"", media_type="application/x-tar",
                        headers={"Content-Disposition": f'attachment; filename="{download_name(chosen)}"'})
        del head.headers["content-length"]  # the size is known only once the tar is built
        return head

    def work() -> tuple[dict, Response]:
        chosen = choose(call.db, call.config, call.path_params["key"], call.get("version"), call.get("location"),
                        sites=call.user.searched_sites)
        out = export_tar(call.config, chosen)
        response = FileResponse(out, media_type="application/x-tar", filename=download_name(chosen),
                                background=BackgroundTask(discard, out))
        return {"version": chosen.version["version"], "source": chosen.source}, response

    return _audited(call, "download", work)


def restore(call: Call) -> dict:
    """`POST /patients/{key}/restore` (version, location): into a new folder of [web] restore_dir."""

    def work() -> tuple[dict, dict]:
        chosen = choose(call.db, call.config, call.path_params["key"], call.get("version"), call.get("location"),
                        sites=call.user.searched_sites)
        done = restore_to_dir(call.config, chosen)
        return {"version": done["version"], "source": done["source"], "directory": done["directory"]}, done

    return {**_audited(call, "restore", work), "key": call.path_params["key"]}


MISSING_NAMED = 100  # SOP instance UIDs named in the X-Rtvault-Missing-Objects header; the zip's file names all


def dicom_download(call: Call) -> Response:
    """`GET /patients/{key}/dicom.zip?study=&series=`: the patient's received DICOM objects as stored, with a
    DICOMDIR, in a zip; those no store can give are named in it (MANQUANT-MISSING.txt) and in the
    X-Rtvault-Missing headers, and the download audited as partial."""
    key = _patient_key(call)
    asked = {name: call.get(name) for name in ("study", "series") if call.get(name)}
    if call.method == "HEAD":  # what a download would hold, nothing read nor recorded
        count = asked_count(call.db, key, **asked, sites=call.user.searched_sites)
        head = Response(b"", media_type="application/zip", headers={"X-Rtvault-Instances": str(count)})
        del head.headers["content-length"]  # the size is known only once the zip is built
        return head
    try:
        built = received_zip(call.config, call.db, key, **asked, sites=call.user.searched_sites)
    except RtvaultError as error:
        call.audit("dicom_download", patient=key, detail=asked, result=str(error))
        raise
    lost = len(built.missing)
    call.audit("dicom_download", patient=key, detail={**asked, "instances": built.delivered, "missing": lost,
                                                       "stores": built.stores},
               result=built.outcome())
    headers = {"X-Rtvault-Instances": str(built.delivered), "X-Rtvault-Missing": str(lost)}
    if lost:
        named = ", ".join(uid for uid in built.missing_uids[:MISSING_NAMED] if uid.isascii() and uid.isprintable())
        headers["X-Rtvault-Missing-Objects"] = named + (f" and {lost - MISSING_NAMED} more"
                                                        if lost > MISSING_NAMED else "")
    return FileResponse(built.path, media_type="application/zip", filename=built.name, headers=headers,
                        background=BackgroundTask(discard, built.path))


def no_restore_list() -> dict:
    """The list restore page before a list is sent, or when the list cannot be read (the form shown again)."""
    return {"report": None, "most_rows": WEB_MOST_ROWS}


def restore_list(call: Call) -> dict:
    """`GET /restore-list`: the form sending a CSV list of patients (MRN, or last name and birth date). `POST`
    (the file as `csv`, or its text as a `csv` field): each patient found in the catalog restored into a new
    folder of [web] restore_dir as one restore is, each one audited; the report, kept to download as CSV."""
    if call.method != "POST":
        return no_restore_list()
    upload = call.uploads.get("csv")
    if upload is None and call.get("csv"):  # the API may send the list's text as a field
        upload = Upload("list.csv", call.get("csv").encode("utf-8"))
    name, data = (upload.filename, upload.content) if upload else ("", b"")

    def told(entry: dict) -> None:
        done = {"directory": entry["directory"], "source": entry["source"]} if "directory" in entry else {}
        call.audit("restore", patient=entry["key"], detail={"list": name, "line": entry["line"], **done},
                   result=entry.get("reason", "ok"))

    try:
        report, kept = restore_list_web(call.config, call.db, data, name, restored=told,
                                        sites=call.user.searched_sites)
    except RtvaultError as error:
        call.audit("restore_list", detail={"file": name}, result=str(error))
        raise
    for hidden in report.other_sites:
        call.audit("refused", patient=hidden["key"], result=OTHER_SITE,
                   detail={"list": name, "line": hidden["line"], "site": hidden["site"],
                           "sites": list(call.user.sites)})
    verdict = report.verdict()
    call.audit("restore_list", detail={"file": name, **{k: len(getattr(report, k)) for k in OUTCOMES}, "report": kept},
               result=str(verdict.error) if verdict.error else "ok")
    csv_path = f"{'/api' if call.api else ''}/restore-list/{kept}.csv" if kept else None
    return {"report": report.to_json(), "rows": [{"outcome": outcome, **entry} for outcome, entry in report.in_order()],
            "report_id": kept, "report_csv": csv_path, "complete": verdict.error is None,
            "warnings": list(report.warnings()), "most_rows": WEB_MOST_ROWS}


def restore_list_csv(call: Call) -> Response:
    """`GET /restore-list/{report}.csv`: the report of a list restore, as the spreadsheet that sent it reads it."""
    report_id = call.path_params["report"]
    data = kept_report(call.config, report_id)
    call.audit("restore_list_report", detail={"report": report_id})
    return Response(data, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="rtvault-restore-{report_id}.csv"'})


def archives(call: Call) -> dict:
    """`GET /archives`: every indexed archive, damaged ones flagged (`damaged=1`: only those)."""
    damaged_only = call.get("damaged").lower() in ("1", "true", "on", "yes")
    return {"archives": archive_list(call.db, damaged_only=damaged_only,
                                     shown=store_labels(call.config, call.db)), "damaged": damaged_only}


def _audit_query(call: Call, limit: int, offset: int) -> tuple[list[audit_trail.Entry], int]:
    filters = {name: call.get(name) for name in _AUDIT_FILTERS}
    return audit_trail.entries(call.db, **filters, limit=limit, offset=offset)


def audit(call: Call) -> dict:
    """`GET /audit`: the audit trail, newest first, filtered by user, action, patient and dates."""
    page, per_page = call.number("page", 1), call.number("per_page", AUDIT_PER_PAGE, most=1000)
    found, total = _audit_query(call, per_page, (page - 1) * per_page)
    # Every action recorded so far (the CLI's user_add, token_create ... as well as the web's), for the filter.
    actions = audit_trail.actions(call.db)
    return {"entries": [e.to_json() for e in found], "total": total, "page": page, "per_page": per_page,
            "filters": {name: call.get(name) for name in _AUDIT_FILTERS if call.get(name)}, "actions": actions,
            "names": patient_names(call.db, [e.patient for e in found])}


def audit_csv(call: Call) -> Response:
    """`GET /audit.csv`: the filtered audit trail as CSV (at most audit.MAX_LIMIT entries)."""
    found, _total = _audit_query(call, audit_trail.MAX_LIMIT, 0)
    return Response(audit_trail.to_csv(found), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="rtvault-audit.csv"'})


def dashboard(call: Call) -> dict:
    """`GET /dashboard`: the health checks and since when, the last run of each job, each store, the continuity
    targets, and where its charts are (drawn by `dashboard_chart`; their data under /api)."""
    return {**overview(call.config, call.db).to_json(),
            "charts": {name: {"svg": f"/dashboard/chart/{name}.svg", "data": f"/api/dashboard/chart/{name}"}
                       for name in CHARTS}}


def dashboard_chart(call: Call) -> dict | Response:
    """`GET /dashboard/chart/{name}.svg?lang=`: one chart as SVG; its twin `/api/dashboard/chart/{name}` gives
    the chart's data as JSON."""
    name = call.path_params["name"]
    if name not in CHARTS:
        raise NotFound(f"no chart {name!r} on the dashboard (the charts: {', '.join(CHARTS)})")
    data = series(call.config, call.db, name)
    if call.api:
        return data
    lang = call.get("lang") if call.get("lang") in LANGUAGES else DEFAULT
    return Response(DRAW[name](data, translator(lang)), media_type="image/svg+xml")


SHOWN_PER_LIST = 500  # rows of each list on the page; the JSON twin and the CSV hold them all


def reconcile_lists(call: Call) -> dict:
    """`GET /reconcile`: the patients in Pinnacle never captured, those archived without two verified copies, and
    those safe to delete from Pinnacle (jobs/reconcile.py); the /api twin is `rtvault reconcile --json`."""
    found = limited_to(reconcile(call.config, catalog=call.db), call.user.searched_sites, call.config, call.db)
    data = found.to_json()
    call.audit("reconcile", detail={name: len(entries) for name, entries in data.items()})
    if call.api:
        return data
    return {**{name: entries[:SHOWN_PER_LIST] for name, entries in data.items()},
            "more": {name: max(0, len(entries) - SHOWN_PER_LIST) for name, entries in data.items()},
            "not_yet": [{**n.who.to_json(), "reason": n.reason} for n in found.not_yet[:SHOWN_PER_LIST]],
            "problems": list(found.problems), "source": found.source, "idle_months": found.idle_months,
            "idle_before": found.idle_before, "time": now_iso()}


def reconcile_csv(call: Call) -> Response:
    """`GET /reconcile.csv`: the three lists as CSV, as `rtvault reconcile --csv` prints them."""
    found = limited_to(reconcile(call.config, catalog=call.db), call.user.searched_sites, call.config, call.db)
    call.audit("reconcile", detail={"csv": True, **{name: len(e) for name, e in found.to_json().items()}})
    return Response(found.csv(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="rtvault-reconcile.csv"'})
