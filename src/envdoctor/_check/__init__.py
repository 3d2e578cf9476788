"""Check an environment against a matrix: every finding at once, ordered by root cause.

Each rule kind of the matrix registry has its checker (`rules.py`, `gpu.py`, registered with `@checks`) or
is listed in `registry.ELSEWHERE` with the command that reads it; the installed set is checked on its own
(`installed.py`: requirements met, metadata readable) whatever the matrix says.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from .._env.environment import Environment, inspect_environment
from .._env.gpu import GpuInfo
from .._matrix.kinds import KINDS
from .._matrix.loader import DEFAULT_MATRIX, command_ref, load_matrix, matrix_for_model
from .._matrix.model import Matrix
from . import gpu as _gpu
from . import model as _model
from . import rules as _rules
from .findings import CertificateSummary, Finding, Kind, Report, Status
from .installed import consistency, metadata
from .model import load_model_config, model_types, summary
from .registry import CHECKERS, Context

_REGISTERED = (_rules, _gpu, _model)  # importing them registers their checkers

__all__ = ["CertificateSummary", "Finding", "Report", "Status", "check", "check_environment", "load_model_config",
           "matrix_for_config"]


def matrix_for_config(config: dict[str, Any]) -> str:
    """The matrix `check --model` uses without --matrix: the family matrix of the config's model types, else the
    default one."""
    return matrix_for_model([t.name for t in model_types(config)]) or DEFAULT_MATRIX


def _matrix_status(matrix: Matrix) -> Iterator[Finding]:
    if matrix.status != "current":
        yield Finding(Kind.MATRIX, Status.WARN, matrix.ref,
                      f"matrix {matrix.ref} is marked {matrix.status}: {matrix.status_reason or 'see its description'}",
                      reason=matrix.status_reason or "")


def _certificate(matrix: Matrix, summary: CertificateSummary | None) -> Iterator[Finding]:
    if summary is not None and summary.readable:
        yield Finding(Kind.CERTIFICATE, Status.OK if summary.valid else Status.SKIP, "certificate",
                      f"certificate: {summary.reason}",
                      fix=None if summary.valid else f"envdoctor certify --matrix {command_ref(matrix)}")


def check_environment(matrix: Matrix, env: Environment, model_config: dict[str, Any] | None = None,
                      certificate: CertificateSummary | None = None) -> Report:
    """Apply every rule of `matrix` to `env`, with the certificate status the caller looked up; pure."""
    ref = command_ref(matrix)
    ctx = Context(matrix, env, model_config, ref)
    findings: list[Finding] = []
    findings += _matrix_status(matrix)
    for kind in KINDS:  # the kinds check does not apply are listed in registry.ELSEWHERE
        checker = CHECKERS.get(kind.section)
        if checker is not None:
            findings += checker(ctx)
    findings += consistency(matrix, env)
    findings += metadata(env)
    findings += _certificate(matrix, certificate)
    findings.sort(key=lambda f: f.sort_key)
    return Report(
        matrix=matrix.ref, matrix_status=matrix.status, python=str(env.python_version),
        executable=env.executable, gpu=env.gpu, runtime=env.runtime,
        tools={"pip": env.pip_version, "uv": env.uv},
        findings=tuple(findings), certificate=certificate,
        model=summary(model_config) if model_config is not None else None, command_ref=ref,
    )


def check(matrix: str | Matrix | None = None, *, model: str | os.PathLike[str] | None = None,
          gpu: str | GpuInfo | None = None, python: str | os.PathLike[str] | None = None,
          environment: Environment | None = None,
          certificate: Callable[[Matrix, Environment], CertificateSummary | None] | None = None) -> Report:
    """Check an environment (this one, `python=` another interpreter) against a matrix reference.

    Without a matrix: the family matrix of `model`'s config.json, else the default one. `certificate(matrix, env)`
    looks up the certificate status to show; `envdoctor.check` passes the store's.
    """
    config = load_model_config(model) if model is not None else None
    if matrix is None:
        matrix = matrix_for_config(config) if config is not None else DEFAULT_MATRIX
    m = matrix if isinstance(matrix, Matrix) else load_matrix(matrix)
    env = environment if environment is not None else inspect_environment(python=python, gpu=gpu)
    return check_environment(m, env, config, certificate(m, env) if certificate is not None else None)


