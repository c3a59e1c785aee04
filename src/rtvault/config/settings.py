"""Every setting rtvault reads, declared once: typed access for the code, and `SCHEMA` for everything else.

To add a setting, add a field here with its default and `about()` it (doc, example, check); validation,
the example config (`rtvault config example`) and docs/configuration.md (`rtvault config reference`) follow.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rtvault.config.schedule import SCHEDULE
from rtvault.config.schedule import problems as schedule_problems
from rtvault.config.schema import NOT_A_SETTING, OPTIONAL_PATH, STRING, Kind, about, positive, schema_of
from rtvault.config.unattended import OPTIONAL_DURATION, Alerts, Continuity, Daemon, Health
from rtvault.config.web import Web

DEFAULT_EXCLUDE = (".auto.plan*", "*.ErrorLog", "*.Transcript", "*~")
_SQLITE = "sqlite:///"
_URL_SCHEMES = (_SQLITE, "postgresql://")


def _non_negative(value: int) -> str | None:
    return f"must be 0 or more, got {value}" if value < 0 else None


def _lock_mode(value: str) -> str | None:
    return None if value in ("compliance", "governance") else f"must be compliance or governance, got {value!r}"


def _database_url(value: str) -> str | None:
    if not value.startswith(_URL_SCHEMES):
        return f"must start with {' or '.join(_URL_SCHEMES)}, got {value!r}"
    if value == _SQLITE:
        return f"names no database file (write {_SQLITE}path/to/catalog.sqlite)"
    return None


def _resolve_sqlite(url: str, base_dir: Path) -> str:
    # Like every relative path in the file, a relative SQLite file is relative to the config file.
    if not url.startswith(_SQLITE) or url.startswith(_SQLITE + "/"):
        return url
    return _SQLITE + str(base_dir / url.removeprefix(_SQLITE))


DATABASE_URL = Kind("a string", "database URL", STRING.accepts, convert=_resolve_sqlite)


def _count(doc: str) -> dict[str, Any]:
    return about(doc, check=_non_negative)


@dataclass(frozen=True, kw_only=True)
class PinnacleSource:
    """The live Pinnacle patient database that backups read (never written to)."""

    root: Path | None = field(
        default=None,
        metadata=about(
            "Root of the Pinnacle patient database, the directory holding Institution_<I>/ (read only).",
            example="/PrimaryPatientData/NewPatients",
        ),
    )
    exclude: tuple[str, ...] = field(
        default=DEFAULT_EXCLUDE,
        metadata=about("Glob patterns of transient files never backed up (autosaves, logs, editor backups)."),
    )


@dataclass(frozen=True, kw_only=True)
class Source:
    """What rtvault backs up (the one source `pinnacle`, as before `[sources.<name>]`)."""

    pinnacle: PinnacleSource = field(default_factory=PinnacleSource)


PATIENTS_KIND = "pinnacle-patients"
PHYSICS_KIND = "pinnacle-physics"
SOURCE_KINDS = (PATIENTS_KIND, PHYSICS_KIND)
LEGACY_SOURCE = "pinnacle"  # the name of the source [source.pinnacle] configures


def _source_kind(value: str) -> str | None:
    return None if value in SOURCE_KINDS else f"must be one of {', '.join(SOURCE_KINDS)}, got {value!r}"


@dataclass(frozen=True, kw_only=True)
class NamedSource:
    """One source, named in its table header: a Pinnacle patient database or a Pinnacle physics tree, with its
    own snapshots, shrink check and health."""

    EXAMPLE_COMMENTED: ClassVar[bool] = True  # the example site's one source is [source.pinnacle]

    kind: str = field(default=PATIENTS_KIND, metadata=about(
        f"What the tree holds: {PATIENTS_KIND} (the patient database, the directory holding Institution_<I>/) or "
        f"{PHYSICS_KIND} (a PinnacleSiteData tree: Physics/ReadOnlyMachineDB, machine and commissioning data, "
        "scripts, solid models, site settings).", example=PHYSICS_KIND, check=_source_kind))
    root: Path | None = field(default=None, metadata=about(
        "Root of the tree (read only); required.", example="/PinnacleSiteData"))
    site: str = field(default="", metadata=about(
        "The site this source belongs to: a label recorded in each snapshot of this source.",
        example="Site A"))
    exclude: tuple[str, ...] = field(default=DEFAULT_EXCLUDE, metadata=about(
        "Glob patterns of transient files never backed up (autosaves, logs, editor backups)."))

    @staticmethod
    def problems(values: dict[str, Any]) -> list[str]:
        return ["root is required: the directory this source backs up"] if values["root"] is None else []


def _s3_url(value: str) -> str | None:
    parts = urllib.parse.urlsplit(value)
    if value and (parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment):
        return f"must look like s3://bucket/prefix, got {value!r}"
    return None


def _http_url(value: str) -> str | None:
    if value and not value.startswith(("http://", "https://")):
        return f"must start with http:// or https://, got {value!r}"
    return None


def credentials_problem(path: Path) -> str | None:
    """Why a credentials file must not be used: missing, or readable by others than its owner."""
    try:
        mode = path.stat().st_mode
    except OSError as error:
        return f"cannot read {path}: {error.strerror}"
    if mode & 0o077:
        return f"{path} is readable by group or others: run chmod 600 {path}"
    return None


@dataclass(frozen=True, kw_only=True)
class Store:
    """One store: a directory on a local disk or a mounted NAS, or an S3 bucket (set `path` or `url`)."""

    path: Path | None = field(
        default=None,
        metadata=about("Directory of the store, on a local disk or a mounted NAS share (or set url).",
                       example="/mnt/nas1/rtvault"),
    )
    url: str = field(
        default="",
        metadata=about("S3 store instead of a directory: s3://bucket/prefix.", example="", check=_s3_url),
    )
    endpoint: str = field(
        default="",
        metadata=about("S3 server to talk to (SeaweedFS, MinIO, a cloud provider); empty: AWS.",
                       example="", check=_http_url),
    )
    region: str = field(default="", metadata=about("S3 region; empty: us-east-1.", example=""))
    credentials_file: Path | None = field(
        default=None,
        metadata=about(
            "S3 keys: a file readable by its owner only, with aws_access_key_id and aws_secret_access_key "
            "lines (the AWS credentials format); unset: the AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "variables.",
            example="",
            kind=OPTIONAL_PATH,
        ),
    )
    retry_seconds: int = field(
        default=30,
        metadata=about("S3: keep retrying an unreachable or failing server this long (exponential backoff) "
                       "before giving up.", check=positive),
    )
    copy_of: str = field(
        default="",
        metadata=about(
            "Name of the store this one is a copy of: `rtvault replicate` copies what it lacks from there "
            "(pairs run in the order of this file); empty for the primary. Another configured store; a copy of a "
            "copy is allowed, a circle of copies is not.",
            example="",
        ),
    )
    encrypt: bool = field(
        default=False,
        metadata=about("Encrypt every file before it leaves this machine (AES-256-GCM; for offsite stores). "
                       "Chosen when the store is created; docs/encryption.md says what to keep in the safe."),
    )
    passphrase_file: Path | None = field(
        default=None,
        metadata=about(
            "With encrypt: the file holding the passphrase that unlocks the store's key, readable by its owner "
            "only. Without the passphrase nothing in the store can be read: keep it printed in the safe.",
            example="",
            kind=OPTIONAL_PATH,
        ),
    )
    offsite: bool = field(
        default=False,
        metadata=about("This store is kept outside the building (another site, a cloud bucket): `rtvault reconcile` "
                       "calls a patient safe to delete from Pinnacle only once its archive is on an offsite store or "
                       "a removable disk, verified."),
    )
    read_only: bool = field(
        default=False,
        metadata=about("This host only reads this store, never writes to it: on the host that keeps a protected "
                       "copy, the primary, which that host pulls from (`rtvault replicate --pull`) with read-only "
                       "access (a read-only mount, S3 keys that can only read). Nothing is written to it from here: "
                       "no backup, verification state, retention or repair; its own host does that."),
    )
    object_lock_days: int = field(
        default=0,
        metadata=about("S3: keep every file written to this store for this many days where the server enforces it "
                       "(S3 Object Lock: no one, the backup host included, can delete or overwrite a version before "
                       "then; a DELETE only adds a delete marker). The bucket must be created with Object Lock "
                       "(`rtvault init` does so for a new bucket). 0: no retention.", check=_non_negative),
    )
    object_lock_mode: str = field(
        default="compliance",
        metadata=about("S3 Object Lock mode with object_lock_days: compliance (no one can shorten it, not even the "
                       "bucket's owner) or governance (a user granted s3:BypassGovernanceRetention can).",
                       check=_lock_mode),
    )

    @staticmethod
    def problems(values: dict[str, Any]) -> list[str]:
        """What is wrong with the keys together (each key alone is already valid)."""
        if (values["path"] is None) == (not values["url"]):
            return ["set exactly one of path (a directory) or url (s3://bucket/prefix)"]
        s3_only = [key for key in ("endpoint", "region", "credentials_file", "object_lock_days")
                   if values[key] and not values["url"]]
        if s3_only:
            return [f"{', '.join(s3_only)} only apply to an S3 store (url)"]
        if values["credentials_file"] is not None and (problem := credentials_problem(values["credentials_file"])):
            return [f"credentials_file: {problem}"]
        if values["read_only"] and values["copy_of"]:
            return ["read_only and copy_of do not go together: this host cannot write a copy into a store it only "
                    "reads (on the host that keeps the copy, set read_only = true on the primary's table instead)"]
        if values["read_only"] and values["object_lock_days"]:
            return ["object_lock_days applies to files this host writes: set it on the host that writes the store, "
                    "not where it is read_only"]
        if values["encrypt"] != (values["passphrase_file"] is not None):
            return ["encrypt = true and passphrase_file go together (the passphrase unlocks the store's key)"]
        if values["passphrase_file"] is not None and (problem := credentials_problem(values["passphrase_file"])):
            return [f"passphrase_file: {problem}"]
        return []


@dataclass(frozen=True, kw_only=True)
class Catalog:
    """The catalog: the searchable index of patients, snapshots, archives and copies."""

    url: str = field(
        default="sqlite:///rtvault-catalog.sqlite",
        metadata=about(
            "Catalog database: sqlite:///FILE (relative to this file) or postgresql://USER@HOST/DB.",
            check=_database_url,
            kind=DATABASE_URL,
        ),
    )

    @property
    def shown_url(self) -> str:
        """The URL with any password replaced by ***, for printing."""
        parts = urllib.parse.urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True, kw_only=True)
class Retention:
    """How many backup snapshots are kept, per period; a snapshot kept by any rule is kept."""

    keep_last: int = field(default=3, metadata=_count("Always keep this many most recent snapshots."))
    keep_hourly: int = field(default=24, metadata=_count("Keep the last snapshot of this many most recent hours."))
    keep_daily: int = field(default=14, metadata=_count("Keep the last snapshot of this many most recent days."))
    keep_weekly: int = field(default=8, metadata=_count("Keep the last snapshot of this many most recent weeks."))
    keep_monthly: int = field(default=24, metadata=_count("Keep the last snapshot of this many most recent months."))
    keep_yearly: int = field(default=20, metadata=_count("Keep the last snapshot of this many most recent years."))


def _fraction(value: float) -> str | None:
    return None if 0 <= value <= 1 else f"must be a fraction between 0 and 1, got {value}"


@dataclass(frozen=True, kw_only=True)
class Backup:
    """How backups run and when they refuse to run."""

    max_shrink: float = field(
        default=0.2,
        metadata=about(
            "Refuse a backup when the patient count dropped by more than this fraction since the last snapshot "
            "(0.2 = 20 %); `rtvault backup --allow-shrink` overrides it once.",
            check=_fraction,
        ),
    )
    lock_lease_seconds: int = field(
        default=900,
        metadata=about(
            "A writer's lock on a store expires after this many seconds unless renewed; a lock left by a "
            "crashed run is taken over once expired (or at once when its process is gone).",
            check=positive,
        ),
    )


@dataclass(frozen=True, kw_only=True)
class Verify:
    """Rolling verification: every object of every store re-read and re-hashed once per cycle."""

    cycle_days: int = field(
        default=30,
        metadata=about("Each `rtvault verify` run re-reads its share so that every object is covered within "
                       "this many days (run it daily).", check=positive),
    )
    repair: bool = field(
        default=False,
        metadata=about("After a verify that found missing or corrupt objects, repair them at once from another "
                       "store holding a verified good copy."),
    )


@dataclass(frozen=True, kw_only=True)
class PairSchedule:
    """The replication of one copy on a schedule of its own (an offsite copy at night, the NAS after each backup)."""

    EXAMPLE_COMMENTED: ClassVar[bool] = True  # the example site has no copy store

    replicate: tuple[str, ...] = field(metadata=about("When this copy is replicated (instead of [schedule] "
                                                      "replicate).", example=["daily 22:00"], kind=SCHEDULE))


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """When each job runs: five-field cron, 'hourly', 'daily HH:MM', 'after <job>', or an array (`rtvault schedule`)."""

    backup: tuple[str, ...] = field(
        default=("0 7-19 * * 1-5", "0 */4 * * *"),
        metadata=about("Backups of the source: every hour during working hours, every 4 hours otherwise.",
                       kind=SCHEDULE),
    )
    sweep: tuple[str, ...] = field(
        default=("after backup",),
        metadata=about("`archive sweep`: deleted patients archived, the inbox ingested.", kind=SCHEDULE),
    )
    replicate: tuple[str, ...] = field(
        default=("after backup",),
        metadata=about("Replication of every store that is a `copy_of` another.", kind=SCHEDULE),
    )
    verify: tuple[str, ...] = field(
        default=("daily 02:30",),
        metadata=about("Rolling verification (its share of [verify] cycle_days).", kind=SCHEDULE),
    )
    retention: tuple[str, ...] = field(
        default=("daily 03:30",),
        metadata=about("`forget` then `prune`, by the [retention] rules.", kind=SCHEDULE),
    )
    catalog: tuple[str, ...] = field(
        default=("daily 04:00",),
        metadata=about("`catalog sync`: the search index brought in step with every store.", kind=SCHEDULE),
    )
    catalog_backup: tuple[str, ...] = field(
        default=("daily 04:30",),
        metadata=about("`catalog backup`: users, roles, tokens and removable disks written to every store that is "
                       "encrypted or owner-only.", kind=SCHEDULE),
    )
    drill: tuple[str, ...] = field(
        default=("30 5 * * 1",),
        metadata=about("`rtvault drill`: a patient and an archive restored from each store, timed and checked "
                       "(Mondays 05:30).", kind=SCHEDULE),
    )
    pairs: dict[str, PairSchedule] = field(
        default_factory=dict,
        metadata=about("A copy replicated on a schedule of its own: [schedule.pairs.<copy store name>].",
                       example="offsite"),
    )

    @staticmethod
    def problems(values: dict[str, Any]) -> list[str]:
        return schedule_problems(values)


@dataclass(frozen=True, kw_only=True)
class Archive:
    """Archives of finished and deleted patients, and old archives to import."""

    inbox: Path | None = field(
        default=None,
        metadata=about(
            "Directory where Pinnacle or an operator drops archive files (.tar, .tar.gz); `rtvault archive "
            "sweep` ingests them and moves each into <inbox>/ingested/ once stored and verified.",
            example="/PrimaryPatientData/rtvault-inbox",
        ),
    )


def _uid_root(value: str) -> str | None:
    """A DICOM UID root: dot-separated numbers, no leading zero, short enough to leave room for what follows."""
    parts = value.split(".")
    if not value or len(value) > 32 or any(not p.isdigit() or (len(p) > 1 and p[0] == "0") for p in parts):
        return f"must be a DICOM UID root (numbers separated by dots, no leading zero, at most 32 characters), " \
               f"got {value!r}"
    return None


def _ae_title(value: str) -> str | None:
    """A DICOM Application Entity title: 1 to 16 printable ASCII characters, not only spaces, no backslash."""
    if not 0 < len(value.strip()) <= 16 or not all(" " <= c <= "~" and c != "\\" for c in value):
        return f"must be an AE title (1 to 16 printable ASCII characters, no backslash), got {value!r}"
    return None


def _port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else f"must be a TCP port (1 to 65535, or 0 for none), got {value}"


@dataclass(frozen=True, kw_only=True)
class DicomPeer:
    """A DICOM node rtvault talks to: it may send to rtvault (its AE title is then accepted), rtvault sends to it
    (C-MOVE destination, `rtvault dicom send|echo|find|move|check`)."""

    EXAMPLE_COMMENTED: ClassVar[bool] = True

    ae_title: str = field(metadata=about("The peer's AE title.", example="ORTHANC", check=_ae_title))
    host: str = field(default="", metadata=about("Its host name or address (empty: it only sends to rtvault).",
                                                 example="pacs.hospital.local"))
    port: int = field(default=0, metadata=about("Its DICOM port (0: it only sends to rtvault).", example=4242,
                                                check=_port))
    silent_after: str = field(default="", metadata=about(
        "Health warns when this sender has sent nothing for this long (empty: it is not watched).", example="4h",
        kind=OPTIONAL_DURATION))
    tls: bool = field(default=False, metadata=about("Associations to this peer use TLS ([dicom] tls_ca_file "
                                                    "checks its certificate).", example=False))


@dataclass(frozen=True, kw_only=True)
class Dicom:
    """DICOM: the UIDs of exported objects, and the DICOM node (`rtvault dicom serve`) storing what peers send."""

    uid_root: str = field(default="2.25", metadata=about(
        "The root of the UIDs of exported DICOM objects. The default, 2.25, is the UUID-derived root that needs no "
        "registration; a centre with its own registered root (e.g. 1.2.250.1.xxx) may give it.",
        example="1.2.250.1.999.42", check=_uid_root))
    ae_title: str = field(default="RTVAULT", metadata=about("The AE title of rtvault's DICOM node.",
                                                            example="RTVAULT", check=_ae_title))
    host: str = field(default="127.0.0.1", metadata=about(
        "The address `rtvault dicom serve` listens on (0.0.0.0: every interface).", example="0.0.0.0"))
    port: int = field(default=0, metadata=about(
        "The port of rtvault's DICOM node; 0 (the default) means no node: the daemon starts `rtvault dicom serve` "
        "only when a port is set.", example=11112, check=_port))
    accept_unknown: bool = field(default=False, metadata=about(
        "Accept associations from AE titles no [dicom.peers.NAME] names (refused by default).", example=False))
    store: str = field(default="", metadata=about(
        "The store received objects are written to (empty: the primary store); replication copies them on.",
        example="primary"))
    batch_ms: int = field(default=50, metadata=about(
        "Received objects are made durable together, at most this many milliseconds after the first of a batch "
        "arrived (each peer's success answer waits for it).", example=50, check=positive))
    network_timeout: int = field(default=60, metadata=about(
        "Seconds the DICOM node waits for a peer: each PDU must arrive whole within it (a peer that stalls or sends "
        "a byte at a time has its association ended, its partial object discarded), and a DIMSE message or an "
        "association's negotiation as long. Raise it for very slow links.", example=60, check=positive))
    tls_cert_file: Path | None = field(default=None, metadata=about(
        "TLS: the node's certificate (PEM); with tls_key_file, associations are accepted over TLS only.",
        example="/etc/rtvault/dicom.crt", kind=OPTIONAL_PATH))
    tls_key_file: Path | None = field(default=None, metadata=about(
        "TLS: the node's private key (PEM).", example="/etc/rtvault/dicom.key", kind=OPTIONAL_PATH))
    tls_ca_file: Path | None = field(default=None, metadata=about(
        "TLS: the certificates of the authorities that sign the peers' certificates (PEM); given, a peer must "
        "present one.", example="/etc/rtvault/dicom-ca.crt", kind=OPTIONAL_PATH))
    peers: dict[str, DicomPeer] = field(default_factory=dict, metadata=about(
        "DICOM peers, each named in its table header: [dicom.peers.<name>].", example="orthanc"))


@dataclass(frozen=True, kw_only=True)
class Reconcile:
    """`rtvault reconcile`: which patients in Pinnacle were never backed up, and which are safe to delete from it."""

    idle_months: int = field(
        default=12,
        metadata=about(
            "A patient unchanged in Pinnacle for this many months may be listed as safe to delete (once archived "
            "and on two verified copies, one offsite or on a removable disk). 12 spans the first year of "
            "follow-up, when a recurrence or a re-treatment most often needs the plan again.",
            check=positive,
        ),
    )


def _contact(value: tuple[str, ...]) -> str | None:
    bad = [item for item in value if ":" not in item or not item.split(":", 1)[1].strip()]
    return f'each contact must read "Role: Name, phone", got {bad[0]!r}' if bad else None


@dataclass(frozen=True, kw_only=True)
class Site:
    """The centre, as the printed procedures (`rtvault procedure`) name it and whom they say to call."""

    name: str = field(default="", metadata=about("Name of the centre, printed on every page of the procedures.",
                                                 example="CHU Exemple, radiothérapie"))
    contacts: tuple[str, ...] = field(default=(), metadata=about(
        'Whom to call, each "Role: Name, phone"; missing: the procedures print fields to complete by hand.',
        example=["Physicien: Dr Anne Martin, 01 23 45 67 89", "Informatique: astreinte, 01 23 45 67 00"],
        check=_contact))


@dataclass(frozen=True, kw_only=True)
class Config:
    """The rtvault configuration file."""

    file: Path = field(metadata=NOT_A_SETTING)
    source: Source = field(default_factory=Source)
    sources: dict[str, NamedSource] = field(
        default_factory=dict,
        metadata=about("Sources, each named in its table header: [sources.<name>] ([source.pinnacle] is the source "
                       "named pinnacle, of kind pinnacle-patients).", example="physics"),
    )
    stores: dict[str, Store] = field(
        default_factory=dict,
        metadata=about("Stores, each named in its table header: [stores.<name>].", example="primary"),
    )
    backup: Backup = field(default_factory=Backup)
    archive: Archive = field(default_factory=Archive)
    catalog: Catalog = field(default_factory=Catalog)
    retention: Retention = field(default_factory=Retention)
    verify: Verify = field(default_factory=Verify)
    schedule: Schedule = field(default_factory=Schedule)
    daemon: Daemon = field(default_factory=Daemon)
    health: Health = field(default_factory=Health)
    alerts: Alerts = field(default_factory=Alerts)
    continuity: Continuity = field(default_factory=Continuity)
    reconcile: Reconcile = field(default_factory=Reconcile)
    dicom: Dicom = field(default_factory=Dicom)
    site: Site = field(default_factory=Site)
    web: Web = field(default_factory=Web)

    def all_sources(self) -> dict[str, NamedSource]:
        """Every configured source by name: [source.pinnacle] (when its root is set) as `pinnacle`, then
        [sources.<name>]. Validation refuses a name given both ways."""
        legacy = self.source.pinnacle
        found = {} if legacy.root is None else {
            LEGACY_SOURCE: NamedSource(root=legacy.root, exclude=legacy.exclude)}
        return {**found, **self.sources}

    def to_json(self) -> dict[str, object]:
        """The settings as JSON-ready data keyed as in the file: paths as strings, no password."""
        data = dataclasses.asdict(self)
        del data["file"]
        data["catalog"]["url"] = self.catalog.shown_url
        return {key: _jsonable(value) for key, value in data.items()}


def _jsonable(value: object) -> object:
    if isinstance(value, dict):  # TOML has no null: an unset optional setting is left out
        return {key: _jsonable(item) for key, item in value.items() if item is not None}
    if isinstance(value, tuple | list):
        return [_jsonable(item) for item in value]
    return str(value) if isinstance(value, Path) else value


SCHEMA = schema_of(Config)
