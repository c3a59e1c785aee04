"""The configuration: valid files and the typed values they give, and the texts generated from the schema (the
example, the reference page). Which file is read and invalid files: test_config_files.py."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from kit.config import write
from rtvault.config import (
    REFERENCE_COMMAND,
    SCHEMA,
    Config,
    example_toml,
    load,
    reference_markdown,
    validate,
)
from rtvault.config.schema import tables

pytestmark = pytest.mark.usefixtures("no_config_env")

DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"

FULL = """\
[source.pinnacle]
root = "/PrimaryPatientData/NewPatients"
exclude = ["*.ErrorLog"]

[stores.nas1]
path = "/mnt/nas1/rtvault"

[stores.nas2]
path = "/mnt/nas2/rtvault"

[catalog]
url = "postgresql://rtvault@db.example/rtvault"

[retention]
keep_last = 1
keep_hourly = 2
keep_daily = 3
keep_weekly = 4
keep_monthly = 5
keep_yearly = 6
"""


def schema_keys(example_names: bool = False) -> list[str]:
    return [f"{name}.{f.name}" for name, section in tables(SCHEMA, example_names=example_names) for f in section.fields]


# --- valid files ---------------------------------------------------------------------------------------


def test_full_config_gives_typed_values(tmp_path: Path) -> None:
    cfg = load(write(tmp_path / "rtvault.toml", FULL))
    assert cfg.file == tmp_path / "rtvault.toml"
    assert cfg.source.pinnacle.root == Path("/PrimaryPatientData/NewPatients")
    assert cfg.source.pinnacle.exclude == ("*.ErrorLog",)
    assert list(cfg.stores) == ["nas1", "nas2"]
    assert cfg.stores["nas1"].path == Path("/mnt/nas1/rtvault")
    assert cfg.catalog.url == "postgresql://rtvault@db.example/rtvault"
    assert [cfg.retention.keep_last, cfg.retention.keep_daily, cfg.retention.keep_yearly] == [1, 3, 6]


def test_to_json_round_trips_to_the_same_config(tmp_path: Path) -> None:
    cfg = load(write(tmp_path / "rtvault.toml", FULL))
    data = cfg.to_json()
    s3_unset = {"url": "", "endpoint": "", "region": "", "retry_seconds": 30}
    unset = {**s3_unset, "copy_of": "", "encrypt": False, "offsite": False, "read_only": False,
             "object_lock_days": 0, "object_lock_mode": "compliance"}
    assert data["stores"] == {"nas1": {"path": "/mnt/nas1/rtvault", **unset},
                              "nas2": {"path": "/mnt/nas2/rtvault", **unset}}
    assert validate(data, cfg.file) == cfg


def test_to_json_hides_the_catalog_password(tmp_path: Path) -> None:
    cfg = load(write(tmp_path / "rtvault.toml", '[catalog]\nurl = "postgresql://u:s3cret@h/db"\n'))
    assert cfg.catalog.url == "postgresql://u:s3cret@h/db"
    assert cfg.to_json()["catalog"] == {"url": "postgresql://u:***@h/db"}


def test_empty_file_gets_every_default(tmp_path: Path) -> None:
    cfg = load(write(tmp_path / "rtvault.toml", ""))
    assert cfg.source.pinnacle.root is None
    assert cfg.source.pinnacle.exclude == (".auto.plan*", "*.ErrorLog", "*.Transcript", "*~")
    assert cfg.stores == {}
    assert cfg.catalog.url == f"sqlite:///{tmp_path}/rtvault-catalog.sqlite"
    retention = cfg.retention
    assert (retention.keep_last, retention.keep_hourly, retention.keep_daily) == (3, 24, 14)
    assert (retention.keep_weekly, retention.keep_monthly, retention.keep_yearly) == (8, 24, 20)


def test_a_partial_section_keeps_the_other_defaults(tmp_path: Path) -> None:
    cfg = load(write(tmp_path / "rtvault.toml", "[retention]\nkeep_daily = 0\n"))
    assert cfg.retention.keep_daily == 0
    assert cfg.retention.keep_weekly == 8


def test_relative_paths_follow_the_config_file_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = """\
[source.pinnacle]
root = "../pinnacle/NewPatients"
[stores.local]
path = "stores/local"
[stores.nas]
path = "/mnt/nas"
[catalog]
url = "sqlite:///db/catalog.sqlite"
"""
    file = write(tmp_path / "etc" / "rtvault.toml", text)
    monkeypatch.chdir(write(tmp_path / "elsewhere" / "x", "").parent)
    cfg = load(file)
    assert cfg.source.pinnacle.root == tmp_path / "etc" / "../pinnacle/NewPatients"
    assert cfg.stores["local"].path == tmp_path / "etc" / "stores" / "local"
    assert cfg.stores["nas"].path == Path("/mnt/nas")
    assert cfg.catalog.url == f"sqlite:///{tmp_path}/etc/db/catalog.sqlite"


def test_absolute_sqlite_url_is_kept(tmp_path: Path) -> None:
    cfg = load(write(tmp_path / "rtvault.toml", '[catalog]\nurl = "sqlite:////var/lib/rtvault/c.sqlite"\n'))
    assert cfg.catalog.url == "sqlite:////var/lib/rtvault/c.sqlite"


# --- texts generated from the schema ------------------------------------------------------------------


def test_the_schema_declares_the_expected_keys() -> None:
    assert schema_keys() == [
        "source.pinnacle.root",
        "source.pinnacle.exclude",
        "sources.<name>.kind",
        "sources.<name>.root",
        "sources.<name>.site",
        "sources.<name>.exclude",
        "stores.<name>.path",
        "stores.<name>.url",
        "stores.<name>.endpoint",
        "stores.<name>.region",
        "stores.<name>.credentials_file",
        "stores.<name>.retry_seconds",
        "stores.<name>.copy_of",
        "stores.<name>.encrypt",
        "stores.<name>.passphrase_file",
        "stores.<name>.offsite",
        "stores.<name>.read_only",
        "stores.<name>.object_lock_days",
        "stores.<name>.object_lock_mode",
        "backup.max_shrink",
        "backup.lock_lease_seconds",
        "archive.inbox",
        "catalog.url",
        "retention.keep_last",
        "retention.keep_hourly",
        "retention.keep_daily",
        "retention.keep_weekly",
        "retention.keep_monthly",
        "retention.keep_yearly",
        "verify.cycle_days",
        "verify.repair",
        "schedule.backup",
        "schedule.sweep",
        "schedule.replicate",
        "schedule.verify",
        "schedule.retention",
        "schedule.catalog",
        "schedule.catalog_backup",
        "schedule.drill",
        "schedule.pairs.<name>.replicate",
        "daemon.job_timeout",
        "daemon.state_dir",
        "health.interval",
        "health.backup_max_age",
        "health.backup_warn_age",
        "health.replication_max_lag",
        "health.verify_max_age",
        "health.free_warn_percent",
        "health.free_critical_percent",
        "health.full_warn_days",
        "health.full_critical_days",
        "health.daemon",
        "alerts.repeat_hours",
        "alerts.language",
        "alerts.retry_seconds",
        "alerts.mail.host",
        "alerts.mail.port",
        "alerts.mail.starttls",
        "alerts.mail.ca_file",
        "alerts.mail.username",
        "alerts.mail.password_file",
        "alerts.mail.sender",
        "alerts.mail.recipients",
        "alerts.webhook.url",
        "continuity.rto_patient_minutes",
        "continuity.rto_full_minutes",
        "continuity.drill_every_days",
        "continuity.drill_dir",
        "continuity.procedure_dir",
        "reconcile.idle_months",
        "dicom.uid_root",
        "dicom.ae_title",
        "dicom.host",
        "dicom.port",
        "dicom.accept_unknown",
        "dicom.store",
        "dicom.batch_ms",
        "dicom.network_timeout",
        "dicom.tls_cert_file",
        "dicom.tls_key_file",
        "dicom.tls_ca_file",
        "dicom.peers.<name>.ae_title",
        "dicom.peers.<name>.host",
        "dicom.peers.<name>.port",
        "dicom.peers.<name>.silent_after",
        "dicom.peers.<name>.tls",
        "site.name",
        "site.contacts",
        "web.host",
        "web.port",
        "web.restore_dir",
        "web.restore_group",
        "web.public_url",
        "web.trusted_proxies",
        "web.session_hours",
        "web.secure_cookies",
        "web.metrics_from",
        "web.metrics_token_file",
        "web.ldap.url",
        "web.ldap.user_dn",
        "web.ldap.default_role",
        "web.ldap.timeout_seconds",
    ]


def test_example_is_valid_and_sets_every_key(tmp_path: Path) -> None:
    text = example_toml()
    data = tomllib.loads(text)
    commented = tomllib.loads(text.replace("# [schedule.pairs", "[schedule.pairs").replace("# replicate =",
                                                                                         "replicate ="))
    assert commented["schedule"]["pairs"]["offsite"]["replicate"] == ["daily 22:00"]  # shown, commented out
    for key in schema_keys(example_names=True):
        if key.startswith(("schedule.pairs.", "sources.", "dicom.peers.")):
            continue  # no copy store, one source, no DICOM peer in the example site: those tables are commented out
        *tables_path, name = key.split(".")
        table = data
        for part in tables_path:
            table = table[part]
        assert name in table, key
    cfg = load(write(tmp_path / "rtvault.toml", text))
    assert isinstance(cfg, Config)
    assert list(cfg.stores) == ["primary"]
    assert cfg.source.pinnacle.root == Path("/PrimaryPatientData/NewPatients")


def test_example_documents_every_key_in_a_comment_above_it() -> None:
    lines = example_toml().splitlines()
    for table, section in tables(SCHEMA, example_names=True):
        header = next((line for line in (f"[{table}]", f"# [{table}]") if line in lines), None)
        start = lines.index(header) if header else 0
        for spec in section.fields:
            at = next(i for i, line in enumerate(lines) if i > start and line.removeprefix("# ").startswith(
                f"{spec.name} = "))
            assert lines[at - 2] == f"# {spec.doc}"


def test_reference_docs_list_every_key() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    missing = [key for key in schema_keys() if f"`{key}`" not in docs]
    assert not missing, f"{DOCS} lacks {missing}; regenerate it with: {REFERENCE_COMMAND}"


def test_reference_docs_are_up_to_date() -> None:
    assert DOCS.read_text(encoding="utf-8") == reference_markdown(), (
        f"{DOCS} is out of date with the schema; regenerate it with: {REFERENCE_COMMAND}"
    )
