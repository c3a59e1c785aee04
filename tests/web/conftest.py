"""A real synthetic site for the web tests, built once per session: a generated Pinnacle database (one
patient renamed `<script>alert(1)</script>` in its Patient file), backed up, one clinical day played (a
patient deleted, hence archived), backed up again, the catalog synced; three users, one per role (kit.web.Site)."""

from __future__ import annotations

import pytest

from kit.config import write_config
from kit.files import set_last_name
from kit.web import PASSWORD, ROLES, XSS_NAME, XSS_PATIENT, Site
from rtvault.catalog import open_catalog
from rtvault.catalog.users import add_user, create_token
from rtvault.config import load
from rtvault.configured import init_stores
from rtvault.demo import evolve_database, generate_database
from rtvault.jobs.backup import run_backup
from rtvault.jobs.catalog import refresh
from rtvault.store import Store
from rtvault.web.app import create_app


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    root = tmp_path_factory.mktemp("web-site")
    generate_database(root / "pinnacle", patients=8, seed=7, image_mb=0.2)
    set_last_name(root / "pinnacle" / XSS_PATIENT / "Patient", XSS_NAME)
    (root / "restores").mkdir()
    config = load(write_config(root / "rtvault.toml", root="pinnacle", stores={"primary": "store"},
                               catalog={"url": "sqlite:///catalog.sqlite"}, web={"restore_dir": "restores"}))
    init_stores(config)
    store = Store.open(config.stores["primary"].path)
    run_backup(config, store)
    evolve_database(root / "pinnacle", 1)
    run_backup(config, store)
    refresh(config)
    tokens = {}
    with open_catalog(config.catalog.url) as db:
        for role in ROLES:
            add_user(db, role, role, PASSWORD)
            tokens[role] = create_token(db, role, "tests")
    return Site(root, config, create_app(config), tokens)

