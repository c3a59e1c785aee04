"""Where a treatment's files come from: any mapping-like `PatientFiles` (names relative to the patient directory,
their sizes and bytes), so that the same reader works on a patient directory (`DirectorySource`, here), a store's
tree or an archive's members (their adapters live in `jobs/`: this package may not import `store/` or
`archive/`). Nothing here writes."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from rtvault.pinnacle.grammar import read_regular

MAX_BULK_FILE = 4 << 30  # a CT volume or a dose file: a few hundred MB at most; this bounds a hostile one


class PatientFiles(Protocol):
    """A patient's files by relative name (`Patient`, `ImageSet_0.img`, `Plan_0/plan.Trial`, with `/`)."""

    def names(self) -> Iterable[str]:
        """Every regular file's relative name."""
        ...

    def size(self, name: str) -> int | None:
        """The file's size in bytes; None when there is no such file."""
        ...

    def read(self, name: str) -> bytes:
        """The file's bytes; OSError (FileNotFoundError when absent) when they cannot be read."""
        ...


class DirectorySource:
    """The files of a patient directory on disk. Symbolic links, pipes and devices are not files here (the
    backup never follows them either); nothing is ever written."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def names(self) -> list[str]:
        found: list[str] = []
        for dirpath, dirs, files in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(dirpath, d)))
            rel = os.path.relpath(dirpath, self.root)
            for name in sorted(files):
                if self._regular(os.path.join(dirpath, name)) is not None:
                    found.append(name if rel == "." else f"{rel}/{name}".replace(os.sep, "/"))
        return found

    def size(self, name: str) -> int | None:
        path = self._path(name)
        return None if path is None else self._regular(str(path))

    def read(self, name: str) -> bytes:
        path = self._path(name)
        if path is None:
            raise FileNotFoundError(2, "not a file of this patient", name)
        return read_regular(path, MAX_BULK_FILE)

    def _path(self, name: str) -> Path | None:
        parts = name.split("/")
        if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
            return None
        return self.root.joinpath(*parts)

    @staticmethod
    def _regular(path: str) -> int | None:
        try:
            st = os.lstat(path)
        except OSError:
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None
