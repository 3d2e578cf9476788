"""The pre-commit hooks: the manifest names what pre-commit needs, and envdoctor-lint runs through `try-repo`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _hooks() -> dict[str, dict[str, object]]:
    yaml = pytest.importorskip("yaml")
    return {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))}


def test_the_manifest_declares_both_hooks() -> None:
    hooks = _hooks()
    lint, check = hooks["envdoctor-lint"], hooks["envdoctor-check"]
    assert lint["language"] == "python" and lint["types_or"] == ["python", "jupyter"]
    assert lint["additional_dependencies"] == ["transformers"]  # the hook's own venv needs versions to judge against
    assert check["language"] == "system" and check["pass_filenames"] is False
    for hook in hooks.values():
        assert str(hook["entry"]).split()[0] == "envdoctor" and hook["name"]


@pytest.mark.network
@pytest.mark.slow
def test_the_lint_hook_runs_through_pre_commit_try_repo(tmp_path: Path) -> None:
    """pre-commit builds envdoctor from this checkout (from the index: network) and the hook fails on a stale keyword."""
    pre_commit = shutil.which("pre-commit", path=str(Path(sys.executable).parent)) or shutil.which("pre-commit")
    if pre_commit is None or shutil.which("git") is None:
        pytest.skip("pre-commit or git is not installed")
    project = tmp_path / "project"
    project.mkdir()
    (project / "train.py").write_text(
        "from transformers import TrainingArguments\n"
        "args = TrainingArguments(output_dir='o', evaluation_strategy='steps')\n", encoding="utf-8")
    (project / "clean.py").write_text("print('fine')\n", encoding="utf-8")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    subprocess.run([*git, "add", "."], cwd=project, check=True)
    env = {"PRE_COMMIT_HOME": str(tmp_path / "cache"), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
           "HOME": str(tmp_path)}
    env.update({k: v for k, v in __import__("os").environ.items() if k.startswith(("PIP_", "UV_", "SSL_", "REQUESTS_"))})

    def hook(*files: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([pre_commit, "try-repo", str(ROOT), "envdoctor-lint", "--files", *files],
                              cwd=project, capture_output=True, text=True, env=env, timeout=900)

    stale = hook("train.py")
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert "evaluation_strategy" in stale.stdout and "eval_strategy" in stale.stdout
    clean = hook("clean.py")
    assert clean.returncode == 0, clean.stdout + clean.stderr
