"""What the backup tests share: a content digest, and the file records of a snapshot as its trees hold them."""

from __future__ import annotations

import hashlib


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored_files(vault, manifest: dict | None = None) -> dict[str, dict]:
    """Every file record of a snapshot, keyed by its path relative to the source root."""
    manifest = manifest or vault.manifests()[-1]
    found = {}
    for entry in manifest.patients:
        for record in vault.store.get_tree(entry.tree).files:
            found[f"{entry.path}/{record.name}"] = record
    for record in vault.store.get_tree(manifest.other.tree).files:
        found[record.name] = record
    return found
