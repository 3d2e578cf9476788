"""`envdoctor fix`: resolve a target first, plan exact installer steps, apply them, roll back on any failure."""

from __future__ import annotations

from .execute import FixResult, NullReporter, Reporter, apply_plan
from .plan import Change, Plan, Step, plan_fix
from .targets import Target, TargetPackage, from_matrix, from_requirements, load_target

__all__ = [
    "Change",
    "FixResult",
    "NullReporter",
    "Plan",
    "Reporter",
    "Step",
    "Target",
    "TargetPackage",
    "apply_plan",
    "from_matrix",
    "from_requirements",
    "load_target",
    "plan_fix",
]
