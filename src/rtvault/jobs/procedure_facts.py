"""What the printed procedures say about a site (`rtvault procedure`, jobs/procedure.py): its configuration, and
what was measured, read from the catalog (the last restore drill in the run journal, the removable disks). The
catalog is read, never required: a procedure is printed most when something is broken, so a catalog that cannot
be opened costs only the figures, and the page says so."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from rtvault.catalog import runs as catalog_runs
from rtvault.catalog import volumes as catalog_volumes
from rtvault.config import Config
from rtvault.configured import open_catalog_for
from rtvault.errors import RtvaultError


@dataclass(frozen=True)
class StoreFact:
    name: str
    where: str  # its directory or its S3 URL
    copy_of: str
    encrypted: bool


@dataclass(frozen=True)
class DrillFact:
    store: str
    kind: str
    seconds: float
    full_estimate_s: float | None
    within_rto: bool | None
    result: str
    error: str


@dataclass(frozen=True)
class VolumeFact:
    label: str
    path: str
    last_seen: str
    last_verified: str
    archives: int


@dataclass(frozen=True)
class Facts:
    """Everything the procedure prints about this site; None or empty where it is unknown."""

    site: str
    contacts: tuple[tuple[str, str], ...]
    config_file: str
    source_root: str | None
    stores: tuple[StoreFact, ...]
    restore_dir: str | None
    web_url: str
    rpo: str
    rto_patient_minutes: int
    rto_full_minutes: int
    drill_every_days: int
    backup_schedule: tuple[str, ...]
    drill_started: str | None = None
    drill_result: str | None = None
    drills: tuple[DrillFact, ...] = ()
    volumes: tuple[VolumeFact, ...] = ()
    catalog_problem: str = ""
    generated: str = ""

    @property
    def primary(self) -> str | None:
        return next((s.name for s in self.stores if not s.copy_of), None)

    @property
    def copies(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stores if s.copy_of)

    def missing(self) -> list[str]:
        """The settings the paper prints as fields to complete by hand."""
        wanted = [("[site] name", self.site), ("[site] contacts", self.contacts),
                  ("[source.pinnacle] root", self.source_root), ("[web] restore_dir", self.restore_dir)]
        return [name for name, value in wanted if not value]


def _web_url(config: Config) -> str:
    web = config.web
    return (web.public_url or f"http://{web.host}:{web.port}").rstrip("/")


def _contacts(config: Config) -> tuple[tuple[str, str], ...]:
    return tuple((role.strip(), who.strip()) for role, who in (c.split(":", 1) for c in config.site.contacts))


def _drill_facts(record: dict[str, object]) -> tuple[DrillFact, ...]:
    summary = record.get("summary")
    drills = summary.get("drills") if isinstance(summary, dict) else None
    if not isinstance(drills, list):
        return ()
    number = (int, float)
    return tuple(DrillFact(str(d.get("store", "")), str(d.get("kind", "")),
                           float(d["seconds"]) if isinstance(d.get("seconds"), number) else 0.0,
                           float(d["full_estimate_s"]) if isinstance(d.get("full_estimate_s"), number) else None,
                           d.get("within_rto") if isinstance(d.get("within_rto"), bool) else None,
                           str(d.get("result", "")), str(d.get("error") or ""))
                 for d in drills if isinstance(d, dict))


def _measured(config: Config) -> dict[str, object]:
    """The last drill and the removable disks, from the catalog; what stopped it, if it could not be read."""
    try:
        with open_catalog_for(config) as catalog:
            last = catalog_runs.runs(catalog, job="drill", limit=1)
            volumes = catalog_volumes.all_volumes(catalog)
    except RtvaultError as error:
        return {"catalog_problem": str(error)}
    found: dict[str, object] = {
        "volumes": tuple(VolumeFact(v.label, v.path, v.last_seen or "", v.last_verified or "", v.archives)
                         for v in volumes)}
    if last:
        found.update(drill_started=last[0].started, drill_result=last[0].result, drills=_drill_facts(last[0].record))
    return found


def gather(config: Config, now: datetime | None = None) -> Facts:
    """This site's facts: its configuration, and its last drill and disks as the catalog knows them."""
    stores = tuple(StoreFact(name, str(s.path) if s.path is not None else s.url, s.copy_of, s.encrypt)
                   for name, s in config.stores.items())
    root = config.source.pinnacle.root
    return Facts(
        site=config.site.name, contacts=_contacts(config), config_file=str(config.file.absolute()),
        source_root=str(root) if root is not None else None, stores=stores,
        restore_dir=str(config.web.restore_dir) if config.web.restore_dir is not None else None,
        web_url=_web_url(config), rpo=config.health.backup_max_age,
        rto_patient_minutes=config.continuity.rto_patient_minutes, rto_full_minutes=config.continuity.rto_full_minutes,
        drill_every_days=config.continuity.drill_every_days, backup_schedule=config.schedule.backup,
        generated=(now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"), **_measured(config))  # type: ignore[arg-type]
