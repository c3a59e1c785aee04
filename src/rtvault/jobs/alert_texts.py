"""The words of the alerts, in French (the default) and English: what a check is about, how its value reads,
the first thing to do for each kind of check, and the subject and body of a message.

Names inside a check (a source, a store) come from the configuration: every control character in them is
shown escaped (`\\x1b`), never written raw into a header or a body, and a subject is one line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from rtvault.jobs.health_types import Check, Status
from rtvault.utc import iso

LANGUAGES = ("fr", "en")

STATUS_WORDS = {
    "fr": {Status.OK: "OK", Status.WARNING: "AVERTISSEMENT", Status.CRITICAL: "CRITIQUE", Status.UNKNOWN: "INCONNU"},
    "en": {Status.OK: "OK", Status.WARNING: "WARNING", Status.CRITICAL: "CRITICAL", Status.UNKNOWN: "UNKNOWN"},
}
RECOVERED = {"fr": "RÉTABLI", "en": "RECOVERED"}

# What a check is about, by kind ({s}: its subject, the source or store).
_NOUNS = {
    "fr": {"backup": "sauvegarde de {s}", "replication": "réplication vers {s}", "verify": "vérification de {s}",
           "space": "espace disque de {s}", "source": "source {s}", "daemon": "démon rtvault",
           "copies": "nombre de copies", "jobs": "tâches planifiées", "alerts": "envoi des alertes",
           "drill": "exercice de restauration", "failover": "bascule sur le stockage de secours",
           "journal": "journal des actions", "destruction": "destruction légale en attente",
           "dicom": "réception DICOM de {s}",
           "dicom_node": "nœud DICOM"},
    "en": {"backup": "backup of {s}", "replication": "replication to {s}", "verify": "verification of {s}",
           "space": "disk space of {s}", "source": "source {s}", "daemon": "rtvault daemon",
           "copies": "number of copies", "jobs": "scheduled jobs", "alerts": "alert delivery",
           "drill": "restore drill", "failover": "failover to the standby store", "journal": "journal of actions",
           "destruction": "legal destruction pending", "dicom": "DICOM objects from {s}",
           "dicom_node": "DICOM node"},
}

# How a problem's value reads after the noun, by kind and unit ({v}: the value, {t}: the threshold); any other
# pair reads ": {v} (threshold {t})", or ": {v}" without a threshold.
_DETAILS = {
    "fr": {("backup", "s"): " en retard (dernière il y a {v})", ("replication", "s"): " en retard de {v}",
           ("verify", "s"): " en retard (dernier cycle complet il y a {v})", ("daemon", "s"): " muet depuis {v}",
           ("failover", "s"): " depuis {v}", ("dicom", "s"): " : plus d'échanges depuis {v}",
           ("space", "%"): " : {v} libres", "": " : {v} (seuil {t})", "bare": " : {v}"},
    "en": {("backup", "s"): " overdue (last one {v} ago)", ("replication", "s"): " behind by {v}",
           ("verify", "s"): " overdue (last complete cycle {v} ago)", ("daemon", "s"): " silent for {v}",
           ("failover", "s"): " for {v}", ("dicom", "s"): ": nothing received for {v}",
           ("space", "%"): ": {v} free", "": ": {v} (threshold {t})", "bare": ": {v}"},
}

ADVICE = {
    "fr": {
        "backup": "Lancez `rtvault runs --job backup` pour lire l'erreur de la dernière sauvegarde, vérifiez que "
                  "la base Pinnacle est montée, puis lancez `rtvault backup`.",
        "replication": "Vérifiez que le stockage de copie est joignable (NAS monté, serveur S3 en marche), puis "
                       "lancez `rtvault replicate`.",
        "verify": "Lancez `rtvault verify` ; s'il trouve des fichiers manquants ou corrompus, lancez "
                  "`rtvault repair`.",
        "space": "Libérez de la place sur le disque de ce stockage ou agrandissez-le ; `rtvault forget` puis "
                 "`rtvault prune` appliquent les règles de conservation.",
        "source": "Vérifiez que la base Pinnacle est montée et complète sur ce serveur avant la prochaine "
                  "sauvegarde.",
        "daemon": "Vérifiez que `rtvault daemon` tourne (son service systemd) et lisez son journal ; "
                  "relancez-le au besoin.",
        "copies": "Lancez `rtvault status` pour voir ce qui a moins de deux copies vérifiées, puis "
                  "`rtvault replicate` et `rtvault verify`.",
        "jobs": "Lancez `rtvault runs` pour voir quelle tâche a échoué et pourquoi.",
        "drill": "Lancez `rtvault runs --job drill` pour lire le résultat du dernier exercice, corrigez la cause "
                 "(`rtvault verify --all` puis `rtvault repair` si des données sont abîmées), puis `rtvault drill`.",
        "failover": "Les sauvegardes vont sur la copie : remettez en service le stockage principal (ou remplacez-le "
                    "et lancez `rtvault init`), puis lancez `rtvault failback`.",
        "journal": "Lancez `rtvault journal verify` : il nomme le segment modifié, remplacé ou supprimé ; comparez "
                   "avec la copie des autres stockages et prévenez le responsable de la sécurité.",
        "alerts": "Vérifiez [alerts.mail] et [alerts.webhook] dans la configuration, puis lancez "
                  "`rtvault alert test`.",
        "destruction": "Branchez chaque disque nommé et lancez `rtvault volume verify ÉTIQUETTE` ; une fois chaque "
                       "stockage nommé de retour, lancez `rtvault archive delete --pending`.",
        "dicom": "Plus d'échanges avec cet émetteur depuis plusieurs heures : vérifiez qu'il fonctionne et envoie "
                 "toujours vers ce nœud (`rtvault dicom echo PAIR`, son AE title, son hôte et son port), et que "
                 "`rtvault dicom serve` tourne.",
        "dicom_node": "Le nœud DICOM n'écoute plus : les modalités et le TPS ne peuvent plus envoyer. Vérifiez que "
                 "`rtvault daemon` tourne et lisez son journal (lignes `dicom:`).",
        "": "Lancez `rtvault health` pour le détail.",
    },
    "en": {
        "backup": "Run `rtvault runs --job backup` to read the last backup's error, check that the Pinnacle "
                  "database is mounted, then run `rtvault backup`.",
        "replication": "Check that the copy store can be reached (NAS mounted, S3 server running), then run "
                       "`rtvault replicate`.",
        "verify": "Run `rtvault verify`; if it finds missing or corrupt files, run `rtvault repair`.",
        "space": "Free space on this store's disk or enlarge it; `rtvault forget` then `rtvault prune` apply "
                 "the retention rules.",
        "source": "Check that the Pinnacle database is mounted and whole on this server before the next backup.",
        "daemon": "Check that `rtvault daemon` runs (its systemd service) and read its log; restart it if need be.",
        "copies": "Run `rtvault status` to see what has fewer than two verified copies, then `rtvault replicate` "
                  "and `rtvault verify`.",
        "jobs": "Run `rtvault runs` to see which job failed and why.",
        "drill": "Run `rtvault runs --job drill` to read the last drill's result, correct the cause (`rtvault verify "
                 "--all` then `rtvault repair` when data is damaged), then run `rtvault drill`.",
        "failover": "Backups go to the copy: bring the primary store back (or replace it and run `rtvault init`), "
                    "then run `rtvault failback`.",
        "journal": "Run `rtvault journal verify`: it names the segment changed, replaced or removed; compare with "
                   "the other stores' copy and tell the security officer.",
        "alerts": "Check [alerts.mail] and [alerts.webhook] in the configuration, then run `rtvault alert test`.",
        "destruction": "Plug in each disk named and run `rtvault volume verify LABEL`; once each store named is "
                       "back, run `rtvault archive delete --pending`.",
        "dicom": "Nothing received from this sender for hours: check that it runs and still sends to this node "
                 "(`rtvault dicom echo PEER`, its AE title, host and port), and that `rtvault dicom serve` runs.",
        "dicom_node": "The DICOM node does not listen: modalities and the TPS cannot send. Check that `rtvault daemon` "
                 "runs and read its log (its `dicom:` lines).",
        "": "Run `rtvault health` for the details.",
    },
}

_WORDS = {
    "fr": {"header": "rtvault sur {host}, {time}", "problem": "Détail technique (en anglais)", "since": "Depuis",
           "value": "Valeur",
           "threshold": "seuil", "todo": "À faire d'abord", "reminder": "rappel", "others": "et {n} autres",
           "other": "et 1 autre", "unknown": "Cette vérification n'a pas pu être évaluée : c'est un problème en soi, "
                                        "rtvault ne surveille plus ce point.",
           "recovered": "De nouveau OK ; était {status} depuis {since}.",
           "not_ok": "Autres vérifications qui ne sont pas OK :", "all_ok": "Toutes les autres vérifications sont OK.",
           "footer": "Message envoyé par rtvault. `rtvault health` donne l'état complet.",
           "test_subject": "message d'essai de {host}",
           "test_text": "Ceci est un message d'essai envoyé par `rtvault alert test` depuis {host}, {time}.\n"
                        "Il arrive : les alertes de rtvault vous parviennent par ce canal. Rien d'autre à faire."},
    "en": {"header": "rtvault on {host}, {time}", "problem": "Problem", "since": "Since", "value": "Value",
           "threshold": "threshold", "todo": "First thing to do", "reminder": "reminder", "others": "and {n} more",
           "other": "and 1 more", "unknown": "This check could not be evaluated: that is a problem in itself, rtvault "
                                        "no longer watches this.",
           "recovered": "OK again; was {status} since {since}.",
           "not_ok": "Other checks that are not OK:", "all_ok": "Every other check is OK.",
           "footer": "Message sent by rtvault. `rtvault health` gives the whole picture.",
           "test_subject": "test message from {host}",
           "test_text": "This is a test message sent by `rtvault alert test` from {host}, {time}.\n"
                        "It arrived: rtvault's alerts reach you through this channel. Nothing else to do."},
}

# C0 controls (line ends included), DEL, C1 controls, line and paragraph separators, bidi controls, surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def clean(text: object) -> str:
    """`text` with every control character shown escaped (`\\x1b`, `\\u202e`): one line, nothing obeyed."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", str(text))


def local_time(moment: datetime) -> str:
    """A moment in the machine's local time, as a message shows it."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()


def amount(value: float, unit: str, language: str) -> str:
    """A value as a person reads it: a duration in s, min, h or days, a percentage, or a count."""
    if unit == "s":
        if value >= 2 * 86400:
            return f"{round(value / 86400)} {'j' if language == 'fr' else 'd'}"
        if value >= 2 * 3600:
            return f"{round(value / 3600)} h"
        return f"{round(value / 60)} min" if value >= 90 else f"{round(value)} s"
    number = f"{int(value)}" if value == int(value) else f"{value:.1f}"
    if language == "fr":
        number = number.replace(".", ",")
    return f"{number} %" if unit == "%" else number


def title(check: Check, language: str) -> str:
    """What a check is about and, when measured, how it reads: `sauvegarde de pinnacle en retard (dernière
    il y a 7 h)`."""
    noun = _NOUNS[language].get(check.kind, "{s}").format(s=clean(check.subject or check.name))
    if check.status in (Status.OK, Status.UNKNOWN) or check.value is None:
        return noun
    details = _DETAILS[language]
    detail = details.get((check.kind, check.unit), details["" if check.threshold is not None else "bare"])
    threshold = amount(check.threshold, check.unit, language) if check.threshold is not None else ""
    return noun + detail.format(v=amount(check.value, check.unit, language), t=threshold)


@dataclass(frozen=True)
class Change:
    """A check that is worth a message in this evaluation: `new` (it entered a problem), `worse` (another
    problem status), `repeat` (still so after repeat_hours) or `recovered` (OK again, it was `before` since
    `before_since`)."""

    check: Check
    since: datetime
    change: str
    before: Status | None = None
    before_since: datetime | None = None

    def to_json(self) -> dict[str, object]:
        return {**self.check.to_json(), "since": iso(self.since), "change": self.change}


def _rank(status: Status) -> int:
    return {Status.CRITICAL: 3, Status.UNKNOWN: 2, Status.WARNING: 1}.get(status, 0)


def _ordered(changes: Sequence[Change]) -> list[Change]:
    """Problems first, the worst first; recoveries last."""
    return sorted(changes, key=lambda c: (c.change == "recovered", -_rank(c.check.status)))


def _colon(language: str) -> str:
    return " : " if language == "fr" else ": "  # French puts a space before a colon


def worst(changes: Sequence[Change]) -> Status | None:
    """The status a message leads with: CRITICAL before UNKNOWN before WARNING; None when all recovered."""
    problems = [c.check.status for c in changes if c.change != "recovered"]
    return max(problems, key=_rank) if problems else None


def subject(changes: Sequence[Change], language: str) -> str:
    """`[rtvault] CRITIQUE : sauvegarde de pinnacle en retard (dernière il y a 7 h) et 2 autres`: the worst
    status, the check that has it, how many others."""
    words, lead = _WORDS[language], worst(changes)
    ordered = _ordered(changes)
    head = STATUS_WORDS[language][lead] if lead is not None else RECOVERED[language]
    if all(c.change == "repeat" for c in changes):
        head += f" ({words['reminder']})"
    rest = len(changes) - 1
    more = "" if not rest else " " + (words["other"] if rest == 1 else words["others"].format(n=rest))
    return clean(f"[rtvault] {head}{_colon(language)}{title(ordered[0].check, language)}{more}")


def _paragraph(change: Change, language: str) -> list[str]:
    words, check = _WORDS[language], change.check
    if change.change == "recovered":
        before = STATUS_WORDS[language][change.before] if change.before is not None else "?"
        since = local_time(change.before_since) if change.before_since else "?"
        return [f"{RECOVERED[language]}{_colon(language)}{title(check, language)}",
                "  " + words["recovered"].format(status=before, since=since), f"  {clean(check.message)}"]
    colon = _colon(language)
    lines = [f"{STATUS_WORDS[language][check.status]}{colon}{title(check, language)}",
             f"  {words['problem']}{colon}{clean(check.message)}",
             f"  {words['since']}{colon}{local_time(change.since)}"]
    if check.status is Status.UNKNOWN:
        lines.append(f"  {words['unknown']}")
    elif check.value is not None:
        limit = (f" ({words['threshold']} {amount(check.threshold, check.unit, language)})"
                 if check.threshold is not None else "")
        lines.append(f"  {words['value']}{colon}{amount(check.value, check.unit, language)}{limit}")
    advice = ADVICE[language]
    lines.append(f"  {words['todo']}{colon}{advice.get(check.kind, advice[''])}")
    return lines


def body(changes: Sequence[Change], checks: Sequence[Check], now: datetime, language: str, host: str) -> str:
    """The text of a message: a paragraph per check that changed (what is wrong, since when, the value, the
    first thing to do; or that it recovered), then the other checks not OK, then where it comes from."""
    words = _WORDS[language]
    lines = [words["header"].format(host=clean(host), time=local_time(now)), ""]
    for change in _ordered(changes):
        lines += [*_paragraph(change, language), ""]
    told = {c.check.name for c in changes}
    others = [c for c in checks if c.status is not Status.OK and c.name not in told]
    if others:
        lines.append(words["not_ok"])
        lines += [f"  {STATUS_WORDS[language][c.status]}{_colon(language)}{title(c, language)} — {clean(c.message)}"
                  for c in others]
    else:
        lines.append(words["all_ok"])
    return "\n".join([*lines, "", words["footer"], ""])


def trial_texts(now: datetime, language: str, host: str) -> tuple[str, str]:
    """The subject and body of `rtvault alert test`'s message."""
    words = _WORDS[language]
    text = words["test_text"].format(host=clean(host), time=local_time(now))
    return clean(f"[rtvault] TEST{_colon(language)}{words['test_subject'].format(host=host)}"), text + "\n"
