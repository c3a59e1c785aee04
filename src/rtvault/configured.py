"""The stores and the catalog the configuration names, opened or created: which store a command works on,
the backend each kind of store needs, and the catalog database."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from rtvault.catalog import Catalog, open_catalog
from rtvault.catalog import stores as stores_of_catalog
from rtvault.catalog.db import SQLITE
from rtvault.config import Config
from rtvault.config.settings import Store as StoreSettings
from rtvault.config.settings import credentials_problem
from rtvault.errors import CatalogUnavailable, ConfigError, InputError, RtvaultError, StoreError
from rtvault.store import Store, crypto, keyfile
from rtvault.store.backend import Backend, DirectoryBackend, ReadOnlyBackend
from rtvault.store.roles import ROLE_KEY, STATE_FILE, Failover, read_failover

if TYPE_CHECKING:
    from rtvault.store.s3 import S3Backend

_KEY_NAMES = {"aws_access_key_id": "access_key", "aws_secret_access_key": "secret_key"}


def store_name(config: Config, name: str | None) -> str:
    """The named store, else the active one: the first one configured (the primary), or the copy it is failed
    over to (`rtvault failover`)."""
    if not config.stores:
        raise ConfigError(str(config.file), ["no store configured: add a [stores.<name>] table with a path"])
    if name is None:
        return acting(config, next(iter(config.stores)))
    if name not in config.stores:
        known = ", ".join(config.stores)
        raise ConfigError(str(config.file), [f"no store named {name!r} (configured: {known})"])
    return name


def failed_over(config: Config) -> Failover | None:
    """This host's failover record ([daemon] state_dir/failover.json), or None when the roles are the normal ones."""
    path = config.daemon.state_dir / STATE_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ConfigError(str(config.file), [f"daemon.state_dir: cannot read the failover record {path} "
                                             f"({error.strerror or error}): give the service user read access"]
                          ) from None
    try:
        record = Failover.decode(raw)
    except ValueError as error:
        raise ConfigError(str(config.file), [f"daemon.state_dir: the failover record {path} is damaged ({error}): "
                                             "run `rtvault failover --to NAME` again, or delete it if the primary "
                                             "store is the one backups write to"]) from None
    if record.primary not in config.stores or record.active not in config.stores:
        raise ConfigError(str(config.file), [f"daemon.state_dir: the failover record {path} names stores "
                                             f"{record.primary!r} and {record.active!r}, not both configured: "
                                             "restore their [stores] tables or delete the record"])
    return record


def acting(config: Config, name: str) -> str:
    """The store that does a store's work: its copy while it is failed over, else itself."""
    record = failed_over(config)
    return record.active if record is not None and record.primary == name else name


def where(settings: StoreSettings) -> str:
    """The store's directory or URL, as messages show it (never a secret)."""
    return str(settings.path) if settings.path is not None else settings.url


def read_credentials(config: Config, name: str, path: Path) -> dict[str, str]:
    """The two keys from a credentials file: `key = value` lines, as in the AWS credentials file (the first
    of each wins) or `KEY=value` lines; refused unless only its owner can read it."""
    problem = credentials_problem(path)
    if problem is None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            problem = f"cannot read {path}: {error}"
    if problem is not None:
        raise ConfigError(str(config.file), [f"stores.{name}.credentials_file: {problem}"])
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, equals, value = line.partition("=")
        field = _KEY_NAMES.get(key.strip().lower())
        if equals and field and field not in found:
            found[field] = value.strip().strip("\"'")
    if len(found) < len(_KEY_NAMES):
        raise ConfigError(str(config.file), [f"stores.{name}.credentials_file: {path} lacks an "
                                             "aws_access_key_id or an aws_secret_access_key line"])
    return found


def backend_of(config: Config, name: str) -> Backend:
    """The backend of a configured store: its directory or its S3 bucket, decrypted when it is encrypted."""
    return _decrypted(config, name, sealed_backend_of(config, name), create=False)


def damaged_key_files(config: Config, name: str, *, mend: bool = False) -> dict[str, str]:
    """An encrypted store's key files that are missing or do not open (empty for a plain store); with `mend`,
    each rewritten from a good copy (then the ones mended, with why they were damaged)."""
    settings = config.stores[name]
    if not settings.encrypt:
        return {}
    inner, passphrase = sealed_backend_of(config, name), keyfile.read_passphrase(settings.passphrase_file)
    damaged = keyfile.damaged_key_files(inner, passphrase)
    if mend and damaged:
        keyfile.mend_key_files(inner, passphrase)
    return damaged


def sealed_backend_of(config: Config, name: str) -> Backend:
    """A configured store's directory or S3 bucket as stored: ciphertext for an encrypted store (no key used)."""
    settings = config.stores[name]
    backend = DirectoryBackend(settings.path) if settings.path is not None else _s3_backend(config, name)
    return _guarded(config, name, backend)


def _guarded(config: Config, name: str, backend: Backend) -> Backend:
    """A store this host only reads (`read_only = true`) refuses every write before anything is sent."""
    return ReadOnlyBackend(backend, name) if config.stores[name].read_only else backend


def _decrypted(config: Config, name: str, inner: Backend, *, create: bool) -> Backend:
    """`inner` itself for a plain store, else `inner` through the store's master key (docs/encryption.md);
    `create` makes the key of a new encrypted store. Encryption is chosen when a store is created."""
    settings, encrypted = config.stores[name], keyfile.is_encrypted(inner)
    if encrypted != settings.encrypt and not (create and settings.encrypt and not _holds_data(inner)):
        if create and settings.encrypt:
            raise StoreError(f"{inner.location} already holds an unencrypted store: encryption is chosen when a "
                             "store is created (initialise an empty store with encrypt = true, replicate into it)")
        change = "set encrypt = true and passphrase_file" if encrypted else "remove encrypt = true"
        raise ConfigError(str(config.file), [f"stores.{name}: {where(settings)} is "
                                             f"{'an encrypted' if encrypted else 'not an encrypted'} store: {change}"])
    if not settings.encrypt:
        return inner
    assert settings.passphrase_file is not None  # the settings require it with encrypt
    if problem := keyfile.passphrase_problem(settings.passphrase_file):
        raise ConfigError(str(config.file), [f"stores.{name}.passphrase_file: {problem}"])
    return crypto.unlock(inner, keyfile.read_passphrase(settings.passphrase_file), create=create)


def _holds_data(inner: Backend) -> bool:
    folders = ("data/", "trees/", "packs/", "snapshots/", "archives/")
    return any(next(iter(inner.list(folder)), None) for folder in folders)


def _s3_backend(config: Config, name: str) -> S3Backend:
    from rtvault.store.s3 import S3Backend, S3Location  # boto3 takes 0.1 s to import: only for S3 stores

    # Keys from the credentials file, else boto3's usual lookup (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
    settings = config.stores[name]
    keys = read_credentials(config, name, settings.credentials_file) if settings.credentials_file else {}
    return S3Backend(S3Location.of_url(name, settings.url, endpoint=settings.endpoint, region=settings.region,
                                       retry_seconds=float(settings.retry_seconds),
                                       lock_days=settings.object_lock_days,
                                       lock_mode=settings.object_lock_mode.upper(), **keys))


def open_store(config: Config, name: str | None, *, write: bool = False) -> Store:
    """The named store (else the active one), on whatever backend it lives; `write`: refused when it is a primary
    failed over (its data is stale until `rtvault failback` brings it up to date)."""
    name = store_name(config, name)
    record = failed_over(config) if write else None
    if record is not None and record.primary == name:
        raise StoreError(f"store {name} is failed over to store {record.active} since {record.since}: it is not "
                         f"written to until `rtvault failback`; leave out --store (store {record.active} takes the "
                         "writes) or run `rtvault failback` once it is back")
    settings = config.stores[name]
    if write and settings.read_only:
        raise StoreError(f"store {name} ({where(settings)}) is read-only on this host (read_only = true): nothing is "
                         "written to it from here; run the command on the host that owns it, or name another store")
    # the format file is never encrypted: the store is recognised (or its NAS found unmounted) first
    store = Store.open(settings.path) if settings.path is not None else Store.open_backend(_s3_backend(config, name))
    store = Store.of(_decrypted(config, name, _guarded(config, name, store.base), create=False), store.info)
    if write:
        _refuse_failed_primary(store, name)
    return store


def _refuse_failed_primary(store: Store, name: str) -> None:
    """A store marked failed over by another host (`roles/failover.json` naming it the primary) takes no writes."""
    try:
        record = read_failover(store.backend)
    except ValueError as error:
        raise StoreError(f"store {name}: its {ROLE_KEY} is damaged ({error}): if the store is failed over, run "
                         "`rtvault failback`; else delete that file") from None
    if record is not None and record.primary == name:
        raise StoreError(f"store {name} was failed over to store {record.active} by host {record.host} since "
                         f"{record.since}: it is not written to until `rtvault failback`; run `rtvault failover "
                         f"--to {record.active}` on this host so that its backups go there too")


def init_store(config: Config, name: str) -> tuple[Store, bool]:
    """Create one configured store (or open it when it exists already); True when created."""
    settings = config.stores[name]
    if settings.read_only:  # created and written by the host that owns it: only checked from here
        return open_store(config, name), False
    if settings.path is not None:
        store, created = Store.init(settings.path)
    else:
        backend = _s3_backend(config, name)
        backend.ensure_bucket()
        store, created = Store.init_backend(backend, empty=backend.is_empty())
    return Store.of(_decrypted(config, name, store.base, create=True), store.info), created


def change_passphrase(config: Config, name: str | None, new_file: Path) -> dict[str, object]:
    """Re-wrap an encrypted store's master key under the passphrase in `new_file` (the configured passphrase
    file holds the current one); no data file changes."""
    name = store_name(config, name)
    settings = config.stores[name]
    if not settings.encrypt or settings.passphrase_file is None:
        raise ConfigError(str(config.file), [f"stores.{name}: not an encrypted store (encrypt is not set)"])
    if problem := keyfile.passphrase_problem(new_file):
        raise InputError(f"new passphrase file: {problem}")
    current, new = keyfile.read_passphrase(settings.passphrase_file), keyfile.read_passphrase(new_file)
    inner = open_store(config, name).base.inner  # type: ignore[attr-defined]  # opening checks the current one
    keyfile.change_passphrase(inner, current, new)
    return {"store": name, "path": where(settings), "key_files": list(keyfile.KEY_FILES)}


def init_stores(config: Config) -> list[dict[str, object]]:
    """Create every configured store (idempotent); returns what was done for each."""
    store_name(config, None)
    done = []
    for name, settings in config.stores.items():
        store, created = init_store(config, name)
        done.append({"store": name, "path": where(settings), "created": created, "id": store.info["id"]})
    with contextlib.suppress(RtvaultError), open_catalog_for(config):
        pass  # the catalog made with the stores (a lost one is never made anew by a record: jobs/journal.py)
    return done


_S3_IDS: dict[tuple[str, str], str] = {}  # (url, endpoint) → id: asked of an S3 server once per process


def store_ids(config: Config, names: Iterable[str] | None = None) -> dict[str, str]:
    """name → id (its rtvault-store.json's) of the configured stores (or of `names`) that can be read; the
    catalog knows stores by id (catalog/stores.py). An unreachable store is left out."""
    found = {}
    for name in config.stores if names is None else names:
        settings = config.stores[name]
        key = (where(settings), settings.endpoint)
        if key not in _S3_IDS:
            try:
                info = Store.open_backend(sealed_backend_of(config, name)).info
            except (StoreError, ConfigError):
                continue
            if not isinstance(info.get("id"), str):
                continue
            if settings.path is None:
                _S3_IDS[key] = info["id"]
            found[name] = info["id"]
        else:
            found[name] = _S3_IDS[key]
    return found


def store_labels(config: Config, catalog: Catalog) -> dict[str, str]:
    """id → how a person is shown each store of the catalog: this site's by their configured names, another
    site's by its name and site (catalog/stores.py `labels`)."""
    return stores_of_catalog.labels(catalog, {sid: name for name, sid in store_ids(config).items()},
                                    names=list(config.stores), site=config.site.name)


def open_catalog_for(config: Config, *, create: bool = True) -> Catalog:
    """The configured catalog, its schema brought up to date. Without `create`, a SQLite catalog whose file is
    gone is refused (CatalogUnavailable) rather than made anew and empty: a reader that would take an empty
    index for the truth (`rtvault reconcile`) must not answer from it. Rows a catalog written before store
    ids names by this configuration's store names are renamed to those stores' ids (catalog/stores.py)."""
    url = config.catalog.url
    if not create and url.startswith(SQLITE) and not Path(url.removeprefix(SQLITE)).exists():
        raise CatalogUnavailable(f"the catalog {url.removeprefix(SQLITE)} does not exist (lost, or never made): run "
                                 "`rtvault catalog rebuild`, which reads it back from the stores")
    catalog = open_catalog(url)
    legacy = [name for name in stores_of_catalog.legacy_names(catalog) if name in config.stores]
    if legacy:
        stores_of_catalog.adopt(catalog, store_ids(config, legacy), config.site.name)
    return catalog


def destruction_elsewhere(config: Config, name: str) -> str | None:
    """Why a legal destruction cannot be completed on store `name` by this host, as one sentence (None when it
    can). The rule (docs/design.md, "Pull replication"): a protected copy is destroyed by the host that owns it,
    with its own daemon and credentials. `archive delete` on every copy lists such a store as pending with this
    sentence, and the destruction certificate waits for it: a store read-only here is destroyed by running
    `rtvault archive delete` on its own host; on an S3 store with Object Lock, the delete hides the files at once
    but the server keeps their versions until the retention ends."""
    settings = config.stores[name]
    if settings.read_only:
        return (f"store {name} is read-only on this host (read_only = true): its own host destroys the archive there "
                "(`rtvault archive delete` on that host, with its own credentials)")
    if settings.object_lock_days:
        return (f"store {name} keeps every version {settings.object_lock_days} days after it was written (S3 Object "
                f"Lock, {settings.object_lock_mode}): the delete hides the files at once, and the server removes "
                "their versions once that retention ends (set a lifecycle rule expiring noncurrent versions on the "
                "bucket)")
    return None
