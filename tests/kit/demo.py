"""The synthetic database tests' kit: a tree's state, and its Pinnacle text files parsed and their stamps read."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from kit.files import is_transient

NO_STAMP = ("header", "plan.Trial", "plan.roi", "plan.PatientSetup")


def is_binary(path: Path) -> bool:
    return path.suffix in (".img", ".dcm") or ".binary." in path.name


def text_files(root: Path) -> Iterator[Path]:
    """Every Pinnacle text file of a tree (not the binaries, not the transient files)."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and not is_binary(path) and not is_transient(path.name):
            yield path


def parse_any(path: Path):
    """Parse a Pinnacle text file with the grammar or dialect its name calls for."""
    from rtvault.pinnacle.dialects import parse_header, parse_roi
    from rtvault.pinnacle.grammar import parse_bytes

    data = path.read_bytes()
    if path.suffix == ".header":
        return parse_header(data, path.name)
    if path.name == "plan.roi":
        return parse_roi(data, path.name)
    return parse_bytes(data, path.name)


def tree_state(root: Path) -> dict[str, tuple[str, int]]:
    """Every file and directory under root: content digest (files) and mtime in nanoseconds."""
    state: dict[str, tuple[str, int]] = {}
    for current, dirs, names in os.walk(root):
        for name in [*dirs, *names]:
            path = Path(current, name)
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
            state[path.relative_to(root).as_posix()] = (digest, path.stat().st_mtime_ns)
    return state


def stamp_of(path: Path) -> bytes | None:
    from rtvault.pinnacle.grammar import split_stamp

    return split_stamp(path.read_bytes())[1]
