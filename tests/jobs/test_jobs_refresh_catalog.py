"""A library caller gets what the command line gets: a job that changed a store brings the catalog in step."""

from __future__ import annotations

from rtvault.catalog.search import Criteria, search
from rtvault.configured import open_catalog_for
from rtvault.jobs.backup import backup
from rtvault.jobs.maintenance import forget


def test_backup_and_forget_refresh_the_catalog(vault) -> None:
    done = backup(vault.config, vault.store)
    assert done.catalog is None and done.verdict().code == 0
    with open_catalog_for(vault.config) as catalog:
        assert search(catalog, Criteria()).total == done.summary.patients
    dry = forget(vault.config, vault.store, dry_run=True)
    assert dry.catalog is None and dry.to_json()["dry_run"] is True


def test_a_catalog_that_cannot_be_opened_is_a_warning_not_a_failure(vault) -> None:
    text = vault.config_path.read_text(encoding="utf-8")
    vault.config_path.write_text(text + '\n[catalog]\nurl = "postgresql://nobody@127.0.0.1:1/none"\n', encoding="utf-8")
    done = backup(vault.config, vault.store)
    assert done.verdict().code == 0 and done.summary.snapshot
    assert "the catalog was not updated" in "".join(done.warnings())
