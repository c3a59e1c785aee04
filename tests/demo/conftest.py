"""Fixtures of the synthetic database tests: one small generated database per session, copied for tests that
change it, and functions reading a tree's state and parsing its text files (from kit/demo.py)."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from kit.demo import NO_STAMP, parse_any, stamp_of, text_files, tree_state
from rtvault.demo import GeneratedDatabase, generate_database


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
            result_stamp = stamp_of(path)
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
