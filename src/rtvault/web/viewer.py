"""The viewer's images kept on the server: the planes drawn by `jobs/patient_drawing.py` from the scenes of
`jobs/patient_view.py`.

Images are kept in an LRU in memory (`ImageCache`, at most `IMAGE_BYTES`), keyed by the version, its location,
the plan, trial and every drawing parameter: a version's content never changes (its name is its tree's hash or
its archive's), so a kept image is never stale. Nothing is written to disk: patient images stay in the server's
memory only, and vanish with it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from rtvault.jobs.patient_view import SceneCache

IMAGE_BYTES = 64 << 20


class ImageCache:
    """The images drawn last, by key, at most `limit` bytes together."""

    def __init__(self, limit: int = IMAGE_BYTES) -> None:
        self.limit = limit
        self.images: OrderedDict[tuple, bytes] = OrderedDict()
        self.size = 0
        self.lock = threading.Lock()

    def get(self, key: tuple) -> bytes | None:
        with self.lock:
            found = self.images.get(key)
            if found is not None:
                self.images.move_to_end(key)
            return found

    def put(self, key: tuple, data: bytes) -> None:
        if len(data) > self.limit:
            return
        with self.lock:
            if key in self.images:
                return
            self.images[key] = data
            self.size += len(data)
            while self.size > self.limit:
                self.size -= len(self.images.popitem(last=False)[1])


class Viewer:
    """The server's viewer state: the scenes (patient versions read) and the images drawn, both bounded."""

    def __init__(self) -> None:
        self.scenes = SceneCache()
        self.images = ImageCache()
