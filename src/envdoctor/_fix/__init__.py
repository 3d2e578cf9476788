"""`envdoctor fix`: resolve a target first, plan exact installer steps, apply them, roll back on any failure.

The names below load on first use (PEP 562), so that `check` can look for an interrupted fix's journal
(`_fix.workdir`, `_fix.recover`) without importing the planner, the executor and the resolver.
"""

from __future__ import annotations

from .._lazy import load

_LAZY = {
    "Change": ".plan",
    "FixRequest": ".session",
    "FixResult": ".execute",
    "FixSession": ".session",
    "NullReporter": ".execute",
    "Outcome": ".session",
    "Plan": ".plan",
    "ProtectedBy": ".protect",
    "Protection": ".protect",
    "Reporter": ".execute",
    "Restart": ".session",
    "Resumed": ".resume",
    "SessionResult": ".session",
    "Step": ".plan",
    "StepKind": ".plan",
    "Target": ".targets",
    "TargetPackage": ".targets",
    "apply_plan": ".execute",
    "from_matrix": ".targets",
    "from_requirements": ".targets",
    "load_target": ".targets",
    "plan_fix": ".plan",
    "restart_decision": ".session",
}

__all__ = [
    "Change",
    "FixRequest",
    "FixResult",
    "FixSession",
    "NullReporter",
    "Outcome",
    "Plan",
    "ProtectedBy",
    "Protection",
    "Reporter",
    "Restart",
    "Resumed",
    "SessionResult",
    "Step",
    "StepKind",
    "Target",
    "TargetPackage",
    "apply_plan",
    "from_matrix",
    "from_requirements",
    "load_target",
    "plan_fix",
    "restart_decision",
]


def __getattr__(name: str) -> object:
    return load(__name__, globals(), _LAZY, name)


TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from .execute import FixResult, NullReporter, Reporter, apply_plan
    from .plan import Change, Plan, Step, StepKind, plan_fix
    from .protect import ProtectedBy, Protection
    from .resume import Resumed
    from .session import FixRequest, FixSession, Outcome, Restart, SessionResult, restart_decision
    from .targets import Target, TargetPackage, from_matrix, from_requirements, load_target
