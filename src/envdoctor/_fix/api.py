"""The public entry points: `envdoctor.plan_fix(...)` and `envdoctor.fix(...)` by matrix reference or requirements file."""

from __future__ import annotations

import os
from collections.abc import Iterable

from .._resolver import Sources
from ..errors import ResolutionError
from .execute import FixResult, Reporter, apply_plan
from .plan import Plan
from .plan import plan_fix as _plan
from .targets import load_target


def plan_fix(
    matrix: str | None = None, *, requirements: str | os.PathLike[str] | None = None,
    python: str | os.PathLike[str] | None = None, backend: str = "auto", allow: Iterable[str] = (),
    allow_broken: bool = False, sources: Sources | None = None, trust_sources: bool = False,
) -> Plan:
    """The plan that `fix` would carry out (resolved with a real resolver); changes nothing.

    trust_sources: use the https indexes and URLs a matrix that is not bundled names (`--trust-sources`).
    """
    target = load_target(matrix, None if requirements is None else os.fspath(requirements), trust_sources=trust_sources)
    return _plan(target, python=python, backend=backend, allow=allow, allow_broken=allow_broken, sources=sources)


def fix(
    matrix: str | None = None, *, requirements: str | os.PathLike[str] | None = None,
    python: str | os.PathLike[str] | None = None, backend: str = "auto", allow: Iterable[str] = (),
    allow_broken: bool = False, sources: Sources | None = None, reporter: Reporter | None = None,
    trust_sources: bool = False,
) -> FixResult:
    """Bring the environment to the target; on a failed step it is restored (see `result.rollback`).

    Raises ResolutionError (changing nothing) when the plan is refused; `result.restart_required` says
    whether this process imported something the fix changed.
    """
    target = load_target(matrix, None if requirements is None else os.fspath(requirements), trust_sources=trust_sources)
    plan = _plan(target, python=python, backend=backend, allow=allow, allow_broken=allow_broken, sources=sources)
    if not plan.ok:
        raise ResolutionError("fix refused, nothing was changed:\n  " + "\n  ".join(plan.problems))
    return apply_plan(plan, target, reporter=reporter)
