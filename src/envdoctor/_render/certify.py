"""Render a certification as text for people or JSON for machines; both return str and never print."""

from __future__ import annotations

import json
import shlex
from typing import Any

from .._certify.registry import ProbeStatus

RESULT_SCHEMA_VERSION = 1
_MARK = {ProbeStatus.PASS: "pass", ProbeStatus.FAIL: "FAIL", ProbeStatus.INCONCLUSIVE: "INCONCLUSIVE",
         ProbeStatus.SKIPPED: "skipped"}


def _gpu_line(result: Any) -> str:
    g = result.gpu or {}
    if result.device != "cuda":
        return f"device cpu ({'GPU present: ' + str(g.get('name')) if g.get('available') else g.get('reason') or 'no GPU'})"
    return (f"device cuda: {g.get('name')}, compute capability {g.get('compute_capability')}, "
            f"driver {g.get('driver_version')} (CUDA {g.get('cuda_driver_version')}), {g.get('uuid')}")


def render_text(result: Any, verbose: bool = False) -> str:
    """The certification as a table: tier, probe, result, seconds, reason."""
    lines = [f"envdoctor certify: matrix {result.matrix_ref}, up to tier {result.tier}, {_gpu_line(result)}", ""]
    width = max([len(r.name) for r in result.results] + [5])
    lines.append(f"  tier  {'probe'.ljust(width)}  {'result'.ljust(12)}  {'time':>7}  reason")
    for r in result.results:
        lines.append(f"  {r.tier:<4}  {r.name.ljust(width)}  {_MARK[r.status].ljust(12)}  "
                     f"{r.duration_s:>6.1f}s  {r.reason}")
        if verbose or not r.status.ok:
            tail = r.details.get("stderr_tail") or r.details.get("traceback")
            if tail:
                lines += [f"  {'':4}  {'':{width}}    | {t}" for t in str(tail).splitlines()[-6:]]
    lines.append("")
    verdict = ("CERTIFIED" + (" (CPU only)" if result.device == "cpu" else "")) if result.certified else "NOT CERTIFIED"
    lines.append(f"{verdict}: {result.summary} ({result.duration_s:.1f} s in all)")
    if result.path:
        lines.append(f"certificate: {result.path}")
    return "\n".join(lines) + "\n"


def render_json(result: Any) -> str:
    """The certification as JSON with stable keys."""
    data = {
        "schema_version": RESULT_SCHEMA_VERSION,
        "certified": result.certified,
        "matrix": result.matrix_ref,
        "tier": result.tier,
        "device": result.device,
        "gpu": result.gpu,
        "duration_s": result.duration_s,
        "certificate": result.path,
        "probes": [r.to_dict() for r in result.results],
    }
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


def render_status(status: Any) -> str:
    """One certificate status as a line."""
    mark = "valid" if status.valid else "not valid"
    where = f" ({status.path})" if status.path else ""
    return f"certificate {mark}: {status.reason}{where}\n"


def render_status_json(status: Any) -> str:
    """One certificate status as JSON with stable keys."""
    data = {"schema_version": RESULT_SCHEMA_VERSION, "valid": status.valid, "reason": status.reason,
            "certificate": status.path, "tier": status.tier, "created": status.created, "matrix": status.matrix,
            "device": status.device}
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def render_not_certified(error: Any) -> str:
    """A NotCertifiedError as the guard prints it: why, the check report or the certification, the commands."""
    if error.result is not None:
        head, body = f"{error.result.matrix_ref} (tier {error.tier}): {error.result.summary}", render_text(error.result)
    else:
        from .check_text import render

        reason = error.status.reason if error.status is not None else "no valid certificate"
        head, body = f"{error.matrix} (tier {error.tier}): {reason}", render(error.report) if error.report else ""
    commands = "".join(f"\n  {shlex.join(c)}" for c in error.commands)
    return f"this environment is not certified for {head}\n\n{body}\n" + (f"to fix it, run:{commands}" if commands else "")
