"""Apply a plan: lock, snapshot, run each step with progress and a log file, verify, roll back on any failure."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from .._env.environment import Environment, facts_of, from_facts
from .._env.gpu import GpuInfo
from .._resolver import backend_environment
from ..errors import FixError
from .lock import fix_lock, write_owner
from .plan import Plan, Step, write_constraints
from .recover import refuse_if_interrupted
from .restart import StaleModule, stale_modules
from .rollback import RollbackResult, rollback
from .signals import describe, interruptible, shielded
from .snapshot import (
    Snapshot,
    changed_since,
    discard_copies,
    new_snapshot_folder,
    record_files,
    take_snapshot,
)
from .space import disk_full, refuse_if_no_space
from .state import Phase, clear_state, save_state
from .targets import Target
from .verify import Dependents, baseline, verify
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
                env: Mapping[str, str] | None = None, on_start: Callable[[int], None] | None = None) -> int:
    """Run one installer command, streaming its output into the log and to the reporter.

    env: the installer's subprocess environment (`backend_environment(plan.backend)`); None: this one's.
    on_start: told the installer's pid when it starts and 0 when it has ended (the lock records it).
    The installer gets its own process group, so that a terminal's Ctrl-C reaches envdoctor only, and
    envdoctor stops the whole group (pip's build subprocesses too) before it rolls back.
    """
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=None if env is None else dict(env), bufsize=1, start_new_session=True)
    assert proc.stdout is not None
    _told(on_start, proc.pid)
    try:
        for line in proc.stdout:
            log.write(line)
            on_line(line.rstrip("\n"))
        return proc.wait()
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM, SIGHUP, a kernel interrupt) or the log's disk is full: stop the installer
        # before the caller rolls back, or the two would write into site-packages at the same time.
        stop_group(proc)
        raise
    finally:
        _told(on_start, 0)


def _told(on_start: Callable[[int], None] | None, pid: int) -> None:
    if on_start is not None:
        with contextlib.suppress(OSError):  # a full disk must not hide the installer's own failure
            on_start(pid)


def stop_group(proc: subprocess.Popen[str], grace: float = 15.0) -> None:
    """SIGTERM the installer's process group, then SIGKILL what is left after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _inspect(python: str) -> Environment:
    return from_facts(facts_of(python), GpuInfo(False, reason="not inspected"))


_ERROR_START = ("ERROR:", "error:", "×", "  ×")


def _tail(path: Path, lines: int = 12) -> str:
    """The failing step's explanation, on one line: from the installer's first error line of the last command on,
    with its indented explanation (pip's "The conflict is caused by:" lines, uv's tree), not only the last line."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    last = max((i for i, ln in enumerate(text) if ln.startswith("$ ")), default=-1)
    out = text[last + 1:]
    first = next((i for i, ln in enumerate(out) if ln.lstrip().startswith(_ERROR_START)), None)
    if first is not None:
        out = out[first:]
    useful = [ln.strip() for ln in out if ln.strip() and not ln.startswith("WARNING: Location")]
    if first is None:
        useful = useful[-6:]
    return " | ".join(useful[:lines])


def _kernel_view(files: dict[str, list[str]], snapshot: Snapshot) -> KernelView | None:
    """When run under a Jupyter/Colab kernel (e.g. `!envdoctor fix`): the changed packages it has loaded."""
    from .restart import mapped_by
    from .resume import kernel_pid
    from .snapshot import _mirror

    pid = kernel_pid()
    if pid is None or pid == os.getpid():
        return None  # in the kernel itself, sys.modules (stale) is the exact answer
    copies = {f: _mirror(f, s.root) for s in snapshot.saved.values() for f in s.files}
    return KernelView(pid, tuple(sorted(mapped_by(pid, files, copies))))


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
    """Carry out `plan` on its environment; on any failure (a step, the verify, an interrupt, a full disk)
    restore the snapshot and verify it. The journal records every phase, so a fix killed outright can be
    rolled back by `envdoctor fix --rollback`."""
    if not plan.ok:
        raise FixError("the plan has problems and cannot be applied:\n  " + "\n  ".join(plan.problems))
    rep = reporter or NullReporter()
    work = workdir_for(plan.prefix)
    run = runner or functools.partial(run_command, env=backend_environment(plan.backend),
                                      on_start=functools.partial(write_owner, work))
    start = time.perf_counter()
    with interruptible(), fix_lock(work, plan.prefix):
        if snapshot is None:
            refuse_if_interrupted(work, plan.prefix)
            refuse_if_no_space(plan.prefix, plan.disk_bytes)
        write_constraints(plan)
        env_before: Environment | None = None
        if snapshot is None:
            snapshot, env_before = _snapshot_before(plan, work, rep)
        log_path = Path(snapshot.folder) / "fix.log"
        try:
            before = _dependents(plan, target, snapshot, env_before, rep) if verify_imports else None
            done = _run_steps(plan, target, snapshot, work, log_path, rep, run, start_at, verify_imports, before)
        except BaseException:
            # Interrupted before any step ran: nothing was changed, so the journal and copies go.
            clear_state(work)
            discard_copies(snapshot)
            raise
        if done.failed is not None:
            return _roll_back(plan, snapshot, work, done, log_path, rep, start)
        return _finish(plan, snapshot, work, done, log_path, start)


def _dependents(plan: Plan, target: Target | None, snapshot: Snapshot, env: Environment | None,
                rep: Reporter) -> Dependents | None:
    """How the installed dependents of the planned changes import before the first step (None: not known,
    e.g. on --resume, where the steps have run already)."""
    if env is None:
        return None
    named = [p.key for p in target.packages] if target is not None else []
    before = baseline(env, [c.key for c in plan.changes], named, snapshot.site_dirs)
    if before.modules:
        rep.note(f"imported before the fix: {', '.join(sorted(set(before.modules.values())))} (they depend on "
                 f"what it changes)")
    return before


def _snapshot_before(plan: Plan, work: Path, rep: Reporter) -> tuple[Snapshot, Environment]:
    """The installed set before the first step, journalled first (refusing a plan the environment moved away from)."""
    env = _inspect(plan.python)
    _refuse_if_changed(plan, env)
    folder = new_snapshot_folder(work)
    save_state(work, plan, str(folder), next_step=0, phase=Phase.SNAPSHOT)
    rep.note("snapshot of the installed set")
    try:
        return take_snapshot(env, [c.name for c in plan.changes if c.before is not None], work, root=folder,
                             added=[c.name for c in plan.changes if c.before is None]), env
    except BaseException as e:
        clear_state(work)  # nothing was changed yet
        shutil.rmtree(folder, ignore_errors=True)
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            raise FixError(f"disk full: cannot keep the snapshot in {work}; nothing was changed") from e
        raise


def _run_steps(plan: Plan, target: Target | None, snapshot: Snapshot, work: Path, log_path: Path, rep: Reporter,
               run: Runner, start_at: int, verify_imports: bool, before: Dependents | None = None) -> _Run:
    """Run the steps from `start_at`, journalling each, then verify; an interrupt or a full disk is a failure.

    Raises (KeyboardInterrupt, Interrupted) only when no step had started: then there is nothing to undo.
    """
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
        save_state(work, plan, snapshot, next_step=len(plan.steps), phase=Phase.VERIFY)
        done.after = _inspect(plan.python)
        rep.note("verify: the target is met and its changed packages import")
        changed_keys = [str(k) for k in changed_since(snapshot, done.after)]
        problems, done.warnings = verify(target, done.after, changed_keys, snapshot.site_dirs, imports=verify_imports,
                                         before=before)
        if problems:
            done.failed, done.reason = len(plan.steps), "verify failed: " + "; ".join(problems)
    except KeyboardInterrupt as e:
        if not started:
            raise
        done.failed = len(plan.steps) if done.failed is None else done.failed
        done.reason = describe(e)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        done.failed = len(plan.steps) if done.failed is None else done.failed
        done.reason = disk_full(plan.prefix)
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
        if e.errno == errno.ENOSPC:
            raise
        rc, reason = -1, f"cannot run {step.command[0]}: {e.strerror or e}"
    with contextlib.suppress(OSError):
        log.flush()
    rep.finish(i, rc == 0)
    if rc != 0:
        tail = _tail(log_path)
        reason = reason or (disk_full(str(log_path.parent)) if "No space left on device" in tail
                            else f"exit status {rc}: {tail}")
    return rc, reason


def _roll_back(plan: Plan, snapshot: Snapshot, work: Path, done: _Run, log_path: Path, rep: Reporter,
               start: float) -> FixResult:
    """Restore the snapshot (signals shielded, journalled) and report the failure with the rollback's verification.

    The journal stays when the rollback cannot be verified: `check` keeps saying so and `fix --rollback` retries.
    """
    rep.note("a step failed: restoring the snapshot")
    with shielded():
        with contextlib.suppress(OSError):  # on a full disk the journal keeps saying STEPS, which is as true
            save_state(work, plan, snapshot, next_step=done.failed or 0, phase=Phase.ROLLBACK)
        rb = rollback(snapshot)
        if rb.verified:
            clear_state(work)
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
    kernel = _kernel_view(files, snapshot)
    clear_state(work)
    discard_copies(snapshot)
    return FixResult(True, plan, changed=changed, stale=tuple(stale), kernel=kernel, log=str(log_path),
                     snapshot=snapshot.folder, seconds=time.perf_counter() - start, warnings=tuple(done.warnings))
