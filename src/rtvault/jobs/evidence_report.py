"""The monthly report's pages (`rtvault report`), in French or English, from the month's `Evidence`
(jobs/evidence.py), printed by jobs/printed.py: a summary with what to look at, the runs per job, per day and
each one not ok, the restore drills against the targets, each store's verification, the alerts and their
resolution, and a box for the quality manager's visa."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rtvault.config import Config
from rtvault.jobs import evidence, printed
from rtvault.jobs.alert_texts import STATUS_WORDS, clean, title
from rtvault.jobs.evidence import Evidence
from rtvault.jobs.health_types import Check, Status
from rtvault.jobs.printed import Cell, Section
from rtvault.report import Line, Report

MONTHS = {"fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
                 "novembre", "décembre"),
          "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                 "November", "December")}

TEXTS = {
    "fr": {
        "title": "Rapport mensuel de sauvegarde et de continuité : {month_name}",
        "period": "Période : du {start} au {end} ({zone}){progress}.",
        "in_progress": ", mois en cours",
        "printed": "Établi le {generated} à partir du journal des tâches de rtvault (configuration {config}). "
                   "Pour l'établir de nouveau :",
        "keep": "À classer dans le dossier qualité du service. Les tâches lancées à la main hors du démon ne sont "
                "pas au journal.",
        "page": "Page",
        "todo": "À compléter",
        "summary": "Synthèse",
        "runs_total": "Tâches exécutées : {total} (réussies {ok}, partielles {partial}, en échec {failed}, "
                      "stockage indisponible {unavailable}).",
        "drills_total": "Exercices de restauration : {total}, dont {failed} en échec et {over} au-delà de "
                        "l'objectif. Objectifs : un patient en {rto_patient} min, toute la base en {rto_full} min ; "
                        "perte de données maximale admise (RPO) : {rpo}.",
        "coverage_total": "Vérification : {covered} stockage(s) sur {stores} relus ce mois ; {cycles} cycle(s) "
                          "complet(s).",
        "alerts_total": "Alertes : {total}, dont {resolved} résolues et {open} non résolues à la fin de la période.",
        "look": "À examiner :",
        "nothing": "Rien à signaler.",
        "jobs": "Tâches par type",
        "jobs_head": "Tâche|Exécutions|Réussies|Partielles|Échec|Indisponible|Durée médiane|Plus longue",
        "failures": "Tâches qui n'ont pas réussi",
        "failures_head": "Début|Tâche|Déclenchement|Résultat|Erreur",
        "no_failures": "Toutes les tâches ont réussi.",
        "days": "Tâches par jour",
        "days_head": "Jour|Exécutions|Pas réussies",
        "drills": "Exercices de restauration",
        "drills_head": "Date|Stockage|Restauration|Patient ou archive|Durée|Débit|Base complète estimée|"
                       "Dans l'objectif|Résultat",
        "no_drills": "Aucun exercice de restauration ce mois : `rtvault drill` (planifié chaque semaine par défaut).",
        "coverage": "Vérification des stockages",
        "coverage_intro": "Chaque stockage est relu et chaque fichier recalculé en entier au fil d'un cycle ; "
                          "« cycle couvert » est la part du cycle en cours relue après la dernière vérification "
                          "du mois.",
        "coverage_head": "Stockage|Vérifications|Fichiers relus|Données relues|Cycles complets|Cycle couvert|"
                         "Problèmes connus|Illisible",
        "alerts": "Alertes et leur résolution",
        "alerts_intro": "Chaque vérification de santé sortie de l'état OK, du premier signalement au retour à OK.",
        "alerts_head": "Vérification|Pire état|Depuis|Résolue le|Durée|Détail technique (en anglais)|Prévenus par",
        "no_alerts": "Aucune alerte ce mois.",
        "unresolved": "non résolue",
        "none": "aucun canal",
        "visa": "Visa",
        "visa_head": "Nom|Fonction|Date|Signature",
        "kind_patient": "un patient",
        "kind_archive": "un patient archivé",
        "kind_full": "base complète",
        "yes": "oui",
        "no": "NON",
        "results": {"ok": "réussie", "partial": "partielle", "failed": "ÉCHEC", "unavailable": "indisponible"},
        "decimal": ",",
    },
    "en": {
        "title": "Monthly backup and continuity report: {month_name}",
        "period": "Period: from {start} to {end} ({zone}){progress}.",
        "in_progress": ", month in progress",
        "printed": "Made on {generated} from rtvault's run journal (configuration {config}). To make it again:",
        "keep": "For the department's quality file. Jobs run by hand outside the daemon are not in the journal.",
        "page": "Page",
        "todo": "To be completed",
        "summary": "Summary",
        "runs_total": "Jobs run: {total} (ok {ok}, partial {partial}, failed {failed}, store unavailable "
                      "{unavailable}).",
        "drills_total": "Restore drills: {total}, {failed} failed and {over} over the target. Targets: one patient "
                        "in {rto_patient} min, the whole database in {rto_full} min; recovery point objective "
                        "(RPO): {rpo}.",
        "coverage_total": "Verification: {covered} of {stores} store(s) read this month; {cycles} complete "
                          "cycle(s).",
        "alerts_total": "Alerts: {total}, {resolved} resolved and {open} not resolved at the end of the period.",
        "look": "To look at:",
        "nothing": "Nothing to report.",
        "jobs": "Jobs by kind",
        "jobs_head": "Job|Runs|Ok|Partial|Failed|Unavailable|Median time|Longest",
        "failures": "Jobs that did not succeed",
        "failures_head": "Start|Job|Trigger|Result|Error",
        "no_failures": "Every job succeeded.",
        "days": "Jobs per day",
        "days_head": "Day|Runs|Not ok",
        "drills": "Restore drills",
        "drills_head": "Date|Store|Restore|Patient or archive|Time|Throughput|Whole database estimated|"
                       "Within target|Result",
        "no_drills": "No restore drill this month: `rtvault drill` (scheduled weekly by default).",
        "coverage": "Verification of the stores",
        "coverage_intro": "Each store is read back and every file hashed again over a cycle; \"cycle covered\" is "
                          "the share of the current cycle read after the month's last verify.",
        "coverage_head": "Store|Verify runs|Files read|Data read|Complete cycles|Cycle covered|Known problems|"
                         "Unreadable",
        "alerts": "Alerts and their resolution",
        "alerts_intro": "Each health check that left the OK state, from its first report to its return to OK.",
        "alerts_head": "Check|Worst status|From|Resolved|Duration|Detail|Told by",
        "no_alerts": "No alert this month.",
        "unresolved": "not resolved",
        "none": "no channel",
        "visa": "Sign-off",
        "visa_head": "Name|Role|Date|Signature",
        "kind_patient": "one patient",
        "kind_archive": "one archived patient",
        "kind_full": "whole database",
        "yes": "yes",
        "no": "NO",
        "results": {"ok": "ok", "partial": "partial", "failed": "FAILED", "unavailable": "unavailable"},
        "decimal": ".",
    },
}
CHANNELS = {"mail": "e-mail", "webhook": "webhook"}


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def _size(count: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000  # type: ignore[assignment]
    raise AssertionError


class _Words:
    def __init__(self, lang: str) -> None:
        self.texts, self.lang = TEXTS[lang], lang

    def __call__(self, key: str, **values: object) -> str:
        return str(self.texts[key]).format(**values)

    def result(self, result: str) -> str:
        return self.texts["results"].get(result, result)  # type: ignore[attr-defined]

    def number(self, value: float, digits: int = 1) -> str:
        return f"{value:.{digits}f}".replace(".", str(self.texts["decimal"]))

    def head(self, key: str) -> list[str]:
        return self(key).split("|")

    def duration(self, seconds: float | None) -> str:
        """`12,3 s`, `41 min`, `2 h 30 min`, `2 j 23 h` (`2 d 23 h` in English)."""
        if seconds is None:
            return "-"
        if seconds < 60:
            return f"{self.number(seconds)} s"
        minutes = round(seconds / 60)
        if minutes < 60:
            return f"{minutes} min"
        if minutes < 24 * 60:
            return f"{minutes // 60} h {minutes % 60:02d} min" if minutes % 60 else f"{minutes // 60} h"
        day = "j" if self.lang == "fr" else "d"
        return f"{minutes // 1440} {day} {minutes % 1440 // 60} h"

    def note(self, note: evidence.Note) -> str:
        return note.text(self.lang)


def _summary(w: _Words, e: Evidence) -> Section:
    counts = e.counts()
    failed = sum(1 for d in e.drills if d.result != "ok")
    over = sum(1 for d in e.drills if d.within_rto is False)
    resolved = sum(1 for a in e.episodes if a.resolved is not None)
    section = Section(w("summary"), [
        Cell(w("runs_total", total=len(e.runs), **counts)),
        Cell(w("drills_total", total=len(e.drills), failed=failed, over=over, rto_patient=e.rto_patient_minutes,
               rto_full=e.rto_full_minutes, rpo=e.rpo)),
        Cell(w("coverage_total", covered=sum(c.covered for c in e.coverage), stores=len(e.coverage),
               cycles=sum(c.cycles_completed for c in e.coverage))),
        Cell(w("alerts_total", total=len(e.episodes), resolved=resolved, open=len(e.episodes) - resolved))])
    look = [*(f"{_when(evidence._time(r.started))} {r.job}: {w.result(r.result)}" for r in e.not_ok),
            *(w.note(note) for note in e.notes)]
    section.paragraphs.append(Cell(w("look") if look else w("nothing")))
    section.paragraphs += [Cell(clean(item)[:300], mark=True) for item in look[:20]]
    if len(look) > 20:
        section.paragraphs.append(Cell(f"… (+{len(look) - 20})", mark=True))
    return section


def _jobs(w: _Words, e: Evidence) -> list[Section]:
    jobs = Section(w("jobs"), head=w.head("jobs_head"), rows=[
        [Cell(clean(j.job)), Cell(str(j.runs)), *(Cell(str(j.results[r]), mark=r != "ok" and j.results[r] > 0)
                                                   for r in evidence.RESULTS),
         Cell(w.duration(j.median_s)), Cell(w.duration(j.longest_s))] for j in e.jobs])
    failures = Section(w("failures"))
    if e.not_ok:
        failures.head = w.head("failures_head")
        failures.rows = [[Cell(_when(evidence._time(r.started))), Cell(clean(r.job)), Cell(clean(r.trigger)),
                          Cell(w.result(r.result), mark=True), Cell(clean(r.error)[:400])] for r in e.not_ok]
    else:
        failures.paragraphs.append(Cell(w("no_failures")))
    days = Section(w("days"), head=w.head("days_head"),
                   rows=[[Cell(d.day.isoformat()), Cell(str(d.runs), mark=d.runs == 0),
                          Cell(str(d.not_ok), mark=d.not_ok > 0)] for d in e.days])
    return [jobs, failures, days]


def _drills(w: _Words, e: Evidence) -> Section:
    section = Section(w("drills"))
    if not e.drills:
        section.paragraphs.append(Cell(w("no_drills"), mark=True))
        return section
    section.head = w.head("drills_head")
    for d in e.drills:
        within = "-" if d.within_rto is None else w("yes") if d.within_rto else w("no")
        rate = f"{w.number(d.mb_per_s, 2)} MB/s" if d.mb_per_s else "-"
        outcome = w.result(d.result) + (f": {clean(d.error)[:200]}" if d.error else "")
        section.rows.append([Cell(_when(d.started)), Cell(clean(d.store)),
                             Cell(str(w.texts.get(f"kind_{d.kind}", d.kind))), Cell(clean(d.key)),
                             Cell(w.duration(d.seconds)), Cell(rate), Cell(w.duration(d.full_estimate_s)),
                             Cell(within, mark=d.within_rto is False), Cell(outcome, mark=d.result != "ok")])
    return section


def _coverage(w: _Words, e: Evidence) -> Section:
    rows = []
    for c in e.coverage:
        covered = "-" if c.coverage_percent is None else f"{w.number(c.coverage_percent)} %"
        unreadable = f"{c.errors}" + (f": {clean(c.last_error)[:200]}" if c.last_error else "")
        rows.append([Cell(clean(c.store)), Cell(str(c.runs), mark=not c.covered), Cell(str(c.files)),
                     Cell(_size(c.bytes)), Cell(str(c.cycles_completed)), Cell(covered),
                     Cell(str(c.problems), mark=c.problems > 0), Cell(unreadable, mark=c.errors > 0)])
    return Section(w("coverage"), [Cell(w("coverage_intro"))], head=w.head("coverage_head"), rows=rows)


def _alerts(w: _Words, e: Evidence) -> Section:
    section = Section(w("alerts"), [Cell(w("alerts_intro"))])
    if not e.episodes:
        section.paragraphs.append(Cell(w("no_alerts")))
        return section
    section.head = w.head("alerts_head")
    for a in e.episodes:
        name = title(Check(a.check, Status.OK, None, None, ""), w.lang)
        resolved = _when(a.resolved) if a.resolved else w("unresolved")
        lasted = w.duration(((a.resolved or e.end) - a.started).total_seconds())
        told = ", ".join(CHANNELS.get(c, c) for c in a.notified) or w("none")
        section.rows.append([Cell(name), Cell(STATUS_WORDS[w.lang][Status[a.status]]), Cell(_when(a.started)),
                             Cell(resolved, mark=a.resolved is None), Cell(lasted), Cell(clean(a.message)[:300]),
                             Cell(told)])
    return section


def document(e: Evidence, lang: str, config_file: str) -> str:
    w = _Words(lang)
    month_name = f"{MONTHS[lang][e.start.month - 1]} {e.start.year}"
    end = e.end if not e.in_progress else e.generated
    visa = Section(w("visa"), head=w.head("visa_head"), rows=[[Cell("", todo=True)] * 4])
    return printed.render(
        lang=lang, title=w("title", month_name=month_name), site=e.site, todo=w("todo"), page=w("page"),
        audience=w("period", start=_when(e.start), end=_when(end), zone=e.zone,
                   progress=w("in_progress") if e.in_progress else ""),
        printed=w("printed", generated=_when(e.generated), config=config_file),
        reprint=" ".join(["rtvault", "--config", config_file, "report", "--month", e.month, "--lang", lang, "--out",
                          f"rapport-{e.month}.pdf" if lang == "fr" else f"report-{e.month}.pdf"]),
        keep=w("keep"),
        sections=[_summary(w, e), *_jobs(w, e), _drills(w, e), _coverage(w, e), _alerts(w, e), visa])


@dataclass(frozen=True)
class MonthReport(Report):
    out: Path
    evidence: Evidence

    def to_json(self) -> dict[str, object]:
        return {"out": str(self.out), **self.evidence.to_json()}

    def lines(self) -> Iterable[Line]:
        e = self.evidence
        counts = e.counts()
        yield Line(f"wrote the report of {e.month} to {self.out}: {len(e.runs)} runs ({counts['ok']} ok), "
                   f"{len(e.drills)} drills, {len(e.episodes)} alerts")
        for note in e.notes:
            yield Line(f"note: {note.english()}", err=True)


LANGUAGES = tuple(TEXTS)


def report(config: Config, month: str, out: Path, lang: str = "fr", now: datetime | None = None) -> MonthReport:
    """Write the month's report to `out` (.pdf or .html, from the extension)."""
    printed.check_out(out)
    found = evidence.gather(config, month, now)
    printed.write(out, document(found, lang, str(config.file.absolute())))
    return MonthReport(out, found)
