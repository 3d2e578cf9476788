"""envdoctor: check, fix, certify and explain LLM fine-tuning environments against versioned matrices.

Importing envdoctor is cheap and never imports torch, transformers or bitsandbytes: the public names
below are loaded on first use.
"""

from __future__ import annotations

from ._lazy import load
from ._version import __version__
from .errors import (
    CompatError,
    EnvDoctorError,
    FixError,
    InspectionError,
    MatrixError,
    NotCertifiedError,
    ResolutionError,
    RestartRequired,
)

# public name -> module that defines it (imported on first attribute access, PEP 562)
_LAZY = {
    "check": "._api",
    "Report": "._check",
    "Finding": "._check",
    "Status": "._check",
    "load_matrix": "._matrix.loader",
    "available_matrices": "._matrix.loader",
    "Matrix": "._matrix.model",
    "inspect_environment": "._env.environment",
    "Environment": "._env.environment",
    "GpuInfo": "._env.gpu",
    "guard": "._certify.guard",
    "explain": "._drift.explain",
    "install_excepthook": "._drift.explain",
    "compat": ".compat",
    "testing": ".testing",
    "validate_matrix": "._matrix.trust",
    "diff_matrices": "._matrix.diff",
    "freeze_matrix": "._matrix.freeze",
    "certificate_status": "._certify",
    "CertificateStatus": "._certify",
    "Certificate": "._certify",
    "register_probe": "._certify",
    "Outcome": "._certify",
    "ProbeContext": "._certify",
    "GuardSkippedWarning": "._certify.guard",
    "CompatWarning": ".compat",
    "fix": "._fix.api",
    "plan_fix": "._fix.api",
    "FixResult": "._fix",
    "Plan": "._fix",
    "resolve": "._resolver",
    "lock_environment": "._lock",
    "Lock": "._lock",
    "load_ipython_extension": "._notebook",
}
_ALIASES = {"available_matrices": "available", "diff_matrices": "diff", "freeze_matrix": "freeze"}
_MODULES = {"compat", "testing"}  # names that are modules, not attributes of one

__all__ = [
    "__version__",
    "CompatError",
    "EnvDoctorError",
    "FixError",
    "InspectionError",
    "MatrixError",
    "NotCertifiedError",
    "ResolutionError",
    "RestartRequired",
    *_LAZY,
]


def __getattr__(name: str) -> object:
    return load(__name__, globals(), _LAZY, name, aliases=_ALIASES, modules=_MODULES)


def __dir__() -> list[str]:
    return sorted(__all__)


TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: `import envdoctor` stays ~1 ms
if TYPE_CHECKING:  # pragma: no cover
    from . import compat, testing
    from ._api import check
    from ._certify import (
        Certificate,
        CertificateStatus,
        Outcome,
        ProbeContext,
        certificate_status,
        register_probe,
    )
    from ._certify.guard import GuardSkippedWarning, guard
    from ._check import Finding, Report, Status
    from ._drift.explain import explain, install_excepthook
    from ._env.environment import Environment, inspect_environment
    from ._env.gpu import GpuInfo
    from ._fix import FixResult, Plan
    from ._fix.api import fix, plan_fix
    from ._lock import Lock, lock_environment
    from ._matrix.diff import diff as diff_matrices
    from ._matrix.freeze import freeze as freeze_matrix
    from ._matrix.loader import available as available_matrices
    from ._matrix.loader import load_matrix
    from ._matrix.model import Matrix
    from ._matrix.trust import validate_matrix
    from ._notebook import load_ipython_extension
    from ._resolver import resolve
    from .compat import CompatWarning
