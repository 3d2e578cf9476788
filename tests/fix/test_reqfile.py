"""A requirements file as the fix's target: its index options and constraints used, markers for the fixed environment."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from fixtools import freeze

from envdoctor._cli import main
from envdoctor._env.environment import facts_of, from_facts
from envdoctor._fix.targets import from_requirements


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_the_files_index_options_and_constraints_are_used(tmp_path, make_venv, wheelhouse, capsys) -> None:  # type: ignore[no-untyped-def]
    # Before, pip-api dropped the -f/--no-index/-c lines: beta resolved to 2.0 (or not at all, with no index).
    python = make_venv("alpha==1.0")
    req = _write(tmp_path, "requirements.txt", f"--no-index\n-f {wheelhouse}\n-c cons.txt\nbeta\n")
    _write(tmp_path, "cons.txt", "beta<2\n")
    rc = main(["fix", "-r", str(req), "--python", python, "--yes", "--backend", "uv"])
    assert rc == 0, capsys.readouterr()
    assert {"alpha==1.0", "beta==1.0"} <= set(freeze(python).splitlines())


def test_markers_are_evaluated_for_the_fixed_environment_fake_markers(tmp_path, make_venv) -> None:  # type: ignore[no-untyped-def]
    # Both interpreters are the same Python here, so the fixed environment's python_version is faked to 3.0
    # (the venv is real). Before, pip-api evaluated markers in envdoctor's own interpreter and dropped lines.
    from envdoctor._fix.verify import unmet

    env = from_facts(facts_of(make_venv()))
    req = _write(tmp_path, "requirements.txt", "delta==1.0 ; python_version < '3.1'\n")
    target = from_requirements(req)
    assert [p.name for p in target.packages] == ["delta"]  # kept: the fixed environment decides
    assert unmet(target, env) == []
    old = dataclasses.replace(env, markers={**env.markers, "python_version": "3.0"})
    assert unmet(target, old) == ["delta is not installed after the fix (requirements.txt:1)"]
