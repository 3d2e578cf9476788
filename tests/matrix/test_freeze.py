"""`matrix freeze`: a matrix written from an environment; the environment is clean against its own freeze."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from packaging.version import Version

from envdoctor._check import check
from envdoctor._cli import main
from envdoctor._env.environment import from_facts, inspect_environment
from envdoctor._env.gpu import declared
from envdoctor._matrix.freeze import freeze, range_of
from envdoctor._matrix.loader import load_matrix
from envdoctor._matrix.trust import rules_without_evidence
from envdoctor.errors import UsageError


@pytest.mark.parametrize("ranges", [False, True], ids=["pins", "ranges"])
def test_this_environment_is_clean_against_its_own_freeze(tmp_path: Path, ranges: bool) -> None:
    env = inspect_environment(gpu=declared("none"))
    path = tmp_path / "mine.toml"
    path.write_text(freeze(env, "mine", ranges=ranges), encoding="utf-8")
    matrix = load_matrix(path)
    assert rules_without_evidence(matrix) == []
    assert matrix.package("packaging") is not None and matrix.package("pip") is None
    report = check(matrix, environment=env)
    assert [f for f in report.findings if f.status.name == "FAIL"] == []
    assert report.exit_code == 0


@pytest.mark.parametrize(("version", "want"), [
    ("5.23.0", ">=5.23.0,<6"), ("0.21.2", ">=0.21.2,<0.22"), ("2.13.0+cpu", ">=2.13.0,<3"),
])
def test_ranges(version: str, want: str) -> None:
    assert range_of(Version(version)) == want


def _facts(dists: list[dict]) -> dict:  # type: ignore[type-arg]
    markers = {"python_full_version": "3.12.3", "sys_platform": "linux", "platform_machine": "x86_64"}
    return {"executable": "/x/bin/python", "markers": markers, "distributions": dists}


def test_local_builds_vcs_sources_and_tooling() -> None:
    """torch +cu118 gets its symbolic index; a git install keeps its commit; pip itself is left out."""
    vcs = json.dumps({"url": "https://github.com/axolotl-ai-cloud/axolotl", "vcs_info": {"vcs": "git", "commit_id": "1427d5b"}})
    env = from_facts(_facts([
        {"name": "torch", "version": "2.4.0+cu118", "path": "/s/torch-2.4.0+cu118.dist-info"},
        {"name": "axolotl", "version": "0.4.0", "path": "/s/axolotl-0.4.0.dist-info", "direct_url": vcs},
        {"name": "pip", "version": "24.0", "path": "/s/pip-24.0.dist-info"},
    ]))
    text = freeze(env, "colab", version="2024.06")
    assert 'local = "cu118"' in text and 'index_url = "pytorch:cu118"' in text
    assert 'source = "git+https://github.com/axolotl-ai-cloud/axolotl@1427d5b"' in text
    assert 'name = "pip"' not in text
    assert 'specifier = "==3.12.*"' in text


def test_freeze_only_and_bad_names() -> None:
    env = from_facts(_facts([{"name": "trl", "version": "0.8.6", "path": "/s/trl"},
                             {"name": "rich", "version": "13.0", "path": "/s/rich"}]))
    assert 'name = "rich"' not in freeze(env, "t", only=["trl"])
    with pytest.raises(UsageError, match="not installed"):
        freeze(env, "t", only=["peft"])
    with pytest.raises(UsageError, match="--name"):
        freeze(env, "Bad Name")
    with pytest.raises(UsageError, match="did you mean 'trl'"):
        freeze(env, "t", only=["tlr"])


@pytest.mark.parametrize(("option", "value", "message"), [
    pytest.param("version", "x y", "--version 'x y': not a version number", id="bad-version"),
    pytest.param("extends", "lama31", "--extends lama31: unknown matrix 'lama31' (did you mean 'llama31'?)",
                 id="unknown-base"),
    pytest.param("extends", "./no-such-base.toml", "--extends ./no-such-base.toml: matrix file not found",
                 id="missing-base-file"),
])
def test_freeze_refuses_to_write_a_matrix_that_would_not_load(option: str, value: str, message: str) -> None:
    env = from_facts(_facts([{"name": "trl", "version": "0.8.6", "path": "/s/trl"}]))
    with pytest.raises(UsageError, match=re.escape(message)):
        freeze(env, "t", **{option: value})


def test_cli_freeze_writes_toml_on_stdout(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["matrix", "freeze", "--name", "here", "--only", "packaging,pydantic", "--extends", "drift"]) == 0
    out = capsys.readouterr().out
    path = tmp_path / "here.toml"
    path.write_text(out, encoding="utf-8")
    m = load_matrix(path)
    assert {p.name for p in m.packages} == {"packaging", "pydantic"} and m.chain[0].startswith("drift@")
