"""FixSession: plan → confirm → apply → one restart rule, for the CLI and the notebook alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtools import freeze

from envdoctor._fix.execute import FixResult, KernelView
from envdoctor._fix.plan import Plan
from envdoctor._fix.restart import StaleModule
from envdoctor._fix.session import FixRequest, FixSession, Outcome, Restart, SessionResult, restart_decision
from envdoctor._fix.targets import TargetKind
from envdoctor._resolver import Sources
from envdoctor.errors import UsageError

PLAN = Plan(target="t", kind=TargetKind.REQUIREMENTS, python="/p", prefix="/x", backend="pip", steps=(), changes=())
STALE = (StaleModule("alpha", "/x/alpha/__init__.py", "alpha", "1.0", "2.0"),)


@pytest.mark.parametrize(("result", "asked", "want"), [
    pytest.param(None, True, Restart.NOT_NEEDED, id="nothing applied"),
    pytest.param(FixResult(True, PLAN), True, Restart.NOT_NEEDED, id="nothing loaded was changed"),
    pytest.param(FixResult(True, PLAN, stale=STALE), False, Restart.ADVISED, id="stale here, not asked"),
    pytest.param(FixResult(True, PLAN, stale=STALE), True, Restart.KERNEL, id="stale here, --restart"),
    pytest.param(FixResult(True, PLAN, kernel=KernelView(42, ("native",))), True, Restart.KERNEL, id="the kernel mapped it"),
    pytest.param(FixResult(True, PLAN, kernel=KernelView(42)), True, Restart.NOT_NEEDED, id="the kernel mapped nothing"),
    pytest.param(FixResult(False, PLAN, stale=STALE), True, Restart.NOT_NEEDED, id="failed and rolled back"),
])
def test_one_restart_rule(result: FixResult | None, asked: bool, want: Restart) -> None:
    assert restart_decision(result, asked) is want


def test_exit_codes_follow_the_outcome() -> None:
    assert SessionResult(Outcome.PLANNED, PLAN).exit_code == 0
    assert SessionResult(Outcome.REFUSED, PLAN).exit_code == 1
    assert SessionResult(Outcome.DECLINED, PLAN).exit_code == 1
    assert SessionResult(Outcome.APPLIED, PLAN, FixResult(True, PLAN, stale=STALE), Restart.ADVISED).exit_code == 3


def _request(tmp_path: Path, text: str, python: str, offline: Sources, **kw: object) -> FixRequest:
    req = tmp_path / "requirements.txt"
    req.write_text(text, encoding="utf-8")
    return FixRequest(requirements=str(req), python=python, sources=offline, **kw)  # type: ignore[arg-type]


def test_a_no_changes_nothing_and_a_yes_applies(tmp_path: Path, make_venv, offline: Sources) -> None:  # type: ignore[no-untyped-def]
    python = make_venv("alpha==1.0")
    before = freeze(python)
    asked: list[Plan] = []
    done = FixSession(_request(tmp_path, "alpha==2.0\n", python, offline),
                      confirm=lambda plan: asked.append(plan) is not None).run()
    assert done.outcome is Outcome.DECLINED and done.result is None and len(asked) == 1
    assert freeze(python) == before
    done = FixSession(_request(tmp_path, "alpha==2.0\n", python, offline)).run()
    assert done.outcome is Outcome.APPLIED and done.restart is Restart.NOT_NEEDED and done.exit_code == 0
    assert "alpha==2.0" in freeze(python)
    again = FixSession(_request(tmp_path, "alpha==2.0\n", python, offline), confirm=lambda plan: 1 / 0).run()
    assert again.outcome is Outcome.NOTHING_TO_DO  # confirm is asked only for a plan that would change something


def test_restart_outside_a_kernel_is_refused_before_planning(tmp_path: Path, offline: Sources) -> None:
    request = FixRequest(requirements=str(tmp_path / "never-read.txt"), sources=offline, restart=True)
    with pytest.raises(UsageError, match="not running inside a Jupyter or Colab kernel"):
        FixSession(request).run()  # not "no such requirements file": nothing was read, planned or changed
