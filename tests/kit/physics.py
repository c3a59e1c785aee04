"""A physics snapshot written as the backup of a `pinnacle-physics` source writes it (docs/design.md, "Snapshot
manifest": no patients, the whole tree as `other`, `kind`, `source_name`, `site`), for the tests of what reads
physics snapshots: `rtvault machines` and `rtvault restore --physics`."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from rtvault.config.settings import PHYSICS_KIND
from rtvault.store import Store
from rtvault.store.formats import DirEntry, FileEntry, FileStat, Manifest, OtherEntry, Tree
from rtvault.store.objects import store_small
from rtvault.store.repository import new_snapshot_id
from rtvault.utc import iso


def physics_snapshot(store: Store, root: Path, when: datetime, source: str = "physics", site: str = "") -> Manifest:
    """Every file under `root` stored, its tree and a physics manifest dated `when` (UTC) written."""
    files, dirs = [], []
    for current, names, found in os.walk(root):
        for name in sorted(names):
            path = Path(current, name)
            st = path.stat()
            dirs.append(DirEntry(path.relative_to(root).as_posix(), st.st_mode & 0o7777, st.st_mtime_ns))
        for name in sorted(found):
            path = Path(current, name)
            digest, _ = store_small(store.backend, path.read_bytes(), False)
            files.append(FileEntry.stored(FileStat.of(path.relative_to(root).as_posix(), path.stat()), digest))
    tree = Tree(tuple(sorted(files, key=lambda f: f.name)), tuple(sorted(dirs, key=lambda d: d.name)))
    digest = store.put_tree(tree)
    manifest = Manifest(new_snapshot_id(when), iso(when, "microseconds"), str(root), (),
                        OtherEntry.of(digest, tree, ()), {"files": len(files), "bytes": tree.bytes},
                        source_name=source, kind=PHYSICS_KIND, site=site)
    return store.save_snapshot(manifest)
