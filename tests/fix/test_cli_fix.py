"""`envdoctor fix` through the CLI funnel: dry-run text and JSON, refusals, bad input, apply, rollback, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtools import freeze

from envdoctor._cli import main


def _args(python: str, wheelhouse: Path, *extra: str) -> list[str]:
    return ["fix", "--python", python, "--no-index", "--find-links", str(wheelhouse), *extra]


def _req(tmp_path: Path, text: str) -> str:
    path = tmp_path / "requirements.txt"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_dry_run_prints_exact_commands_and_changes_nothing(tmp_path, make_venv, wheelhouse, capsys) -> None:  # type: ignore[no-untyped-def]
    python = make_venv("alpha==1.0", "beta==1.0")
    before = freeze(python)
    rc = main(_args(python, wheelhouse, "-r", _req(tmp_path, "beta==2.0\n"), "--dry-run", "--backend", "pip"))
    out = capsys.readouterr().out
    assert rc == 0
    assert f"$ {python} -m pip install" in out and "beta==2.0" in out
    assert "alpha                        1.0 -> 2.0" in out
    assert "written when the plan is applied: beta==2.0, alpha==2.0" in out  # the -c file does not exist yet
    assert freeze(python) == before
    rc = main(_args(python, wheelhouse, "-r", _req(tmp_path, "beta==2.0\n"), "--dry-run", "--format", "json"))
    data = json.loads(capsys.readouterr().out)
    assert rc == 0 and data["schema_version"] == 1 and data["plan"]["ok"] is True
    assert data["plan"]["steps"][0]["packages"] == ["beta==2.0"]
    assert data["plan"]["resolutions"][0]["backend"] == "uv"


def test_refused_plan_exits_1_and_names_the_lines(tmp_path, make_venv, wheelhouse, capsys) -> None:  # type: ignore[no-untyped-def]
    python = make_venv()
    rc = main(_args(python, wheelhouse, "-r", _req(tmp_path, "gamma==1.0\nbeta==2.0\n"), "--yes"))
    out = capsys.readouterr().out
    assert rc == 1
    assert "refused:" in out and "requirements.txt:1" in out and "nothing was changed" in out


@pytest.mark.parametrize("argv, needle", [
    pytest.param(["fix", "-r", "/nonexistent/req.txt"], "no such requirements file", id="missing-file"),
    pytest.param(["fix", "--matrix", "no-such-matrix", "--dry-run"], "unknown matrix", id="unknown-matrix"),
    pytest.param(["fix", "--resume", "--python", "/nonexistent/python"], "no such interpreter", id="bad-python"),
])
def test_bad_input_is_one_line_and_exit_2(argv, needle, capsys) -> None:  # type: ignore[no-untyped-def]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2
    assert needle in err and "Traceback" not in err
    assert err.startswith("envdoctor: error:")


def test_apply_then_failure_rolls_back_with_exit_1(tmp_path, make_venv, wheelhouse, capsys) -> None:  # type: ignore[no-untyped-def]
    python = make_venv("alpha==1.0")
    assert main(_args(python, wheelhouse, "-r", _req(tmp_path, "alpha==2.0\n"), "--yes")) == 0
    assert "alpha                        1.0 -> 2.0" in capsys.readouterr().out
    before = freeze(python)
    rc = main(_args(python, wheelhouse, "-r", _req(tmp_path, "alpha==2.0\nclash==1.0\n"), "--yes", "--backend", "pip"))
    out = capsys.readouterr().out
    assert rc == 1
    assert "fix failed at step 1" in out and "rolled back (verified: pip freeze equals the one before)" in out
    assert freeze(python) == before


def test_resume_without_an_interrupted_fix_is_a_usage_error(make_venv, capsys) -> None:  # type: ignore[no-untyped-def]
    python = make_venv()
    assert main(["fix", "--resume", "--python", python]) == 2
    assert "no interrupted fix" in capsys.readouterr().err
