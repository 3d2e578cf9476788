"""Against the real package index (pip's and uv's default, no host written here) with real small packages."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from fixtools import freeze, pip

from envdoctor._fix import apply_plan, from_requirements, plan_fix
from envdoctor._resolver import Requested, resolve

pytestmark = pytest.mark.network


@pytest.mark.parametrize("backend", ["pip", "uv"])
def test_real_index_conflict_names_both_sides(backend: str) -> None:
    res = resolve([Requested("requests==2.31.0", "req.txt:1"), Requested("urllib3==1.20", "req.txt:2")],
                  backend=backend, python_version="3.11", platform="linux")
    assert not res.ok
    assert "requests" in res.conflict.summary and "urllib3" in res.conflict.summary
    assert {r.origin for r in res.conflict.requested} == {"req.txt:1", "req.txt:2"}
    assert any(s.dependent == "requests" and s.name == "urllib3" for s in res.conflict.sides)


def test_real_index_fix_and_rollback(tmp_path: Path, make_venv) -> None:  # type: ignore[no-untyped-def]
    python = make_venv()
    pip(python, "install", "idna==3.6", "six==1.16.0")
    req = tmp_path / "requirements.txt"
    req.write_text("idna==3.7\nsix==1.17.0\n", encoding="utf-8")
    target = from_requirements(req)
    plan = plan_fix(target, python=python, backend="auto")
    assert plan.ok, plan.problems
    result = apply_plan(plan, target)
    assert result.ok, result.reason
    assert {"idna==3.7", "six==1.17.0"} <= set(freeze(python).splitlines())
    # and a failing step on the real index rolls back to exactly that
    before = freeze(python)
    req.write_text("idna==3.6\nsix==1.16.0\nnot-a-package-envdoctor-test==0.0.1 ; python_version < '0'\n")
    plan = plan_fix(from_requirements(req), python=python, backend="pip")
    assert plan.ok
    step = plan.steps[0]
    gone = dataclasses.replace(step, command=step.command + ("--no-index",))  # the index vanishes after planning
    plan = dataclasses.replace(plan, steps=(gone,))
    result = apply_plan(plan)
    assert not result.ok and result.rollback.verified
    assert freeze(python) == before
