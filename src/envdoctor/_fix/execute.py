"""Apply a plan: lock, snapshot, run each step with progress and a log file, verify, roll back on any failure."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from .._env.environment import Environment, facts_of, from_facts
from .._env.gpu import GpuInfo
from .._resolver import backend_environment
from ..errors import FixError
from .lock import fix_lock
from .plan import Plan, Step, write_constraints
from .restart import StaleModule, stale_modules
from .rollback import RollbackResult, rollback
from .snapshot import Snapshot, changed_since, discard_copies, record_files, take_snapshot
from .state import Phase, clear_state, save_state
from .targets import Target
from .verify import verify
from .workdir import workdir_for

Runner = Callable[[Sequence[str], IO[str], Callable[[str], None]], int]


class Reporter(Protocol):
    """Progress of an apply; the CLI draws bars, the notebook updates a cell, the default does nothing."""

    def start(self, index: int, total: int, step: Step) -> None: ...
    def line(self, text: str) -> None: ...
    def finish(self, index: int, ok: bool) -> None: ...
    def note(self, text: str) -> None: ...


class NullReporter:
    """The default reporter: silent."""

    def start(self, index: int, total: int, step: Step) -> None:
        pass

    def line(self, text: str) -> None:
        pass

    def finish(self, index: int, ok: bool) -> None:
        pass

    def note(self, text: str) -> None:
        pass


@dataclass(frozen=True)
class KernelView:
    """Under a Jupyter/Colab kernel (`!envdoctor fix`): its pid and the changed packages whose files it has mapped."""

    pid: int
    loaded: tuple[str, ...] = ()


@dataclass(frozen=True)
class FixResult:
    """What an apply did. `ok=False` always comes with `failed_step`/`reason` and a `rollback`."""

    ok: bool
    plan: Plan
    changed: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    stale: tuple[StaleModule, ...] = ()
    kernel: KernelView | None = None  # when run under a notebook kernel that is another process
    failed_step: int | None = None
    reason: str = ""
    rollback: RollbackResult | None = None
    log: str = ""
    snapshot: str = ""
    seconds: float = 0.0
    warnings: tuple[str, ...] = ()

    @property
    def restart_required(self) -> bool:
        return self.ok and (bool(self.stale) or (self.kernel is not None and bool(self.kernel.loaded)))

    @property
    def exit_code(self) -> int:
        return 1 if not self.ok else (3 if self.restart_required else 0)


def run_command(cmd: Sequence[str], log: IO[str], on_line: Callable[[str], None], *,
                env: Mapping[str, str] | None = None) -> int:
    """Run one installer command, streaming its output into the log and to the reporter.

    env: the installer's subprocess environment (`backend_environment(plan.backend)`); None: this one's.
    """
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=None if env is None else dict(env), bufsize=1)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            log.write(line)
            on_line(line.rstrip("\n"))
        return proc.wait()
    except BaseException:
        # Interrupted (a notebook's interrupt reaches only the kernel): stop the installer before the caller
        # rolls back, or the two would write into site-packages at the same time.
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise


@contextmanager
def _shielded() -> Iterator[None]:
    """Ctrl-C is ignored while the snapshot is restored: a rollback cut short would leave the worst state."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _inspect(python: str) -> Environment:
    return from_facts(facts_of(python), GpuInfo(False, reason="not inspected"))


def _tail(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    useful = [ln for ln in text if ln.strip() and not ln.startswith(("WARNING: Location", "  "))]
    return " | ".join(useful[-lines:])


def _kernel_view(files: dict[str, list[str]]) -> KernelView | None:
    """When run under a Jupyter/Colab kernel (e.g. `!envdoctor fix`): the changed packages it has loaded."""
    from .restart import mapped_by
    from .resume import kernel_pid

    pid = kernel_pid()
    if pid is None or pid == os.getpid():
        return None  # in the kernel itself, sys.modules (stale) is the exact answer
    return KernelView(pid, tuple(sorted(mapped_by(pid, files))))


def _refuse_if_changed(plan: Plan, env: Environment) -> None:
    """The plan was resolved against the environment as it was; if it changed since, planning must be redone."""
    moved = []
    for c in plan.changes:
        dist = env.get(c.name)
        now = dist.raw_version if dist is not None else None
        if now != c.before:
            moved.append(f"{c.name} is {now or 'absent'}, the plan expected {c.before or 'absent'}")
    if moved:
        raise FixError(f"{plan.prefix} changed since the plan was made ({'; '.join(moved)}); nothing was "
                       f"changed, run envdoctor fix again to plan anew")


@dataclass
class _Run:
    """How far the steps got: the failing step (None: all ran and verified), why, and the after-state."""

    failed: int | None = None
    reason: str = ""
    warnings: list[str] = field(default_factory=list)
    after: Environment | None = None


def apply_plan(
    plan: Plan,
    target: Target | None = None,
    *,
    reporter: Reporter | None = None,
    runner: Runner | None = None,
    start_at: int = 0,
    snapshot: Snapshot | None = None,
    verify_imports: bool = True,
) -> FixResult:
    """Carry out `plan` on its environment; on any failure restore the snapshot and verify it."""
    if not plan.ok:
        raise FixError("the plan has problems and cannot be applied:\n  " + "\n  ".join(plan.problems))
    rep = reporter or NullReporter()
    run = runner or functools.partial(run_command, env=backend_environment(plan.backend))
    work = workdir_for(plan.prefix)
    start = time.perf_counter()
    with fix_lock(work, plan.prefix):
        write_constraints(plan)
        if snapshot is None:
            snapshot = _snapshot_before(plan, work, rep)
        log_path = Path(snapshot.folder) / "fix.log"
        done = _run_steps(plan, target, snapshot, work, log_path, rep, run, start_at, verify_imports)
        if done.failed is not None:
            return _roll_back(plan, snapshot, work, done, log_path, rep, start)
        return _finish(plan, snapshot, work, done, log_path, start)


def _snapshot_before(plan: Plan, work: Path, rep: Reporter) -> Snapshot:
    """The installed set before the first step (refusing a plan the environment has moved away from)."""
    env = _inspect(plan.python)
    _refuse_if_changed(plan, env)
    rep.note("snapshot of the installed set")
    return take_snapshot(env, [c.name for c in plan.changes if c.before is not None], work)


def _run_steps(plan: Plan, target: Target | None, snapshot: Snapshot, work: Path, log_path: Path, rep: Reporter,
               run: Runner, start_at: int, verify_imports: bool) -> _Run:
    """Run the steps from `start_at`, recording progress for --resume, then verify; an interrupt is a failure."""
    done = _Run()
    started = False
    try:
        with open(log_path, "a", encoding="utf-8") as log:
            for i, step in enumerate(plan.steps):
                if i < start_at:
                    continue
                save_state(work, plan, snapshot, next_step=i, phase=Phase.STEPS)
                done.failed, started = i, True  # until it says otherwise: an interrupt inside it is its failure
                rc, done.reason = _run_step(i, len(plan.steps), step, log, log_path, rep, run)
                if rc != 0:
                    return done
                done.failed = None
        done.after = _inspect(plan.python)
        rep.note("verify: the target is met and its changed packages import")
        changed_keys = [str(k) for k in changed_since(snapshot, done.after)]
        problems, done.warnings = verify(target, done.after, changed_keys, snapshot.site_dirs, imports=verify_imports)
        if problems:
            done.failed, done.reason = len(plan.steps), "verify failed: " + "; ".join(problems)
    except KeyboardInterrupt:
        if not started:
            raise  # no step ran: there is nothing to undo
        done.failed = len(plan.steps) if done.failed is None else done.failed
        done.reason = "interrupted (Ctrl-C or a kernel interrupt) before the fix finished"
    return done


def _run_step(i: int, total: int, step: Step, log: IO[str], log_path: Path, rep: Reporter,
              run: Runner) -> tuple[int, str]:
    """One installer call, logged; (exit status, why it failed or '')."""
    rep.start(i, total, step)
    log.write(f"$ {' '.join(step.command)}\n")
    log.flush()
    reason = ""
    try:
        rc = run(step.command, log, rep.line)
    except OSError as e:
        rc, reason = -1, f"cannot run {step.command[0]}: {e.strerror or e}"
    log.flush()
    rep.finish(i, rc == 0)
    if rc != 0:
        reason = reason or f"exit status {rc}: {_tail(log_path)}"
    return rc, reason


def _roll_back(plan: Plan, snapshot: Snapshot, work: Path, done: _Run, log_path: Path, rep: Reporter,
               start: float) -> FixResult:
    """Restore the snapshot (Ctrl-C shielded) and report the failure with the rollback's verification."""
    rep.note("a step failed: restoring the snapshot")
    with _shielded():
        rb = rollback(snapshot)
        clear_state(work)
        if rb.verified:
            discard_copies(snapshot)
    return FixResult(False, plan, failed_step=done.failed, reason=done.reason, rollback=rb, log=str(log_path),
                     snapshot=snapshot.folder, seconds=time.perf_counter() - start)


def _finish(plan: Plan, snapshot: Snapshot, work: Path, done: _Run, log_path: Path, start: float) -> FixResult:
    """The changes made and who still has the old modules loaded (this process, or the notebook kernel)."""
    after = done.after if done.after is not None else _inspect(plan.python)
    changed = {str(k): v for k, v in changed_since(snapshot, after).items()}
    files = {k: list(s.files) for k, s in snapshot.saved.items()}
    for key in changed:
        dist = after.get(key)
        if dist is not None and dist.path.endswith(".dist-info"):
            files.setdefault(key, []).extend(record_files(dist.path, dist.location) or [])
    stale = stale_modules(changed, files, snapshot.site_dirs)
    kernel = _kernel_view(files)
    clear_state(work)
    discard_copies(snapshot)
    return FixResult(True, plan, changed=changed, stale=tuple(stale), kernel=kernel, log=str(log_path),
                     snapshot=snapshot.folder, seconds=time.perf_counter() - start, warnings=tuple(done.warnings))
