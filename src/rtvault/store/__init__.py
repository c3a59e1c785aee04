"""Stores: content-addressed, deduplicated, compressed, immutable files behind a small backend interface;
snapshots of patient trees; the writer lock; retention rules; checks."""

from rtvault.store.repository import SnapshotInfo, Store

__all__ = ["SnapshotInfo", "Store"]
