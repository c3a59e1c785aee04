"""The `journal` health check: the last check of the journal's chain (`rtvault journal verify`, the last step of
the daemon's verify job) read from the run journal: CRITICAL when a segment was found changed, replaced or
removed, WARNING when a store could not be read for it, OK otherwise (and before the first check)."""

from __future__ import annotations

from rtvault.catalog.runs import runs
from rtvault.errors import ExitCode, RtvaultError
from rtvault.jobs.health_survey import Survey
from rtvault.jobs.health_types import Check, Status

COMMAND = "rtvault journal verify"


def _first_problem(summary: object) -> str:
    if not isinstance(summary, dict):
        return "see `rtvault journal verify`"
    stores = summary.get("stores") if isinstance(summary.get("stores"), list) else []
    problems = [p for s in stores if isinstance(s, dict) for p in (s.get("problems") or [])]
    problems += list(summary.get("across") or [])
    return str(problems[0]) if problems else "see `rtvault journal verify`"


def journal_check(survey: Survey) -> Check:
    try:
        recent = runs(survey.catalog(), job="verify", limit=20)
    except RtvaultError as error:
        return Check("journal", Status.UNKNOWN, None, None, f"cannot read the run journal: {error}")
    for run in recent:
        summary = run.record.get("summary")
        steps = summary.get("steps") if isinstance(summary, dict) else None
        step = next((s for s in steps or [] if isinstance(s, dict) and s.get("command") == COMMAND), None)
        if step is None:
            continue
        code, when = step.get("exit_code"), run.started
        if code == ExitCode.OK:
            return Check("journal", Status.OK, None, None, f"the journal's chain was intact at {when}")
        if code == ExitCode.CHECK_FAILED:
            first = _first_problem(step.get("summary"))
            return Check("journal", Status.CRITICAL, None, None,
                         f"the journal was tampered with or damaged (found at {when}): {first}; compare the stores' "
                         "copies and the catalog with `rtvault journal verify`")
        why = step.get("error") or "a store was not read"
        return Check("journal", Status.WARNING, None, None,
                     f"the journal's chain could not be checked at {when}: {why}")
    return Check("journal", Status.OK, None, None, "the journal's chain has not been checked yet (the daemon's verify "
                 "job checks it after the stores)")
