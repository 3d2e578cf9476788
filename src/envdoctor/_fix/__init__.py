"""`envdoctor fix`: resolve a target first, plan exact installer steps, apply them, roll back on any failure."""

from __future__ import annotations

from .execute import FixResult, NullReporter, Reporter, apply_plan
from .plan import Change, Plan, Step, StepKind, plan_fix
from .protect import ProtectedBy, Protection
from .resume import Resumed
from .session import FixRequest, FixSession, Outcome, Restart, SessionResult, restart_decision
from .targets import Target, TargetPackage, from_matrix, from_requirements, load_target

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
