"""Many packed objects verified from a few large reads (`check --read-data`): consecutive blobs of a pack are read
together, up to SPAN bytes at a time (restic reads each pack whole), instead of one read per blob. What is
reported stays what reading each object alone reports: a blob that does not verify from the shared read, or an
object of a run that cannot be read at once, is read again on its own (`objects.verify_object`)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

from rtvault.errors import StoreError
from rtvault.store.backend import Backend
from rtvault.store.objects import data_key, decode, verify_object
from rtvault.store.packs import PackedBackend, Where

SPAN = 8 << 20  # the bytes one read covers: memory holds one span per thread (a pack is about 16 MiB)


def spans(backend: Backend, digests: Sequence[str]) -> list[list[str]]:
    """`digests` (content objects, in read order: `pool.read_order`) cut into runs to read together: consecutive
    blobs of one pack lying within SPAN bytes of the run's first; a loose object is a run of its own."""
    if not isinstance(backend, PackedBackend):
        return [[digest] for digest in digests]
    runs: list[list[str]] = []
    first: Where | None = None
    for digest in digests:
        where = backend.where_of(data_key(digest))
        if (where is not None and first is not None and where.pack == first.pack and where.offset >= first.offset
                and where.offset + where.length - first.offset <= SPAN):
            runs[-1].append(digest)
        else:
            runs.append([digest])
            first = where
    return runs


def verify_objects(backend: Backend, digests: list[str]) -> list[tuple[str, int | StoreError]]:
    """Each object read back and re-hashed, in order: its content size, or the StoreError saying why it is
    damaged or missing (as `verify_object` says it). A run of blobs of one pack is read at once."""
    together = _together(backend, digests)
    results: list[tuple[str, int | StoreError]] = []
    for index, digest in enumerate(digests):
        size: int | None = None
        if together is not None:
            data, start, places = together
            where = places[index]
            raw = io.BytesIO(data[where.offset - start:where.offset - start + where.length])
            with contextlib.suppress(StoreError):  # damaged: read again alone, for exactly its own report
                size = sum(len(block) for block in decode(raw, data_key(digest), digest))
        try:
            results.append((digest, size if size is not None else verify_object(backend, digest)))
        except StoreError as error:
            results.append((digest, error))
    return results


def _together(backend: Backend, digests: list[str]) -> tuple[bytes, int, list[Where]] | None:
    """The bytes of the pack range holding every blob of the run, its start and each blob's place; None when the
    objects are not blobs of one pack or that read fails (each is then read on its own)."""
    if len(digests) < 2 or not isinstance(backend, PackedBackend):
        return None
    try:
        found = [backend.where_of(data_key(digest)) for digest in digests]
        places = [where for where in found if where is not None]
        if len(places) != len(found) or len({where.pack for where in places}) != 1:
            return None
        start = min(where.offset for where in places)
        end = max(where.offset + where.length for where in places)
        return backend.read_range(places[0].pack, start, end - start), start, places
    except (StoreError, OSError):
        return None
