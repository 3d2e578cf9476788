"""Tier 0 is the check itself (envdoctor check), run in-process: it reads metadata only and never imports torch."""

from __future__ import annotations

from typing import Any

from .registry import FAIL, PASS
from .runner import ProbeResult


def check_result(matrix: Any, env: Any, device: str = "cuda") -> tuple[ProbeResult, Any]:
    """The check of `env` against a loaded matrix as a tier-0 probe result, and the report itself.

    With device "cpu" (certifying what a machine without a GPU can run, as CI does) the check's GPU findings
    do not apply and count as warnings; the certificate then says device "cpu" and the guard accepts it only
    for device "cpu" or on a machine without a GPU.
    """
    import time

    from .._check import check_environment

    start = time.monotonic()
    report = check_environment(matrix, env, None)
    took = round(time.monotonic() - start, 2)
    gpu_kind = {"gpu"} if device == "cpu" else set()
    fails = [f for f in report.findings if f.status.value == "fail" and f.kind.value not in gpu_kind]
    warns = [f for f in report.findings if f.status.value == "warn" or (f.status.value == "fail" and f.kind.value in gpu_kind)]
    details = {"fail": [f.message for f in fails], "warn": [f.message for f in warns]}
    if fails:
        head = "; ".join(f.message for f in fails[:3]) + (f"; and {len(fails) - 3} more" if len(fails) > 3 else "")
        return ProbeResult("check", 0, FAIL, f"{len(fails)} problem(s): {head}", took, details), report
    extra = f", {len(warns)} warning(s)" if warns else ""
    return ProbeResult("check", 0, PASS, f"{len(report.findings)} rules checked, none failed{extra}", took,
                       details), report


# Failures `envdoctor fix` can repair (it changes packages); a missing GPU or a wrong Python it cannot.
FIXABLE_KINDS = frozenset({"package", "missing", "absent", "known-bad", "consistency"})


def fixable(report: Any) -> bool:
    """Whether `envdoctor fix` would help with a check report's failures."""
    return any(f.status.value == "fail" and f.kind.value in FIXABLE_KINDS for f in report.findings)
