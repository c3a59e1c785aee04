"""Where a restore writes: every name checked before anything is written (no absolute path, no `..`, no empty or
NUL component), and every parent directory made and checked to be a directory, never a symbolic link (which
could lead outside the destination), once per restore."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from rtvault.errors import InputError, StoreError


def _pieces(part: str, destination: Path) -> list[str]:
    pieces = part.split("/")
    if any(piece in ("", ".", "..") or "\x00" in piece for piece in pieces):
        raise StoreError(f"refusing an unsafe name {part!r} in the store: it would escape {destination}")
    return pieces


def safe_target(destination: Path, base: str, name: str, *, directory: bool = False) -> Path:
    """`destination/base/name`, refusing absolute names, `..`, empty or NUL components. `base` is a patient
    path or "" for the root; a directory's `name` may be "." (the base directory itself), a file's not."""
    pieces = _pieces(base, destination) if base else []
    if not (directory and name == "."):
        pieces += _pieces(name, destination)
    return destination.joinpath(*pieces)


def make_parents(destination: Path, target: Path, checked: set[str] | None = None) -> None:
    """Create target's parent directories, refusing any existing one that is a symlink (it could lead out).
    Several threads may create the same parent at once: whoever made it, each checks what is there. A directory
    in `checked` (shared by the restore's threads) was made and checked for an earlier file of this restore:
    it is not looked at again, and each one this call checks is added to it."""
    if checked is not None and os.path.dirname(target) in checked:
        return
    current = str(destination)
    for piece in target.parent.relative_to(destination).parts:
        current = os.path.join(current, piece)
        if checked is not None and current in checked:
            continue
        with contextlib.suppress(FileExistsError):
            os.mkdir(current)
        mode = os.lstat(current).st_mode
        if stat.S_ISLNK(mode):
            raise InputError(f"refusing to write under {current}: it is a symbolic link, which could lead "
                             f"outside {destination}; choose an empty destination")
        if not stat.S_ISDIR(mode):
            raise InputError(f"refusing to write under {current}: it is not a directory; choose an empty destination")
        if checked is not None:
            checked.add(current)
