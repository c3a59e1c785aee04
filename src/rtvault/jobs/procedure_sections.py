"""The printed procedures' sections, built from a site's `Facts` in one language, and the HTML they make
(jobs/printed.py, autoescaped: a value from the configuration is text, never markup).

Every role's paper opens with the site, its targets and last drill, and whom to call; then each role's daily and
weekly checks; then the emergencies it handles: a physicist restores a patient and can rebuild the server, an
operator and an administrator also fail over and keep the removable disks."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from rtvault.jobs import printed
from rtvault.jobs.printed import Cell, Section, Step
from rtvault.jobs.procedure_facts import DrillFact, Facts
from rtvault.jobs.procedure_texts import TEXTS

PLACEHOLDER = re.compile(r"<[A-Z-]+>")
EMERGENCIES = {"physicist": ("restore", "rebuild"), "operator": ("restore", "rebuild", "failover", "disks"),
               "admin": ("restore", "rebuild", "failover", "disks")}


class Words:
    """The texts of one language, with this site's values put in (a missing one: the "to be completed" words)."""

    def __init__(self, facts: Facts, lang: str) -> None:
        self.texts, self.facts = TEXTS[lang], facts
        todo = self.texts["todo"]
        primary = facts.primary or todo
        self.values = {"config": facts.config_file, "root": facts.source_root or todo,
                       "restore_dir": facts.restore_dir or todo, "url": facts.web_url, "primary": primary,
                       "copy": facts.copies[0] if facts.copies else todo, "rpo": facts.rpo,
                       "days": facts.drill_every_days, "schedule": ", ".join(facts.backup_schedule),
                       "generated": facts.generated}

    def __call__(self, key: str, **values: object) -> str:
        return self.texts[key].format(**{**self.values, **values})

    def cmd(self, *args: str) -> str:
        """An rtvault command line as typed on this site (its configuration file named)."""
        return _join(["rtvault", "--config", self.facts.config_file, *args])


def _join(args: list[str]) -> str:
    """A command line, each argument quoted for the shell where it needs it; a placeholder to replace (<MRN>)
    stays as it is printed unless the rest of its argument needs quoting."""
    return " ".join(arg if shlex.quote(PLACEHOLDER.sub("x", arg)) == PLACEHOLDER.sub("x", arg) else shlex.quote(arg)
                    for arg in args)


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"


def _site(w: Words, facts: Facts) -> Section:
    paragraphs = [Cell(w("site_config")), Cell(w("site_root"), not facts.source_root),
                  Cell(w("site_restore_dir"), not facts.restore_dir), Cell(w("site_web")), Cell(w("site_backups"))]
    if not facts.stores:
        paragraphs.append(Cell(w("no_stores"), True))
    rows = [[Cell(s.name), Cell(s.where), Cell(w("store_copy", of=s.copy_of) if s.copy_of else w("store_primary")),
             Cell(w("yes") if s.encrypted else w("no"))] for s in facts.stores]
    return Section(w("site_title"), paragraphs, head=w("stores_head").split("|"), rows=rows)


def _drill_row(w: Words, d: DrillFact) -> list[Cell]:
    within = "-" if d.within_rto is None else w("yes") if d.within_rto else w("no")
    result = d.result + (f": {d.error}" if d.error else "")
    return [Cell(d.store), Cell(w(f"kind_{d.kind}") if f"kind_{d.kind}" in w.texts else d.kind),
            Cell(_minutes(d.seconds)), Cell(_minutes(d.full_estimate_s)), Cell(within, d.within_rto is False),
            Cell(result, d.result != "ok")]


def _targets(w: Words, facts: Facts) -> Section:
    section = Section(w("targets_title"), [Cell(w("rpo")), Cell(w("rto_patient", minutes=facts.rto_patient_minutes)),
                                            Cell(w("rto_full", minutes=facts.rto_full_minutes))])
    if facts.catalog_problem:
        section.paragraphs.append(Cell(w("catalog_down", problem=facts.catalog_problem), True))
    elif facts.drill_started is None:
        section.paragraphs.append(Cell(w("no_drill"), True))
        section.lists.append(("", [Step("", w.cmd("drill"))]))
    else:
        section.paragraphs.append(Cell(w("drill_last", started=facts.drill_started, result=facts.drill_result)))
        section.head, section.rows = w("drills_head").split("|"), [_drill_row(w, d) for d in facts.drills]
    return section


def _contacts(w: Words, facts: Facts) -> Section:
    section = Section(w("contacts_title"), head=w("contacts_head").split("|"))
    if facts.contacts:
        section.rows = [[Cell(role), Cell(who)] for role, who in facts.contacts]
    else:
        section.rows = [[Cell(role), Cell(w("todo"), True)] for role in w("contacts_todo").split("|")]
    return section


def _checks(w: Words, role: str) -> Section:
    rto = w.facts.rto_patient_minutes
    lists = {
        "physicist": [(w("daily"), [Step(w("phys_d1")), Step(w("phys_d2"))]),
                      (w("weekly"), [Step(w("phys_w1", minutes=rto)), Step(w("phys_w2")),
                                     Step(w("phys_w3"), w.cmd("reconcile"))])],
        "operator": [(w("daily"), [Step(w("op_d1"), w.cmd("health")), Step(w("op_d2"), w.cmd("runs", "--since", "24h")),
                                   Step(w("op_d3"))]),
                     (w("weekly"), [Step(w("op_w1"), w.cmd("runs", "--job", "drill", "--limit", "1")),
                                    Step(w("op_w2"), w.cmd("volume", "list"))])],
        "admin": [(w("daily"), [Step(w("adm_d1"), w.cmd("health"))]),
                  (w("weekly"), [Step(w("adm_w1"), w.cmd("audit", "--action", "restore", "--since", w("a_date"))),
                                 Step(w("adm_w2"), w.cmd("drill")), Step(w("adm_w3"), w.cmd("journal", "verify"))]),
                  (w("after_change"), [Step(w("adm_c1"), w.cmd("config", "check")),
                                       Step(w("adm_c2"), w.cmd("procedure", "--out", "procedures.pdf"))])],
    }[role]
    return Section(w("checks_title", role=w(f"role_{role}")), lists=lists)


def _restore(w: Words, facts: Facts) -> Section:
    target = str(Path(facts.restore_dir or w("todo")) / "<MRN>")
    web = [Step(w("web_1")), Step(w("web_2")), Step(w("web_3")), Step(w("web_4")), Step(w("import"))]
    cli = [Step(w("cli_1"), w.cmd("search", "--last-name", w("a_name"))),
           Step(w("cli_2"), w.cmd("restore", "--patient", "<MRN>", "--to", target)),
           Step(w("cli_3"), w.cmd("restore", "--patient", "<MRN>", "--to", target, "--at", "2026-11-23 18:00"))]
    if facts.copies:
        cli.append(Step(w("cli_4"), w.cmd("restore", "--patient", "<MRN>", "--to", target, "--store", facts.copies[0])))
    cli += [Step(w("cli_5"), w.cmd("restore", "--patient", "<MRN>", "--to", target, "--from-archive")),
            Step(w("import"))]
    return Section(w("restore_title"), [Cell(w("restore_goal", minutes=facts.rto_patient_minutes))],
                   lists=[(w("restore_web"), web), (w("restore_cli"), cli)])


def _rebuild(w: Words, facts: Facts) -> Section:
    estimates = [d.full_estimate_s for d in facts.drills if d.full_estimate_s is not None and d.result == "ok"]
    estimate = _minutes(max(estimates)) if estimates else w("todo")
    root, primary = w.values["root"], w.values["primary"]
    steps = [Step(w("reb_1")), Step(w("reb_2"), w.cmd("snapshots", "--store", primary)),
             Step(w("reb_catalog"), w.cmd("catalog", "rebuild")),
             Step(w("reb_3"), w.cmd("restore", "--all", "--store", primary, "--to", root))]
    steps += [Step(w("reb_4", copy=copy), w.cmd("restore", "--all", "--store", copy, "--to", root))
              for copy in facts.copies]
    steps += [Step(w("reb_5")), Step(w("reb_6"), _join(["rtvault", "inspect", root])), Step(w("reb_7")),
              Step(w("reb_8"), w.cmd("backup") + "\nsystemctl start rtvault-daemon")]
    return Section(w("rebuild_title"), [Cell(w("rebuild_intro", minutes=facts.rto_full_minutes, estimate=estimate),
                                             not estimates)], lists=[("", steps)])


def _failover(w: Words, facts: Facts) -> Section:
    section = Section(w("failover_title"), [Cell(w("failover_intro"))])
    if not facts.copies:
        section.paragraphs.append(Cell(w("no_copy"), True))
        return section
    where = next((s.where for s in facts.stores if s.name == facts.primary), w("todo"))
    copy = facts.copies[0]
    section.lists.append(("", [
        Step(w("fo_1"), w.cmd("health")), Step(w("fo_2"), w.cmd("failover", "--to", copy)),
        Step(w("fo_3"), w.cmd("backup") + "\n" + w.cmd("health")), Step(w("fo_4")), Step(w("fo_5", where=where)),
        Step(w("fo_6"), w.cmd("failback")), Step(w("fo_7"), w.cmd("health"))]))
    return section


def _disks(w: Words, facts: Facts) -> Section:
    section = Section(w("disks_title"), [Cell(w("disks_intro"))])
    if facts.volumes:
        section.head = w("disks_head").split("|")
        section.rows = [[Cell(v.label), Cell(v.path), Cell(v.last_seen or "-"), Cell(v.last_verified or "-"),
                         Cell(str(v.archives)), Cell("")] for v in facts.volumes]
    elif not facts.catalog_problem:
        section.paragraphs.append(Cell(w("no_disks")))
    label = facts.volumes[0].label if facts.volumes else "<LABEL>"
    section.lists.append(("", [Step(w("disks_cmd"), w.cmd("volume", "list")),
                               Step(w("disks_verify"), w.cmd("volume", "verify", label))]))
    return section


BUILDERS = {"restore": _restore, "rebuild": _rebuild, "failover": _failover, "disks": _disks}


def sections(facts: Facts, lang: str, roles: tuple[str, ...]) -> list[Section]:
    w = Words(facts, lang)
    emergencies = [name for name in BUILDERS if any(name in EMERGENCIES[role] for role in roles)]
    return [_site(w, facts), _targets(w, facts), _contacts(w, facts), *(_checks(w, role) for role in roles),
            *(BUILDERS[name](w, facts) for name in emergencies)]


def document(facts: Facts, lang: str, roles: tuple[str, ...]) -> str:
    """The whole procedure as HTML, ready to print (A4, the site and page numbers on every page)."""
    w = Words(facts, lang)
    return printed.render(
        lang=lang, title=w("title"), site=facts.site, todo=w("todo"), page=w("page"),
        audience=w("for", roles=", ".join(w(f"role_{role}") for role in roles)), printed=w("printed"),
        reprint=w.cmd("procedure", "--lang", lang, "--out", "procedures.pdf"), keep=w("keep"),
        sections=sections(facts, lang, roles))
