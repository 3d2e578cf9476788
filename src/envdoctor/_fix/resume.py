"""Kernel restart (Colab/Jupyter) and `fix --resume`: continue the steps, or verify after the restart."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, replace
from pathlib import Path

from .._env.environment import facts_of, from_facts
from .._env.gpu import GpuInfo
from ..errors import UsageError
from .derive import TamperedError, checked_snapshot, derived_steps
from .execute import FixResult, Reporter, apply_plan
from .plan import Plan
from .state import Phase, clear_state, load_snapshot, load_state, save_state
from .targets import TargetKind, load_target
from .verify import unmet as verify_unmet
from .workdir import workdir_for

_KERNEL_MARKERS = ("ipykernel", "colab_kernel_launcher", "ipykernel_launcher")


def kernel_pid(start: int | None = None, depth: int = 6) -> int | None:
    """The pid of the Jupyter/Colab kernel this process runs under (itself or an ancestor), from /proc."""
    pid = start if start is not None else os.getpid()
    for _ in range(depth):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        if any(m in cmdline for m in _KERNEL_MARKERS):
            return pid
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # field 4: the parent pid
        if pid <= 1:
            return None
    return None


def restart_kernel(plan: Plan, result: FixResult) -> str:
    """Save the resume state and kill the kernel (Colab and Jupyter start a fresh one): the seed's nuclear option."""
    pid = kernel_pid()
    if pid is None:
        raise UsageError("--restart: this is not running inside a Jupyter or Colab kernel; restart your "
                         "Python process yourself")
    work = workdir_for(plan.prefix)
    save_state(work, plan, load_snapshot(result.snapshot), next_step=len(plan.steps), phase=Phase.RESTART)
    os.kill(pid, signal.SIGKILL)
    return f"restarting the kernel (pid {pid}); then run: envdoctor fix --resume"


@dataclass(frozen=True)
class Resumed:
    """What `fix --resume` did: ran the remaining steps (`result`), or, after a kernel restart, verified the target."""

    plan: Plan
    executable: str
    result: FixResult | None = None  # None: only the verify after the restart was left, and it passed

    @property
    def exit_code(self) -> int:
        return 0 if self.result is None else self.result.exit_code


def resume(python: str | None = None, reporter: Reporter | None = None, *, trust_sources: bool = False) -> Resumed:
    """Continue the fix recorded for this environment: the remaining steps, or the verify after a restart.

    Nothing is run as the journal spells it: the target is loaded again, every step's command is re-derived
    from the plan's data (`derive.derived_steps`), and the snapshot is checked against the environment.
    """
    env = from_facts(facts_of(python), GpuInfo(False, reason="not inspected"))
    work = workdir_for(env.prefix)
    state = load_state(work)
    if state is None:
        raise UsageError(f"--resume: no interrupted fix for {env.executable}")
    if state.phase is Phase.SNAPSHOT:
        raise UsageError(f"--resume: the fix of {env.executable} stopped before it changed anything; run "
                         f"envdoctor fix --rollback to clear its journal, then fix again")
    if state.phase is Phase.ROLLBACK:
        raise UsageError(f"--resume: the fix of {env.executable} was rolling back when it stopped; finish that "
                         f"with: envdoctor fix --rollback")
    ref = state.plan.source or state.plan.target
    # the target is loaded as the first run loaded it: a shared matrix's sources need --trust-sources again
    target = load_target(ref if state.plan.kind is TargetKind.MATRIX else None,
                         ref if state.plan.kind is TargetKind.REQUIREMENTS else None, trust_sources=trust_sources)
    if state.phase is Phase.RESTART:
        unmet = verify_unmet(target, env)
        clear_state(work)
        if unmet:
            raise UsageError("after the restart the target is not met: " + "; ".join(unmet))
        return Resumed(state.plan, env.executable)
    if os.path.realpath(state.plan.prefix) != os.path.realpath(env.prefix):
        raise TamperedError(f"the fix journal in {work} is of {state.plan.prefix}, not {env.prefix}; nothing was run")
    names = {p.key for p in target.packages} | {r.key for r in target.removals}
    steps = derived_steps(state.plan, names, python=env.executable)
    sites = sorted({d.location for d in env.distributions.values() if d.location})
    snapshot = checked_snapshot(load_snapshot(state.snapshot_folder), env.executable, env.prefix,
                                state.snapshot_folder, sites)
    plan = replace(state.plan, steps=steps, python=env.executable)
    result = apply_plan(plan, target, reporter=reporter, start_at=state.next_step, snapshot=snapshot)
    return Resumed(plan, env.executable, result)
