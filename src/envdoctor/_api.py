"""Public entry points that join layers: `envdoctor.check` is the check with the certificate store's answer.

The check itself (`_check`) never reads the certificate store, because certify runs the check; this module
sits above both, as the CLI does, and is what `envdoctor.check` and `envdoctor check` call.
"""

from __future__ import annotations

import os

from ._check import check as _check
from ._check.findings import CertificateSummary, Report
from ._env.environment import Environment
from ._env.gpu import GpuInfo
from ._matrix.model import Matrix

__all__ = ["certificate_summary", "check"]


def certificate_summary(matrix: Matrix, env: Environment) -> CertificateSummary:
    """The certificate store's answer for `matrix` in `env`; a store that cannot be read says so, never raises."""
    from ._certify import certificate_status

    try:
        status = certificate_status(matrix, env)
    except Exception as e:  # a broken certificate store must never break the check
        return CertificateSummary(False, str(e), readable=False)
    return CertificateSummary(bool(status.valid), status.reason)


def check(matrix: str | Matrix | None = None, *, model: str | os.PathLike[str] | None = None,
          gpu: str | GpuInfo | None = None, python: str | os.PathLike[str] | None = None,
          environment: Environment | None = None) -> Report:
    """Check an environment (this one, `python=` another interpreter) against a matrix, with its certificate status.

    Without a matrix: the family matrix of `model`'s config.json (`matrix list` shows their model types), else
    the default matrix."""
    return _check(matrix, model=model, gpu=gpu, python=python, environment=environment,
                  certificate=certificate_summary)
