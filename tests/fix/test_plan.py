"""Plans: resolved first, steps in the matrix's order, protections and after-state breakage refuse; nothing changes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from fixtools import build_wheel, freeze

from envdoctor._env.environment import Runtime, facts_of, from_facts
from envdoctor._fix import from_matrix, from_requirements, plan_fix
from envdoctor._matrix.loader import load_matrix
from envdoctor._render.fix import plan_json, plan_text
from envdoctor._resolver import Sources

MATRIX = '''
[[install_groups]]
name = "first"
order = 1
[[install_groups]]
name = "second"
order = 2
[[packages]]
name = "beta"
specifier = "==2.0"
group = "second"
reason = "beta 2 is what we train with"
[[packages]]
name = "alpha"
specifier = ">=2"
group = "first"
reason = "alpha goes first, alone"
[[packages]]
name = "gamma"
specifier = "==1.0"
group = "second"
no_deps = true
reason = "gamma's own pins are stale, like axolotl 0.4.0's"
[[absent]]
name = "delta"
reason = "it fights the pins"
'''


def _requirements(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("backend", ["pip", "uv"])
def test_matrix_plan_orders_removal_groups_and_no_deps(backend, make_venv, offline, write_matrix) -> None:  # type: ignore[no-untyped-def]
    python = make_venv("alpha==1.0", "beta==1.0", "delta==1.0")
    before = freeze(python)
    plan = plan_fix(from_matrix(load_matrix(write_matrix(MATRIX))), python=python, backend=backend, sources=offline)
    assert plan.ok, plan.problems
    assert [s.kind for s in plan.steps] == ["uninstall", "install", "install", "install"]
    assert plan.steps[0].packages == ("delta",)
    assert plan.steps[1].packages == ("alpha==2.0",) and "group first" in plan.steps[1].title
    assert plan.steps[2].packages == ("beta==2.0",)
    assert plan.steps[3].packages == ("gamma==1.0",) and "--no-deps" in plan.steps[3].command
    assert "-c" in plan.steps[1].command and "-c" not in plan.steps[3].command
    # gamma's declared beta==1.0 is not met: said, not hidden (the seed's axolotl --no-deps case)
    assert any("gamma 1.0 requires beta==1.0" in w and "--no-deps" in w for w in plan.warnings)
    assert {(c.name, c.before, c.after) for c in plan.changes} >= {("delta", "1.0", None), ("alpha", "1.0", "2.0")}
    assert freeze(python) == before  # planning changes nothing
    text = plan_text(plan)
    assert "$ " + plan.steps[0].command[0] in text and "delta" in text
    assert '"kind": "uninstall"' in plan_json(plan)


def test_unsatisfiable_target_is_refused_in_the_files_words(tmp_path, make_venv, offline) -> None:  # type: ignore[no-untyped-def]
    python = make_venv()
    req = _requirements(tmp_path, "gamma==1.0\nbeta==2.0\n")
    plan = plan_fix(from_requirements(req), python=python, backend="pip", sources=offline)
    assert not plan.ok and not plan.steps
    (problem,) = plan.problems
    assert "gamma==1.0  (requirements.txt:1)" in problem and "beta==2.0  (requirements.txt:2)" in problem


def test_matrix_refusal_cites_each_rule_and_its_reason(make_venv, offline, write_matrix) -> None:  # type: ignore[no-untyped-def]
    python = make_venv()
    ref = write_matrix('[[packages]]\nname = "gamma"\nspecifier = "==1.0"\nreason = "The tool we need. More text"\n'
                       '[[packages]]\nname = "beta"\nspecifier = "==2.0"\nreason = "The new API"\n')
    plan = plan_fix(from_matrix(load_matrix(ref)), python=python, backend="uv", sources=offline)
    (problem,) = plan.problems
    assert "gamma==1.0  (testfix@1.0 [[packages]] gamma: The tool we need)" in problem
    assert "beta==2.0  (testfix@1.0 [[packages]] beta: The new API)" in problem


def test_protected_package_is_never_replaced_unless_allowed(make_venv, offline, write_matrix) -> None:  # type: ignore[no-untyped-def]
    python = make_venv("alpha==1.0", "beta==1.0")
    ref = write_matrix('[[packages]]\nname = "beta"\nspecifier = "==2.0"\nreason = "r"\n'
                       '[[protected]]\nname = "alpha"\nreason = "the platform needs it"\n')
    target = from_matrix(load_matrix(ref))
    plan = plan_fix(target, python=python, backend="uv", sources=offline)
    assert any("would change protected alpha 1.0 -> 2.0" in p and "--allow alpha" in p for p in plan.problems)
    allowed = plan_fix(target, python=python, backend="uv", sources=offline, allow=["alpha"])
    assert allowed.ok and any("allowed by --allow" in w for w in allowed.warnings)


def test_after_state_breakage_of_another_package_is_refused(tmp_path, make_venv, offline) -> None:  # type: ignore[no-untyped-def]
    python = make_venv("gamma==1.0")  # gamma needs beta==1.0
    req = _requirements(tmp_path, "beta==2.0\n")
    plan = plan_fix(from_requirements(req), python=python, backend="pip", sources=offline)
    assert any("gamma 1.0 requires beta==1.0, but beta 2.0 would be installed" in p for p in plan.problems)
    assert plan_fix(from_requirements(req), python=python, backend="pip", sources=offline, allow_broken=True).ok


def test_fake_colab_runtime_protects_the_preinstalled_stack(tmp_path, make_venv, offline) -> None:  # type: ignore[no-untyped-def]
    # Colab cannot exist here: the runtime flag is faked, everything else is a real venv and resolver.
    python = make_venv("alpha==1.0", "beta==1.0")
    env = from_facts(facts_of(python))
    env = dataclasses.replace(env, runtime=Runtime(notebook=True, colab=True))
    req = _requirements(tmp_path, "beta==2.0\n")
    plan = plan_fix(from_requirements(req), python=python, backend="uv", sources=offline, environment=env)
    assert any("protected alpha" in p and "Colab's preinstalled stack" in p for p in plan.problems)


def test_envdoctors_own_dependencies_are_always_protected(tmp_path) -> None:  # type: ignore[no-untyped-def]
    wh = tmp_path / "wh"
    wh.mkdir()
    build_wheel(wh, "packaging", "0.1")
    req = _requirements(tmp_path, "packaging==0.1\n")
    plan = plan_fix(from_requirements(req), backend="pip", sources=Sources(no_index=True, find_links=(str(wh),)),
                    allow=["packaging"])
    assert any("protected packaging" in p and "envdoctor's own dependency" in p for p in plan.problems)


def test_a_direct_reference_is_planned_under_the_uv_backend(tmp_path, make_venv, offline, wheelhouse) -> None:  # type: ignore[no-untyped-def]
    # uv's dry run prints '+ alpha @ file://...' with no version; before, the plan said "nothing to do".
    python = make_venv("alpha==2.0")
    req = _requirements(tmp_path, f"{wheelhouse / 'alpha-1.0-py3-none-any.whl'}\n")
    plan = plan_fix(from_requirements(req), python=python, backend="uv", sources=offline)
    assert plan.ok, plan.problems
    assert [(c.name, c.before, c.after) for c in plan.changes] == [("alpha", "2.0", "1.0")]
    assert plan.steps[0].packages[0].startswith("alpha @ file://")
