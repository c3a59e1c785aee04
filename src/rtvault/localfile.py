"""Small files of this machine's own (the daemon's state folder), written atomically: a temporary file beside
the target, its content fsynced, renamed into place, the folder fsynced. A reader sees the old content or the
new, never a part; a failure leaves the old one and no temporary file."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_atomically(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write `data` to `path` (its folder made if need be); `private`: owner-only (0600, folder 0700). Raises the
    OSError (a full disk, a read-only folder) for the caller to say what to do."""
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(mode=0o700 if private else 0o777, parents=True, exist_ok=True)
        descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o666)
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(staged, path)
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError:
        with contextlib.suppress(OSError):
            staged.unlink(missing_ok=True)
        raise
