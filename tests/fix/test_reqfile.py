"""Requirements files read as pip reads them: -r/-c/-i/-f honoured, markers kept for the fixed environment."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from fixtools import freeze

from envdoctor._cli import main
from envdoctor._env.environment import facts_of, from_facts
from envdoctor._fix.targets import from_requirements
from envdoctor._requirements import read_requirements
from envdoctor.errors import UsageError


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_includes_constraints_options_hashes_and_origins(tmp_path: Path) -> None:
    (tmp_path / "wheels").mkdir()
    _write(tmp_path, "sub/base.txt", "alpha==2.0\n")
    _write(tmp_path, "sub/cons.txt", "beta<2\n")
    req = _write(tmp_path, "requirements.txt", "-r sub/base.txt\n-c sub/cons.txt\n--index-url http://127.0.0.1:9/s\n"
                 "-f wheels\nbeta \\\n  --hash=sha256:abc\nwh/gamma-1.0-py3-none-any.whl ; python_version > '3'\n"
                 "delta==1.0 ; python_version < '3.0'  # a marker for another interpreter\n")
    parsed = read_requirements(req)
    assert [(ln.requirement, ln.origin) for ln in parsed.lines][:3] == [
        ("alpha==2.0", "base.txt:1"), ("beta", "requirements.txt:5"),
        (f"gamma @ {(tmp_path / 'wh/gamma-1.0-py3-none-any.whl').as_uri()} ; python_version > '3'", "requirements.txt:7")]
    assert parsed.lines[3].requirement == "delta==1.0 ; python_version < '3.0'"  # kept: the target decides
    assert [c.requirement for c in parsed.constraints] == ["beta<2"]
    assert parsed.sources.index_url == "http://127.0.0.1:9/s"
    assert parsed.sources.find_links == (str(tmp_path / "wheels"),)


@pytest.mark.parametrize("text, needle", [
    pytest.param("alpha >>= 1\n", "req.txt:1: invalid requirement 'alpha >>= 1': Expected", id="bad-line"),
    pytest.param("alpha\nbeta\nalpha==2\n", "req.txt:3: alpha is already required at req.txt:1", id="twice"),
    pytest.param("-e .\n", "req.txt:1: editable installs (-e .)", id="editable"),
    pytest.param("--trusted-host h\nalpha\n", "req.txt:1: envdoctor fix cannot honour the option --trusted-host",
                 id="unknown-option"),
    pytest.param("-r nothere.txt\n", "req.txt:1: -r nothere.txt: no such requirements file", id="missing-include"),
    pytest.param("git+https://host.invalid/x.git\n", "a URL needs the package name", id="nameless-url"),
])
def test_bad_lines_are_one_line_naming_file_and_line(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(UsageError) as e:
        read_requirements(_write(tmp_path, "req.txt", text))
    assert needle in str(e.value) and "\n" not in str(e.value) and "Traceback" not in str(e.value)


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
