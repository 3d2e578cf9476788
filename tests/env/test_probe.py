"""The stdlib dist-info reader agrees with importlib.metadata on names, versions and Requires-Dist."""

from __future__ import annotations

import importlib.metadata
import sysconfig
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from envdoctor._env import probe
from envdoctor.testing import make_dist


def _normal(lines: list[str] | None) -> list[str]:
    return [str(Requirement(x)) for x in lines or ()]


def _by_importlib(site: str) -> dict[str, tuple[str, str, list[str]]]:
    out: dict[str, tuple[str, str, list[str]]] = {}
    for d in importlib.metadata.distributions(path=[site]):
        name = d.metadata["Name"]
        if name:  # importlib.metadata yields unreadable folders too, with no Name
            out.setdefault(canonicalize_name(name), (name, d.version, _normal(d.requires)))
    return out


def _by_probe(site: str) -> dict[str, tuple[str, str, list[str]]]:
    return {canonicalize_name(d["name"]): (d["name"], d["version"], _normal(d["requires"]))
            for d in probe.distributions([site])["distributions"]}


def test_agrees_with_importlib_metadata_over_this_venv() -> None:
    site = sysconfig.get_paths()["purelib"]
    ours = _by_probe(site)
    assert len(ours) > 10 and "packaging" in ours  # the venv has envdoctor's dependencies
    assert ours == _by_importlib(site)


def test_agrees_on_odd_metadata(site: Path) -> None:
    make_dist(site, "folded", "1.0", metadata=("Metadata-Version: 2.1\nName: folded\nVersion: 1.0\n"
                                              "License: BSD\n        \n        a blank-looking line continues it\n"
                                              "Requires-Dist: numpy>=1.0; python_version >= \"3.8\"\n"
                                              "Requires-Dist: torch[cuda]>=2.0; extra == \"gpu\"\n"
                                              "Summary: a\n  continued summary\n\nBody: not a header\n"))
    make_dist(site, "Mixed_Case.Name", "2.0rc1", ["requests"])
    egg = site / "legacy-0.5-py3.11.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Metadata-Version: 1.2\nName: legacy\nVersion: 0.5\n")
    (egg / "requires.txt").write_text("six\n\n[fast]\nujson>=5\n\n[:sys_platform == \"linux\"]\ndistro\n")
    ours = _by_probe(str(site))
    assert ours == _by_importlib(str(site))
    assert len(ours["folded"][2]) == 2  # the whitespace-only line inside License did not end the headers
    assert ours["legacy"][2] == ["six", 'ujson>=5; extra == "fast"', 'distro; sys_platform == "linux"']


@pytest.mark.parametrize("folder", ["dup_a", "dup_b"])
def test_the_first_of_a_name_wins_in_both(tmp_path: Path, folder: str) -> None:
    first, second = tmp_path / folder, tmp_path / "other"
    make_dist(first, "numpy", "1.26.4")
    make_dist(second, "NumPy", "2.1.0")
    ours = {canonicalize_name(d["name"]): d["version"] for d in probe.distributions([str(first), str(second)])["distributions"]}
    theirs = {canonicalize_name(d.metadata["Name"]): d.version
              for d in reversed(list(importlib.metadata.distributions(path=[str(first), str(second)])))}
    assert ours == theirs == {"numpy": "1.26.4"}
