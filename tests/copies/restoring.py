"""What the copies tests compare: every snapshot and every archived patient of a store, restored."""

from __future__ import annotations

from pathlib import Path

from rtvault.archive import records
from rtvault.jobs.archives import restore_from_archive
from rtvault.jobs.restore import restore_all
from rtvault.store import Store


def restore_everything(store: Store, out: Path) -> dict[str, bytes]:
    """Every snapshot and every archived patient, restored; the bytes of every file (the Institution file an
    archive restore writes is dated now, so it is left out)."""
    for manifest in store.manifests():
        restore_all(store, out / manifest.id, snapshot=manifest.id)
    for record in records.all_records(store):
        for patient in record.patients:
            restore_from_archive(store, patient.path, out / record.id, archive_id=record.id)
            (out / record.id / "Institution").unlink()
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
