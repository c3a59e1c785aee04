"""The catalog: the searchable index of every patient ever backed up or archived (rebuilt from the stores),
plus the web users, their sessions and tokens, and the append-only audit trail."""

from rtvault.catalog.db import Catalog
from rtvault.catalog.schema import open_catalog

__all__ = ["Catalog", "open_catalog"]
