"""Certification: probes in tiers run in subprocesses, a signed certificate per environment and matrix, and its status.

This package's __init__ imports nothing: `guard()` imports `envdoctor._certify.store` on every start of a
training script, and Python runs this file first. The public names load on first use (PEP 562).
"""

from __future__ import annotations

import os

from .._lazy import load

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the guard imports this package
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

__all__ = [
    "Certificate",
    "CertificateStatus",
    "Outcome",
    "ProbeContext",
    "ProbeSpec",
    "all_probes",
    "certificate_status",
    "register_probe",
    "validate_probe_params",
]
_LAZY = {
    "Certificate": ".store", "CertificateStatus": ".store", "Outcome": ".registry", "ProbeContext": ".registry",
    "ProbeSpec": ".registry", "all_probes": ".registry", "register_probe": ".registry",
    "validate_probe_params": ".params",
}


def __getattr__(name: str) -> Any:
    return load(__name__, globals(), _LAZY, name)


if TYPE_CHECKING:  # pragma: no cover
    from .params import validate_probe_params
    from .registry import Outcome, ProbeContext, ProbeSpec, all_probes, register_probe
    from .store import Certificate, CertificateStatus, Here


def _here_for(env: Any) -> Here:
    """The judging context for an inspected Environment (possibly another interpreter, or a declared GPU)."""
    from .fingerprint import python_id
    from .gpuid import GpuIdentity
    from .store import Here

    gpu = env.gpu
    if gpu.source == "declared" and gpu.available:
        ident = GpuIdentity((), (gpu.name,), "", "declared", f"declared GPU {gpu.name}")
    elif gpu.available and gpu.kind == "cuda":
        ident = GpuIdentity((gpu.uuid,) if gpu.uuid else (), (gpu.name,), gpu.driver_version, gpu.source,
                            "" if gpu.uuid else f"the GPU was {gpu.source} ({gpu.name}), so its UUID is unknown")
    else:
        ident = GpuIdentity((), (), "", "none", gpu.reason or "no GPU")
    markers = env.markers
    return Here(tuple(env.sys_path), env.prefix,
                python_id(markers.get("implementation_name"), markers.get("python_full_version")), lambda: ident)


def certificate_status(matrix: Any, env: Any = None, *, tier: int = 0, device: str | None = None,
                       deep: bool = False) -> CertificateStatus:
    """Whether a valid certificate exists for `matrix` (a reference or a loaded Matrix) in `env` (this one by default).

    Cheap: no torch, no probes. `envdoctor check` shows its reason. `deep` also hashes the certified packages'
    files against their RECORDs (seconds).
    """
    from .store import resolve, status

    source = getattr(matrix, "source", None)
    matrix_file = os.fspath(source) if source else resolve(os.fspath(matrix))
    return status(matrix_file, tier=tier, device=device, env=None if env is None else _here_for(env), deep=deep)
