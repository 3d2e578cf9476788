"""Render a plan and a fix result as text or JSON (strings only; the command prints them)."""

from __future__ import annotations

import json
import shlex
from typing import Any

from .._fix.execute import FixResult
from .._fix.plan import Plan, refusal
from .._fix.recover import Recovered
from .._fix.restart import StaleModule
from .._fix.resume import Resumed
from .._fix.rollback import RollbackResult
from .._fix.state import plan_to_dict
from .._resolver import Conflict

JSON_SCHEMA_VERSION = 1


def _cmd(command: tuple[str, ...]) -> str:
    return " ".join(shlex.quote(c) for c in command)


def plan_text(plan: Plan) -> str:
    """The plan as a person reads it: changes, the exact commands in order, problems and warnings."""
    lines = [f"fix plan for {plan.python} -> {plan.target} (resolved by {plan.backend} in {plan.seconds:.1f} s)"]
    if plan.changes:
        lines.append("changes:")
        for c in plan.changes:
            before, after = c.before or "(absent)", c.after or "(removed)"
            lines.append(f"  {c.name:<28} {before} -> {after}")
    if plan.steps:
        lines.append("steps:")
        for i, s in enumerate(plan.steps, 1):
            lines.append(f"  {i}. {s.title}: {' '.join(s.packages)}")
            lines.append(f"     $ {_cmd(s.command)}")
        if plan.constraints_file:
            # The file is written when the plan is applied; a dry run shows what it will hold.
            lines.append(f"  (every install step is held to the resolved versions by -c {plan.constraints_file}, "
                         f"written when the plan is applied: {', '.join(plan.constraints)})")
    elif not plan.problems:
        lines.append("nothing to do: the environment already satisfies the target")
    for w in plan.warnings:
        lines.append(f"warning: {w}")
    for p in plan.problems:
        lines.append(f"refused: {p}")
    if plan.problems:
        lines.append("nothing was changed")
    return "\n".join(lines)


def result_text(result: FixResult) -> str:
    """What happened: the changes made, or the failing step, the rollback and its verification."""
    lines: list[str] = []
    if result.ok:
        if result.changed:
            lines.append("changed:")
            for name, (before, after) in sorted(result.changed.items()):
                lines.append(f"  {name:<28} {before or '(absent)'} -> {after or '(removed)'}")
        lines += [f"warning: {w}" for w in result.warnings]
        lines.append(f"fix done in {result.seconds:.1f} s; log: {result.log}")
        lines += _pylock_lines(result)
        if result.stale:
            # One line per changed package (a torch import loads hundreds of submodules), its top-level modules named.
            lines.append("restart required: these packages were imported before the fix and are now stale:")
            by_package: dict[str, list[StaleModule]] = {}
            for m in result.stale:
                by_package.setdefault(m.package, []).append(m)
            for package, mods in sorted(by_package.items()):
                tops = sorted({m.module.split(".", 1)[0] for m in mods})
                first = next((m for m in mods if "." not in m.module), mods[0])
                more = len(mods) - len(tops)
                lines.append(f"  {package} {first.loaded_version} -> {first.installed_version or 'removed'} "
                             f"(import {', '.join(tops)}" + (f", and {more} submodules)" if more > 0 else ")"))
        if result.kernel is not None and result.kernel.loaded:
            lines.append(f"restart required: the notebook kernel (pid {result.kernel.pid}) has loaded "
                         f"{', '.join(result.kernel.loaded)}, which the fix changed; restart it "
                         f"(envdoctor fix --restart does), then run: envdoctor fix --resume")
        return "\n".join(lines)
    step = result.failed_step
    where = "verify" if step is not None and step >= len(result.plan.steps) else f"step {(step or 0) + 1}"
    lines.append(f"fix failed at {where}: {result.reason}")
    rb = result.rollback
    if rb is not None:
        state = "verified: pip freeze equals the one before" if rb.verified else "NOT verified"
        lines.append(f"rolled back ({state}); restored {', '.join(rb.restored) or 'nothing'}; "
                     f"removed {', '.join(rb.removed) or 'nothing'}")
        if rb.failed:
            lines.append(f"could not restore: {', '.join(rb.failed)}")
        for d in rb.difference:
            lines.append(f"  {d}")
    lines.append(f"log: {result.log}")
    return "\n".join(lines)


def _pylock_lines(result: FixResult) -> list[str]:
    """The closing note on the standard lock file of the state before the fix, when one was written."""
    from pathlib import Path

    from .._fix.pylock import NOTE

    lock = Path(result.snapshot) / "pylock.toml" if result.snapshot else None
    if lock is None or not lock.is_file():
        return []
    return [f"the state before the fix, as a PEP 751 lock file: {lock}", "  " + NOTE.replace("PYLOCK", str(lock))]


def resumed_text(resumed: Resumed) -> str:
    """What `fix --resume` did: the remaining steps' result, or the verify after a kernel restart."""
    if resumed.result is not None:
        return result_text(resumed.result)
    return f"resumed after the restart: {resumed.plan.target} is satisfied in {resumed.executable}"


def _conflict(c: Conflict) -> dict[str, Any]:
    sides = [{"name": s.name, "specifier": s.specifier, "dependent": s.dependent,
              "dependent_version": s.dependent_version, "line": None if s.line is None else
              {"requirement": s.line.requirement, "origin": s.line.origin}} for s in c.sides]
    return {"message": refusal(c), "summary": c.summary, "kind": c.kind.value, "chain": list(c.chain),
            "sides": sides, "lines": [{"requirement": r.requirement, "origin": r.origin} for r in c.requested],
            "unreachable": c.unreachable}


def plan_json(plan: Plan, result: FixResult | None = None) -> str:
    """The plan (and the result, if applied) as JSON with stable keys and a schema version."""
    data: dict[str, Any] = {"schema_version": JSON_SCHEMA_VERSION, "plan": plan_to_dict(plan)}
    data["plan"]["ok"] = plan.ok
    data["plan"]["resolutions"] = [
        {"backend": r.backend, "ok": r.ok, "seconds": round(r.seconds, 3), "command": list(r.command),
         "conflict": None if r.conflict is None else _conflict(r.conflict)}
        for r in plan.resolutions
    ]
    if result is not None:
        rb = result.rollback
        data["result"] = {
            "ok": result.ok, "exit_code": result.exit_code,
            "changed": {k: list(v) for k, v in sorted(result.changed.items())},
            "restart_required": result.restart_required,
            "kernel": None if result.kernel is None else {"pid": result.kernel.pid, "loaded": list(result.kernel.loaded)},
            "stale_modules": [m.module for m in result.stale],
            "failed_step": result.failed_step, "reason": result.reason, "log": result.log,
            "warnings": list(result.warnings),
            "rollback": None if rb is None else {"verified": rb.verified, "restored": list(rb.restored),
                                                 "removed": list(rb.removed), "failed": list(rb.failed),
                                                 "difference": list(rb.difference)},
        }
    return json.dumps(data, indent=2, sort_keys=True)


def _rollback_line(rb: RollbackResult) -> str:
    state = "verified: pip freeze equals the one before" if rb.verified else "NOT verified"
    return (f"rolled back ({state}); restored {', '.join(rb.restored) or 'nothing'}; "
            f"removed {', '.join(rb.removed) or 'nothing'}")


def recovered_text(done: Recovered) -> str:
    """What `fix --rollback` did."""
    if done.rollback is None:
        return (f"the fix of {done.python} -> {done.target} stopped before its first change: nothing to restore; "
                f"its journal was cleared")
    lines = [f"{done.python}: the state before the fix -> {done.target} (snapshot {done.snapshot})",
             _rollback_line(done.rollback)]
    if not done.offline:
        lines.append("(the fix had finished, so its copies were gone: versions came from pip's cache or index)")
    if done.rollback.failed:
        lines.append(f"could not restore: {', '.join(done.rollback.failed)}")
    lines += [f"  {d}" for d in done.rollback.difference]
    return "\n".join(lines)


def recovered_json(done: Recovered) -> str:
    """What `fix --rollback` did, as JSON."""
    rb = done.rollback
    data = {"schema_version": JSON_SCHEMA_VERSION, "python": done.python, "target": done.target,
            "snapshot": done.snapshot, "offline": done.offline, "exit_code": done.exit_code,
            "rollback": None if rb is None else {"verified": rb.verified, "restored": list(rb.restored),
                                                 "removed": list(rb.removed), "failed": list(rb.failed),
                                                 "difference": list(rb.difference)}}
    return json.dumps(data, indent=2, sort_keys=True)
