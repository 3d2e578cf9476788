"""verify imports more than the target: an empty wheel is not "it imports", and a dependent the fix breaks is caught."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtools import build_wheel, freeze, pip

from envdoctor._fix import apply_plan, from_requirements, plan_fix
from envdoctor._fix.execute import FixResult
from envdoctor._fix.restart import StaleModule
from envdoctor._render.fix import result_text
from envdoctor._resolver import Sources


@pytest.fixture
def own_wheels(tmp_path: Path) -> Path:
    """lib 2.0 drops the module that user 1.0 imports; hollow 1.0 is a wheel with nothing to import."""
    folder = tmp_path / "own"
    folder.mkdir()
    build_wheel(folder, "lib", "1.0", files={"lib/__init__.py": "", "lib/old_api.py": "X = 1\n"})
    build_wheel(folder, "lib", "2.0", files={"lib/__init__.py": ""})
    build_wheel(folder, "user", "1.0", ["lib"], files={"user/__init__.py": "from lib import old_api\n"})
    build_wheel(folder, "hollow", "1.0", files={"hollow-1.0.dist-info/top_level.txt": ""})
    return folder


def _apply(tmp_path: Path, python: str, text: str, wheels: Path) -> FixResult:
    req = tmp_path / "requirements.txt"
    req.write_text(text, encoding="utf-8")
    target = from_requirements(req)
    plan = plan_fix(target, python=python, backend="pip", sources=Sources(no_index=True, find_links=(str(wheels),)))
    assert plan.ok, plan.problems
    return apply_plan(plan, target)


def test_a_dependent_that_the_new_version_breaks_at_import_is_rolled_back(tmp_path, make_venv, own_wheels) -> None:  # type: ignore[no-untyped-def]
    python = make_venv()
    pip(python, "install", "--no-index", "--find-links", str(own_wheels), "lib==1.0", "user==1.0")
    before = freeze(python)
    result = _apply(tmp_path, python, "lib==2.0\n", own_wheels)
    assert not result.ok
    assert "import user (user, installed, not changed) imported before the fix and fails after it" in result.reason
    assert result.rollback is not None and result.rollback.verified
    assert freeze(python) == before


def test_an_empty_wheel_is_not_an_import_that_worked(tmp_path, make_venv, own_wheels) -> None:  # type: ignore[no-untyped-def]
    python = make_venv()
    before = freeze(python)
    result = _apply(tmp_path, python, "hollow==1.0\n", own_wheels)
    assert not result.ok and "hollow 1.0 installed no importable module" in result.reason
    assert freeze(python) == before


def test_stale_modules_are_reported_by_package_not_by_submodule() -> None:
    from envdoctor._fix.plan import Plan
    from envdoctor._fix.targets import TargetKind

    plan = Plan(target="t", kind=TargetKind.MATRIX, python="/p", prefix="/x", backend="pip", steps=(), changes=())
    stale = tuple(StaleModule(m, f"/x/{m}.py", "torch", "2.8.0", "2.4.0")
                  for m in ("torch", "torch.nn", "torch.cuda", "torch._C", "functorch"))
    text = result_text(FixResult(True, plan, changed={"torch": ("2.8.0", "2.4.0")}, stale=stale))
    assert "  torch 2.8.0 -> 2.4.0 (import functorch, torch, and 3 submodules)" in text
    assert "torch.nn" not in text


PIP_CONFLICT = """$ python -m pip install -c constraints.txt torch==2.4.0
Looking in links: /wheels
Processing /wheels/filelock-3.16.1-py3-none-any.whl
ERROR: Cannot install torch==2.4.0 because these package versions have conflicting dependencies.

The conflict is caused by:
    The user requested torch==2.4.0
    The user requested (constraint) torch==2.4.0+cu121

To fix this you could try to:
1. loosen the range of package versions you've specified
2. remove package versions to allow pip attempt to solve the dependency conflict

ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/
"""


def test_a_failed_steps_summary_keeps_the_installers_explanation(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from envdoctor._fix.execute import _tail

    log = tmp_path / "fix.log"
    log.write_text("$ earlier step\nERROR: an older failure\n" + PIP_CONFLICT, encoding="utf-8")
    summary = _tail(log)
    assert summary.startswith("ERROR: Cannot install torch==2.4.0")
    assert "The user requested (constraint) torch==2.4.0+cu121" in summary  # the constraint from another index
    assert "an older failure" not in summary
