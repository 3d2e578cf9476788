"""The README's two set-up commands stay true: CI runs the test command verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text(encoding="utf-8"))[:2]


def test_readme_opens_with_setup_and_test_commands() -> None:
    main, tests = _commands()
    assert main.endswith("envdoctor check") and "pip install ." in main
    assert tests.endswith("python -m pytest") and "torch==2.13.0" in tests
    # the gates run before the tests, as part of the same command
    assert tests.index("ruff check src tests") < tests.index("mypy") < tests.index("python -m pytest")


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    assert _commands()[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_the_first_command_installs_uv() -> None:
    """`pip install .` brings uv, so the first resolution uses it (pip is only the fallback)."""
    import tomllib
    from packaging.requirements import Requirement

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    assert "uv" in {Requirement(d).name for d in deps}
