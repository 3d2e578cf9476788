"""`envdoctor check` as a user runs it: a fresh process, exit codes, JSON, one-line errors, no heavy imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from envdoctor._cli import main


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "envdoctor", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_check_json_has_schema_and_only_json_on_stdout(write_matrix) -> None:
    path = write_matrix('[[packages]]\nname = "pytest"\nreason = "r"\nevidence = ["e"]\n')
    proc = _run("check", "--matrix", str(path), "--format", "json")
    data = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stdout
    assert data["schema_version"] == 1 and data["ok"] is True
    assert {"kind", "status", "subject", "message", "reason", "evidence", "fix"} <= set(data["findings"][0])


def test_check_exit_1_on_problems(write_matrix, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_matrix('[[packages]]\nname = "surely-not-installed-pkg"\nreason = "needed"\nevidence = ["e"]\n')
    assert main(["check", "--matrix", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "surely-not-installed-pkg is not installed" in out and "why: needed" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param(["check", "--matrix", "no-such-matrix"], "unknown matrix 'no-such-matrix'", id="unknown-name"),
        pytest.param(["check", "--matrix", "./missing.toml"], "matrix file not found", id="missing-file"),
        pytest.param(["check", "--gpu", "t5"], "unknown GPU target 't5' (did you mean 't4'?)", id="bad-gpu"),
        pytest.param(["check", "--python", "/nonexistent/python"], "no such interpreter", id="bad-python"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], needle: str, write_matrix) -> None:
    if "--matrix" not in args:
        args = [*args, "--matrix", str(write_matrix(""))]
    proc = _run(*args)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_malformed_matrix_every_problem_no_traceback(write_matrix) -> None:
    path = write_matrix('[[packages]]\nname = "a"\nspecifer = "x"\n')
    proc = _run("check", "--matrix", str(path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "did you mean 'specifier'" in proc.stderr and "missing required key 'packages[0].reason'" in proc.stderr


def test_check_never_imports_heavy_modules(write_matrix, tmp_path: Path) -> None:
    path = write_matrix('[[packages]]\nname = "torch"\nreason = "r"\n')
    code = (
        "import sys\nfrom envdoctor._cli import main\n"
        f"main(['check', '--matrix', {str(path)!r}, '--format', 'json'])\n"
        "mods = ('torch', 'transformers', 'bitsandbytes', 'trl', 'peft', 'pip', 'pydantic', 'rich', 'envdoctor.training',\n"
        "        'envdoctor._fix.plan', 'envdoctor._fix.execute', 'envdoctor._fix.recover', 'envdoctor._resolver')\n"
        "print('LOADED', [m for m in mods if m in sys.modules], file=sys.stderr)\n"
    )
    cold = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "LOADED ['pydantic']" in cold.stderr, cold.stderr  # the first load validates the matrix
    warm = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "LOADED []" in warm.stderr, warm.stderr  # then the validated cache needs no pydantic either


def test_python_m_envdoctor_help_and_version() -> None:
    proc = _run("--help")
    assert proc.returncode == 0 and "envdoctor check" in proc.stdout
    assert _run("check", "--help").stdout.count("--matrix") >= 1
    assert _run("--version").stdout.startswith("envdoctor ")


def test_the_fix_hint_names_a_matrix_the_way_the_user_gave_it(write_matrix, capsys) -> None:  # type: ignore[no-untyped-def]
    path = write_matrix('[[packages]]\nname = "definitely-not-installed-pkg"\nreason = "r"\n', name="mystack",
                        version="2026.12.1")
    assert main(["check", "--matrix", str(path), "--gpu", "t4", "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    missing = next(f for f in data["findings"] if f["subject"] == "definitely-not-installed-pkg")
    assert missing["fix"] == f"envdoctor fix --matrix {path}"  # mystack@2026.12.1 would name no matrix
    assert data["matrix"] == "mystack@2026.12.1" and data["matrix_ref"] == str(path)
    main(["check", "--matrix", "llama31", "--gpu", "t4", "--format", "json"])
    bundled = json.loads(capsys.readouterr().out)
    assert bundled["matrix_ref"] == bundled["matrix"] and bundled["matrix"].startswith("llama31@")
