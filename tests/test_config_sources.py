"""`[sources.NAME]` (kind, root, site, exclude) beside the older `[source.pinnacle]`, which stays the source
named `pinnacle` of kind pinnacle-patients."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.config import write
from rtvault.config import load
from rtvault.errors import ConfigError


def _load(tmp_path: Path, text: str):
    return load(write(tmp_path / "rtvault.toml", text))


def test_source_pinnacle_is_the_source_named_pinnacle(tmp_path: Path) -> None:
    config = _load(tmp_path, '[source.pinnacle]\nroot = "db"\nexclude = ["*.tmp"]\n')
    assert list(config.all_sources()) == ["pinnacle"]
    source = config.all_sources()["pinnacle"]
    assert (source.kind, source.root, source.site, source.exclude) == ("pinnacle-patients", tmp_path / "db", "",
                                                                       ("*.tmp",))


def test_named_sources_of_both_kinds_with_their_site(tmp_path: Path) -> None:
    config = _load(tmp_path, '[source.pinnacle]\nroot = "db"\n\n[sources.physics]\nkind = "pinnacle-physics"\n'
                             'root = "/PinnacleSiteData"\nsite = "Site A"\n\n[sources.b]\nroot = "/b/NewPatients"\n')
    sources = config.all_sources()
    assert list(sources) == ["pinnacle", "physics", "b"]
    assert (sources["physics"].kind, sources["physics"].site) == ("pinnacle-physics", "Site A")
    assert sources["b"].kind == "pinnacle-patients" and sources["b"].root == Path("/b/NewPatients")


def test_a_source_without_root_is_not_configured(tmp_path: Path) -> None:
    assert _load(tmp_path, '[stores.primary]\npath = "s"\n').all_sources() == {}


@pytest.mark.parametrize(("text", "problem"), [
    ('[sources.x]\nkind = "pinnacle-dicom"\nroot = "r"\n',
     "sources.x.kind: must be one of pinnacle-patients, pinnacle-physics, got 'pinnacle-dicom'"),
    ('[sources.x]\nsite = "A"\n', "sources.x: root is required: the directory this source backs up"),
    ('[sources.x]\nroot = "r"\nmachines = 1\n', "sources.x.machines: unknown key (known keys: kind, root, site, "
                                               "exclude)"),
    ('[source.pinnacle]\nroot = "a"\n\n[sources.pinnacle]\nroot = "b"\n',
     "sources.pinnacle: [source.pinnacle] already configures the source named pinnacle: keep one of the two "
     "tables (move its root and exclude into [sources.pinnacle])"),
    ('[sources."a b"]\nroot = "r"\n', 'sources."a b": a name may only hold letters, digits, \'-\' and \'_\''),
])
def test_bad_sources_are_named(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    assert caught.value.problems == [problem]
