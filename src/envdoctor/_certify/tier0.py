"""Tier 0 is the check itself (envdoctor check), run in-process: it reads metadata only and never imports torch.

Two results: `check` (every rule but the GPU's) and `device` (the GPU rules, and whether the matrix can be
certified for this device at all). A certificate needs both to pass (issue 16: certification that
contradicts check is no certification). A CPU certificate needs a matrix that declares a CPU workload: no
`[gpu.cuda]` rule, or one with `required = false`.
"""

from __future__ import annotations

from typing import Any

from .registry import FAIL, PASS
from .runner import ProbeResult


def cpu_workload(matrix: Any) -> str | None:
    """How the matrix declares a CPU workload, or None when it needs a CUDA GPU (no CPU certificate then)."""
    rule = matrix.gpu.cuda
    if rule is None:
        return "it has no [gpu.cuda] rule"
    if not rule.required:
        return "its [gpu.cuda] rule has required = false"
    return None


def _join(messages: list[str]) -> str:
    return "; ".join(messages[:3]) + (f"; and {len(messages) - 3} more" if len(messages) > 3 else "")


def check_result(matrix: Any, env: Any, device: str = "cuda",
                 not_run: tuple[str, ...] = ()) -> tuple[ProbeResult, ProbeResult, Any]:
    """The check of `env` against a loaded matrix as two tier-0 results (`check`, `device`), and the report.

    `not_run` names the probes certify will not run on this device (they need a GPU): the device result says so.
    """
    import time

    from .._check import check_environment

    start = time.monotonic()
    report = check_environment(matrix, env, None)
    took = round(time.monotonic() - start, 2)
    gpu = [f for f in report.findings if f.kind.value == "gpu"]
    rest = [f for f in report.findings if f.kind.value != "gpu"]
    fails = [f.message for f in rest if f.status.value == "fail"]
    warns = [f.message for f in rest if f.status.value == "warn"]
    details = {"fail": fails, "warn": warns}
    if fails:
        check = ProbeResult("check", 0, FAIL, f"{len(fails)} problem(s): {_join(fails)}", took, details)
    else:
        extra = f", {len(warns)} warning(s)" if warns else ""
        check = ProbeResult("check", 0, PASS, f"{len(rest)} rules checked, none failed{extra}", took, details)
    gpu_fails = [f.message for f in gpu if f.status.value == "fail"]
    declared = cpu_workload(matrix) if device == "cpu" else None
    dev_details: dict[str, Any] = {"fail": gpu_fails, "not_run": list(not_run), "device": device}
    if device == "cpu" and declared is None:
        reason = matrix.gpu.cuda.reason
        gpu_fails = [f"{matrix.ref} needs a CUDA GPU ([gpu.cuda] required: {reason}); a CPU certificate needs a "
                     "matrix that declares a CPU workload (no [gpu.cuda] rule, or required = false)", *gpu_fails]
        dev_details["fail"] = gpu_fails
    if gpu_fails:
        return check, ProbeResult("device", 0, FAIL, _join(gpu_fails), 0.0, dev_details), report
    if device == "cpu":
        dev_details["cpu_only"] = True
        skipped = f"; not run on the CPU: {', '.join(not_run)}" if not_run else ""
        why = f"CPU only: the matrix declares a CPU workload ({declared}){skipped}"
    else:
        why = f"cuda: {len(gpu)} GPU rule(s) checked, none failed"
    return check, ProbeResult("device", 0, PASS, why, 0.0, dev_details), report


# Failures `envdoctor fix` can repair (it changes packages); a missing GPU or a wrong Python it cannot.
FIXABLE_KINDS = frozenset({"package", "missing", "absent", "known-bad", "consistency"})


def fixable(report: Any) -> bool:
    """Whether `envdoctor fix` would help with a check report's failures."""
    return any(f.status.value == "fail" and f.kind.value in FIXABLE_KINDS for f in report.findings)
