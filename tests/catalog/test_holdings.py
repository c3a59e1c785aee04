"""What `rtvault reconcile` asks of the catalog (catalog/holdings.py), on SQLite and on PostgreSQL: the newest
snapshot version of each source patient, every archive copy, the same three lists from real backups."""

from __future__ import annotations

from pathlib import Path

from kit.reconcile import ReconcileSite
from rtvault.catalog import holdings, open_catalog
from rtvault.configured import store_ids


def test_the_lists_and_the_holdings_read_alike_on_both_databases(catalog_url: str, tmp_path: Path) -> None:
    site = ReconcileSite.made(tmp_path / "site", catalog_url=catalog_url)
    site.made_safe()
    paths = site.paths()
    assert site.lists() == {"never_captured": [], "under_copied": [], "safe_to_delete": paths}
    newest = site.config.stores["primary"].path
    assert newest is not None
    named = {sid: name for name, sid in store_ids(site.config).items()}
    with open_catalog(catalog_url) as db:
        latest = holdings.latest_snapshots(db, [*paths, "Institution_9/Mount_0/Patient_0"], named)
        copies = holdings.archive_copies(db, named, [found.version for found in latest.values()])
        assert sorted(latest) == paths
        assert {found.stores for found in latest.values()} == {("offsite", "primary")}
        assert sorted((c.holder, c.disk_verified) for c in copies) == \
            [("offsite", None)] * len(paths) + [("primary", None)] * len(paths)
        assert holdings.indexed_snapshots(db, store_ids(site.config)["primary"]) == {m.name.removesuffix(".json")
                                                             for m in (newest / "snapshots").glob("*.json")}
