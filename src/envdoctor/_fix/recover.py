"""After a fix was killed: find its journal, report it, refuse to plan over it, and roll it back (`fix --rollback`)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from .._env.environment import Environment, facts_of, from_facts
from .._env.gpu import GpuInfo
from .._fastpath import journal_may_exist
from ..errors import FixError, UsageError
from .derive import checked_snapshot
from .lock import alive, fix_lock
from .rollback import RollbackResult, rollback
from .signals import shielded
from .snapshot import Snapshot, discard_copies
from .state import FixState, Phase, clear_state, journal_path, load_snapshot, load_state
from .workdir import workdir_for


@dataclass(frozen=True)
class InterruptedFix:
    """A journal that no running fix owns: the fix that wrote it died (SIGKILL, OOM, a crash, a power cut)."""

    python: str
    state: FixState

    def describe(self) -> str:
        """The one paragraph every command that looks at the environment prints."""
        st, total = self.state, len(self.state.plan.steps)
        where = {Phase.STEPS: f"at step {st.next_step + 1} of {total}", Phase.VERIFY: "in its verify",
                 Phase.ROLLBACK: "while rolling back"}.get(st.phase, st.phase.value)
        return (f"an interrupted fix left this environment half-changed (envdoctor fix -> {st.plan.target}, pid "
                f"{st.pid}, stopped {where}); restore the state before it: envdoctor fix --rollback --python "
                f"{self.python} (or finish it: envdoctor fix --resume --python {self.python})")


def _inspect(python: str | None) -> Environment:
    return from_facts(facts_of(python), GpuInfo(False, reason="not inspected"))


def _running(state: FixState, work: Path) -> bool:
    """The journal's own fix is still alive and holds the lock (then it is not interrupted, only in progress).

    The lock decides, not the pid alone: a recycled pid must not hide an interrupted fix.
    """
    if state.pid == os.getpid() or not alive(state.pid):
        return False
    from filelock import FileLock, Timeout

    lock = FileLock(str(work / "fix.lock"), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return True
    lock.release()
    return False


def interrupted_fix(env: Environment) -> InterruptedFix | None:
    """The interrupted fix of `env`, or None (no journal, a fix still running, or one that changed nothing)."""
    work = workdir_for(env.prefix)
    if not journal_path(work).exists():
        return None
    try:
        state = load_state(work)
    except UsageError:
        return None  # unreadable: `fix` says so when it is asked to act on it
    if state is None or not state.phase.half_changed or _running(state, work):
        return None
    return InterruptedFix(env.executable, state)


def interrupted_notice(executable: str | None = None) -> str | None:
    """For `check` (and anything else that looks at an environment): the interrupted-fix paragraph, or None.

    executable: the interpreter that was inspected (a check report's); None: this one.
    """
    import sys

    try:
        if not journal_may_exist(executable):
            return None  # the common case costs one stat
        found = interrupted_fix(_inspect(executable or sys.executable))
    except Exception:  # noqa: BLE001 - a notice must never turn a check into a crash
        return None
    return found.describe() if found is not None else None


def refuse_if_interrupted(work: Path, prefix: str) -> None:
    """Under the lock, before a new fix plans its snapshot: a half-changed journal refuses it.

    A journal stopped while the snapshot was taken changed nothing: it is cleared. A finished fix waiting for
    its restart's verify (RESTART) is superseded by the new fix.
    """
    state = load_state(work)
    if state is None:
        return
    if state.phase.half_changed:
        python = state.plan.python
        raise FixError(InterruptedFix(python, state).describe() + "; nothing was changed")
    if state.phase is Phase.SNAPSHOT:
        shutil.rmtree(state.snapshot_folder, ignore_errors=True) if _in(state.snapshot_folder, work) else None
    clear_state(work)


def _in(folder: str, work: Path) -> bool:
    return os.path.realpath(folder).startswith(os.path.realpath(work) + os.sep)


@dataclass(frozen=True)
class Recovered:
    """What `fix --rollback` did: restored a snapshot (`rollback`), or found nothing had been changed."""

    python: str
    target: str
    snapshot: str
    rollback: RollbackResult | None  # None: the fix died before its first change
    offline: bool = True  # False: the copies were gone, versions came from pip's cache or index

    @property
    def exit_code(self) -> int:
        return 0 if self.rollback is None or self.rollback.verified else 1


def _last_snapshot(work: Path) -> Path | None:
    folders = sorted((p for p in work.glob("snapshot-*") if (p / "snapshot.json").exists()),
                     key=lambda p: p.stat().st_mtime)
    return folders[-1] if folders else None


def _with_copies(snap: Snapshot) -> tuple[Snapshot, bool]:
    """The snapshot without the saved entries whose copies were discarded (those are reinstalled by version)."""
    kept = {k: s for k, s in snap.saved.items() if (s.wheel_dir and os.path.isdir(s.wheel_dir)) or
            (not s.wheel_dir and os.path.isdir(s.root))}
    return replace(snap, saved=kept), len(kept) == len(snap.saved)


def roll_back(python: str | None = None) -> Recovered:
    """Restore the state before the interrupted fix (from its journal), or before the last fix, and verify it."""
    env = _inspect(python)
    work = workdir_for(env.prefix)
    with fix_lock(work, env.prefix):
        state = load_state(work)
        if state is not None and state.phase is Phase.SNAPSHOT:
            if _in(state.snapshot_folder, work):
                shutil.rmtree(state.snapshot_folder, ignore_errors=True)
            clear_state(work)
            return Recovered(env.executable, state.plan.target, state.snapshot_folder, None)
        if state is not None and state.phase is not Phase.RESTART:
            folder, target = state.snapshot_folder, state.plan.target
        else:
            last = _last_snapshot(work)
            if last is None:
                raise UsageError(f"--rollback: no fix of {env.executable} to roll back (no snapshot in {work})")
            folder, target = str(last), state.plan.target if state is not None else "the last fix"
        if not _in(folder, work):
            raise FixError(f"the fix journal names the snapshot {folder}, outside {work}; nothing was restored")
        sites = sorted({d.location for d in env.distributions.values() if d.location})
        snap = checked_snapshot(load_snapshot(folder), env.executable, env.prefix, folder, sites)
        snap, offline = _with_copies(snap)
        with shielded():
            rb = rollback(snap)
        if rb.verified:
            clear_state(work)
            discard_copies(snap)
        return Recovered(env.executable, target, folder, rb, offline)
