"""The typed formats read what an earlier release wrote and write it back unchanged: a tree's JSON, hence its
hash (its name), a manifest's fields (its integrity hash covers them), an archive index and its summary. And a
stored document that does not fit its type is damage named as such, never an internal error."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest
import zstandard

from rtvault.archive.formats import ArchiveRecord
from rtvault.errors import StoreError
from rtvault.store import Store, integrity
from rtvault.store.formats import FileEntry, Manifest, Tree
from rtvault.store.repository import _json_bytes

OLD = Path(__file__).resolve().parents[1] / "fixtures" / "store-v1" / "store"


def _old_trees() -> list[tuple[str, bytes]]:
    unzip = zstandard.ZstdDecompressor()
    return [(path.name, unzip.decompress(path.read_bytes(), max_output_size=1 << 26))
            for path in sorted((OLD / "trees").rglob("*")) if path.is_file()]


def test_every_tree_of_an_earlier_release_is_written_back_to_the_same_bytes_and_hash() -> None:
    trees = _old_trees()
    assert len(trees) >= 4  # three patients, the root's files, and the versions of the second day
    for name, data in trees:
        tree = Tree.from_json(json.loads(data))
        assert _json_bytes(tree.to_json()) == data, name
        assert hashlib.sha256(_json_bytes(tree.to_json())).hexdigest() == name
    patients = [Tree.from_json(json.loads(data)) for _, data in trees]
    assert any(t.patient is not None and t.patient.last_name for t in patients)  # the reader's record is typed
    assert any(t.patient is None for t in patients)  # the root's other files have none


def test_every_manifest_of_an_earlier_release_reads_back_to_the_fields_its_integrity_hash_covers() -> None:
    paths = sorted((OLD / "snapshots").glob("*.json"))
    assert len(paths) == 2
    for path in paths:
        stored = json.loads(path.read_text())
        manifest = Manifest.from_json(stored)
        assert manifest.to_json() == stored
        assert integrity.sealed(manifest.to_json())
        assert manifest.trees() and all(len(digest) == 64 for digest in manifest.trees().values())


def test_every_archive_index_and_summary_of_an_earlier_release_reads_back_unchanged() -> None:
    indexes = sorted((OLD / "archives").glob("*.json"))
    assert indexes, "the fixture's second backup archived the deleted patient"
    for path in indexes:
        stored = json.loads(path.read_text())
        record = ArchiveRecord.from_json(stored)
        assert record.to_json() == stored and integrity.sealed(record.to_json())
        assert record.patients and record.members and record.state == "verified"
        summary = json.loads((OLD / "archives" / "summaries" / path.name).read_text())
        assert {**record.summary_json(), "integrity": summary["integrity"]} == summary


def test_an_archive_made_from_a_snapshot_names_its_source_and_site_in_its_index_and_summary() -> None:
    stored = json.loads(sorted((OLD / "archives").glob("*.json"))[0].read_text())
    named = replace(ArchiveRecord.from_json(stored), source_name="patients-a", site="Site A")
    assert (named.to_json()["source_name"], named.to_json()["site"]) == ("patients-a", "Site A")
    assert ArchiveRecord.from_json(named.to_json()) == named
    again = ArchiveRecord.from_json(named.summary_json())
    assert (again.source_name, again.site) == ("patients-a", "Site A")


def test_a_file_entry_is_written_without_the_flags_it_does_not_have() -> None:
    entry = FileEntry("Patient", 3, 1, 2, 3, 0o644, "ab" * 32)
    assert "inconsistent" not in entry.to_json()
    assert FileEntry.from_json({**entry.to_json(), "inconsistent": True}).to_json()["inconsistent"] is True


@pytest.mark.parametrize("document", [
    {"files": "not a list", "dirs": []},
    {"files": [{"name": "Patient", "size": "big", "mtime_ns": 0, "hash": "00"}], "dirs": []},
    {"dirs": []},
    ["a", "list"],
])
def test_a_stored_tree_that_hashes_right_but_is_no_tree_is_named_damaged(tmp_path: Path, document: object) -> None:
    store, _ = Store.init(tmp_path / "store")
    data = _json_bytes(document)
    digest = hashlib.sha256(data).hexdigest()
    store.backend.put(f"trees/{digest[:2]}/{digest}", zstandard.ZstdCompressor().compress(data))
    with pytest.raises(StoreError, match=f"trees/{digest[:2]}/{digest} .* is not a valid tree"):
        store.get_tree(digest)
