"""A few threads working through a list for `restore --all` and `check --read-data`, reporting to the caller's
thread.

Reading, decompressing, hashing and writing release the GIL (zstd, hashlib, file I/O), so four threads keep two
cores busy while others wait on a disk or a network. Items are taken one at a time, in the order given: the
caller chooses the read order (with one key), and memory holds one item in progress per thread. Outcomes come
back to the caller's thread as they complete, so the caller alone touches its summary and its `Progress`.
When the caller stops (an error it raises, Ctrl-C, the end of its `with`), no further item is started, the
threads are told to stop (`stop`, for work long enough to look at it) and joined: whatever a thread cleans up
on its way out (a temporary file) is cleaned before the caller's exception goes further.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Generic, NamedTuple, TypeVar

from rtvault.store.backend import Backend
from rtvault.store.objects import data_key
from rtvault.store.packs import PackedBackend

WORKERS = 4  # as the backup's readers: two cores stay busy while others wait on the disk


def read_order(backend: Backend, digests: Sequence[str | None]) -> list[int]:
    """Indexes of `digests` (content objects; None for content that is no object) in the order to read them: the
    objects packed together by pack, then offset, so that each pack is read front to back, once; loose objects
    (version 1, large ones) after them, in the caller's order (restore: the plan's; check: by name)."""
    if not isinstance(backend, PackedBackend):
        return list(range(len(digests)))

    def where(index: int) -> tuple[int, str, int]:
        found = backend.where_of(data_key(digest)) if (digest := digests[index]) else None
        return (0, found.pack, found.offset) if found else (1, "", index)

    return sorted(range(len(digests)), key=where)


Item = TypeVar("Item")
Result = TypeVar("Result")


class Outcome(NamedTuple, Generic[Item, Result]):
    """One item done: its result, or the exception its work raised (`error`)."""

    item: Item
    result: Result | None
    error: Exception | None


@contextmanager
def in_threads(items: Iterable[Item], work: Callable[[Item, threading.Event], Result], *,
               workers: int = WORKERS) -> Iterator[Iterator[Outcome[Item, Result]]]:
    """`work(item, stop)` for each item on `workers` threads; yields an iterator of the outcomes, each once
    done (in completion order). Leaving the `with` sets `stop` and waits for the threads."""
    todo = list(items)
    taking, stop = threading.Lock(), threading.Event()
    source = iter(todo)
    done: queue.SimpleQueue[Outcome[Item, Result]] = queue.SimpleQueue()

    def run() -> None:
        while not stop.is_set():
            with taking:
                item = next(source, _END)
            if item is _END:
                return
            try:
                done.put(Outcome(item, work(item, stop), None))
            except Exception as error:  # handed to the caller's thread, which decides
                done.put(Outcome(item, None, error))

    threads = [threading.Thread(target=run, name=f"rtvault-worker-{n}", daemon=True)
               for n in range(min(workers, len(todo)))]
    for thread in threads:
        thread.start()
    try:
        yield (done.get() for _ in range(len(todo)))
    finally:
        stop.set()
        for thread in threads:
            thread.join()


_END = object()
