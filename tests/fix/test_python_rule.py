"""A matrix that cannot install on this Python: check and fix name the newer matrix of the family, or the Python."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from envdoctor._check import check
from envdoctor._fix import from_matrix, plan_fix
from envdoctor._matrix.loader import load_matrix
from envdoctor._render.check_text import render

HERE = ".".join(platform.python_version_tuple()[:2])  # e.g. 3.11
BELOW = f"<{HERE}"


def _family(root: Path, rules: dict[str, str]) -> None:
    (root / "fam").mkdir(parents=True)
    for version, spec in rules.items():
        (root / "fam" / f"{version}.toml").write_text(
            f'schema_version = 1\nname = "fam"\nversion = "{version}"\n\n[python]\nspecifier = "{spec}"\n'
            f'reason = "its torch has wheels for these"\n\n[[packages]]\nname = "alpha"\nspecifier = "==2.0"\n'
            f'reason = "the stack"\n', encoding="utf-8")


@pytest.mark.parametrize(("rules", "says"), [
    pytest.param({"1.0": BELOW, "2.0": ">=3.9", "3.0": BELOW}, "fam@2.0 admits it: envdoctor fix --matrix fam@2.0",
                 id="a-newer-matrix-admits-it"),
    pytest.param({"1.0": BELOW, "2.0": "<3.9"}, f"use a Python 3.{int(HERE.split('.')[1]) - 1} interpreter",
                 id="no-matrix-does-so-the-python"),
])
def test_check_and_fix_name_what_would_install(rules, says, tmp_path, monkeypatch, make_venv, offline) -> None:  # type: ignore[no-untyped-def]
    _family(tmp_path / "mats", rules)
    monkeypatch.setenv("ENVDOCTOR_MATRIX_PATH", str(tmp_path / "mats"))
    python = make_venv("alpha==1.0")
    report = check("fam@1.0", python=python)
    text = render(report)
    assert f"no version of fam@1.0 can install on Python {platform.python_version()}" in text and says in text
    assert "envdoctor fix --matrix fam@1.0" not in text  # fix would refuse: check does not send the user there
    assert all(f.fix != "envdoctor fix --matrix fam@1.0" for f in report.problems)
    plan = plan_fix(from_matrix(load_matrix("fam@1.0")), python=python, backend="pip", sources=offline)
    assert not plan.ok and any("fix does not change the interpreter" in p and says in p for p in plan.problems)


def test_colab_is_told_its_runtime(tmp_path, monkeypatch, make_venv) -> None:  # type: ignore[no-untyped-def]
    _family(tmp_path / "mats", {"1.0": BELOW})
    monkeypatch.setenv("ENVDOCTOR_MATRIX_PATH", str(tmp_path / "mats"))
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-fake")
    text = render(check("fam@1.0", python=make_venv()))
    assert "on Colab: Runtime > Change runtime type, a runtime version with Python 3." in text
