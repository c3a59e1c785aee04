"""Shared fixtures of the synthetic database tests: one small generated database per session, copied for
tests that change it, and helpers to read a tree's state and parse its text files."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rtvault.demo import GeneratedDatabase, generate_database

TRANSIENT_SUFFIXES = (".ErrorLog", ".Transcript", "~")
NO_STAMP = ("header", "plan.Trial", "plan.roi", "plan.PatientSetup")


def is_transient(path: Path) -> bool:
    return path.name.startswith(".auto.plan") or path.name.endswith(TRANSIENT_SUFFIXES)


def is_binary(path: Path) -> bool:
    return path.suffix == ".img" or ".binary." in path.name


def text_files(root: Path) -> Iterator[Path]:
    """Every Pinnacle text file of a tree (not the binaries, not the transient files)."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and not is_binary(path) and not is_transient(path):
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


@pytest.fixture(scope="session")
def small_db(tmp_path_factory: pytest.TempPathFactory) -> GeneratedDatabase:
    """Six patients with 0.2 MB image sets: shared, never modified."""
    return generate_database(tmp_path_factory.mktemp("small") / "db", patients=6, seed=7, image_mb=0.2)


@pytest.fixture
def copy_db(small_db: GeneratedDatabase, tmp_path: Path) -> Callable[[str], Path]:
    """Copies of the small database (mtimes kept) that a test may change."""

    def copy(name: str = "db") -> Path:
        target = tmp_path / name
        shutil.copytree(small_db.out, target, copy_function=shutil.copy2)
        for current, dirs, _ in os.walk(small_db.out, topdown=False):
            for directory in [current, *(os.path.join(current, d) for d in dirs)]:
                stat = os.stat(directory)
                twin = target / Path(directory).relative_to(small_db.out)
                os.utime(twin, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        return target

    return copy


def _stamp(path: Path) -> bytes | None:
    from rtvault.pinnacle.grammar import split_stamp

    return split_stamp(path.read_bytes())[1]


@pytest.fixture
def state_of() -> Callable[[Path], dict[str, tuple[str, int]]]:
    return tree_state


@pytest.fixture
def problems_in() -> Callable[[Path], dict[str, list[str]]]:
    """A function listing, per file, the parse problems and stamp mistakes of a tree's text files."""

    seen: dict[tuple[str, str], list[str]] = {}  # identical files (the Machines copies) are parsed once

    def check(root: Path) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for path in text_files(root):
            key = (
                path.suffix if path.suffix == ".header" else path.name,
                hashlib.sha256(path.read_bytes()).hexdigest(),
            )
            if key not in seen:
                seen[key] = [str(p) for p in parse_any(path).problems]
            issues = list(seen[key])
            result_stamp = _stamp(path)
            wants_stamp = not path.name.endswith(NO_STAMP)
            if wants_stamp != (result_stamp is not None and len(result_stamp) == 2):
                issues.append(f"stamp {result_stamp!r} where one is {'expected' if wants_stamp else 'unexpected'}")
            if issues:
                found[path.relative_to(root).as_posix()] = issues
        return found

    return check


@pytest.fixture
def parse() -> Callable[[Path], object]:
    return parse_any
