"""Render a certification as text for people or JSON for machines; both return str and never print."""

from __future__ import annotations

import json
from typing import Any

RESULT_SCHEMA_VERSION = 1
_MARK = {"pass": "pass", "fail": "FAIL", "inconclusive": "INCONCLUSIVE", "skipped": "skipped"}


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
        lines.append(f"  {r.tier:<4}  {r.name.ljust(width)}  {_MARK.get(r.status, r.status).ljust(12)}  "
                     f"{r.duration_s:>6.1f}s  {r.reason}")
        if verbose or r.status in ("fail", "inconclusive"):
            tail = r.details.get("stderr_tail") or r.details.get("traceback")
            if tail:
                lines += [f"  {'':4}  {'':{width}}    | {t}" for t in str(tail).splitlines()[-6:]]
    lines.append("")
    verdict = "CERTIFIED" if result.certified else "NOT CERTIFIED"
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
