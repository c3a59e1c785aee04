"""The source listing: `/`-joined names relative to each tree, patients found at both depths, links and
devices named and never followed, the exclude patterns matched as `fnmatch` matches them."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import pytest

from rtvault.jobs.source import _matcher, list_source

PATTERNS = (".auto.plan*", "*.ErrorLog", "*.Transcript", "*~", "Scratch[0-9]?", "[!a-z]*.tmp", "*.[Ll]og")
NAMES = (".auto.plan.Trial", "a.ErrorLog", "x.errorlog", "b.Transcript", "plan~", "~plan", "Scratch1a", "Scratch12x",
         "scratch1a", "A.tmp", "a.tmp", "c.Log", "c.log", "c.LOG", "plan.Trial", "", "*", "line\nbreak.ErrorLog")


@pytest.mark.parametrize("patterns", [PATTERNS, (), ("*",), ("plan.Trial",)])
def test_the_exclude_matcher_is_fnmatchcase(patterns: tuple[str, ...]) -> None:
    matches = _matcher(patterns)
    for name in NAMES:
        assert bool(matches(name)) == any(fnmatch.fnmatchcase(name, p) for p in patterns), (name, patterns)


def test_listing_names_trees_patients_links_and_skips(tmp_path: Path) -> None:
    root = tmp_path / "db"
    patient = root / "Institution_1" / "Mount_0" / "Patient_4"
    (patient / "Plan_0").mkdir(parents=True)
    (patient / "Plan_0" / "plan.Trial").write_bytes(b"t")
    (patient / "Patient").write_bytes(b"p")
    (patient / "x.ErrorLog").write_bytes(b"e")
    (patient / "link").symlink_to(root / "Institution_1")
    (root / "Patient_9" / "deep" / "er").mkdir(parents=True)
    (root / "Patient_9" / "deep" / "er" / "f").write_bytes(b"f")
    (root / "Institution_1" / "Mount_0" / "Other" / "x").mkdir(parents=True)
    (root / "Institution_1" / "Institution").write_bytes(b"i")
    os.mkfifo(root / "Institution_1" / "fifo")

    source = list_source(root, PATTERNS)

    assert list(source.patients) == ["Institution_1/Mount_0/Patient_4", "Patient_9"]
    four = source.patients["Institution_1/Mount_0/Patient_4"]
    assert four.base == patient
    assert [f.name for f in four.files] == ["Patient", "Plan_0/plan.Trial"]
    assert [d.name for d in four.dirs] == [".", "Plan_0"]
    assert [f.name for f in source.patients["Patient_9"].files] == ["deep/er/f"]
    assert [d.name for d in source.patients["Patient_9"].dirs] == [".", "deep", "deep/er"]
    assert [f.name for f in source.other.files] == ["Institution_1/Institution"]
    assert [d.name for d in source.other.dirs] == ["Institution_1", "Institution_1/Mount_0",
                                                   "Institution_1/Mount_0/Other", "Institution_1/Mount_0/Other/x"]
    assert sorted(w.file for w in source.warnings) == ["Institution_1/Mount_0/Patient_4/link", "Institution_1/fifo"]
    assert source.skipped == 1
    assert four.files[0].size == 1 and four.files[0].ino == (patient / "Patient").stat().st_ino
    assert not source.unlistable and not four.unreadable
