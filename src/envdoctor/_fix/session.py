"""One fix, start to end: plan → confirm → apply → restart decision, shared by `envdoctor fix` and `%envdoctor fix`.

The CLI and the notebook differ only in what they pass in: how to ask (a y/N prompt, or yes), how to draw
progress (bars, or a cell), and how to render the outcome. When to restart is decided here, once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum

from .._resolver import Sources
from ..errors import FixError, UsageError
from .execute import FixResult, NullReporter, Reporter, apply_plan
from .plan import Plan, plan_fix
from .targets import Target, load_target


@dataclass(frozen=True)
class FixRequest:
    """What the caller asks of one fix: the target and the options of `envdoctor fix`."""

    matrix: str | None = None
    requirements: str | None = None
    python: str | None = None
    backend: str = "auto"
    allow: tuple[str, ...] = ()
    allow_broken: bool = False
    protect: tuple[str, ...] = ()  # the user's own protected names (--protect)
    sources: Sources = Sources()
    dry_run: bool = False
    verify_imports: bool = True
    restart: bool = False  # restart the notebook kernel when the fix changed modules it has loaded
    trust_sources: bool = False  # --trust-sources: use the https indexes and URLs a shared matrix names


def sources_from(index_url: str | None, extra_index_urls: Iterable[str] = (), find_links: Iterable[str] = (),
                 no_index: bool = False) -> Sources:
    """Sources from the command-line options; a --find-links folder is made absolute (steps run elsewhere)."""
    links = tuple(os.path.abspath(f) if os.path.isdir(f) else f for f in find_links)
    return Sources(index_url, tuple(extra_index_urls), links, no_index)


class Outcome(str, Enum):
    """How a session ended."""

    PLANNED = "planned"  # --dry-run: the plan was made and nothing applied
    REFUSED = "refused"  # the plan has problems; nothing was changed
    NOTHING_TO_DO = "nothing-to-do"
    DECLINED = "declined"  # the confirm callback said no; nothing was changed
    APPLIED = "applied"
    FAILED = "failed"  # a step or the verify failed; the snapshot was restored


class Restart(str, Enum):
    """What to do about modules loaded before the fix that it changed on disk."""

    NOT_NEEDED = "not-needed"
    ADVISED = "advised"  # restart the process or kernel yourself (exit code 3)
    KERNEL = "kernel"  # --restart: envdoctor restarts the notebook kernel


def restart_decision(result: FixResult | None, asked: bool) -> Restart:
    """The one rule: a successful fix that changed something already loaded (here, or in the notebook kernel)
    needs a restart; envdoctor restarts the kernel itself only when asked to (`--restart`)."""
    if result is None or not result.restart_required:
        return Restart.NOT_NEEDED
    return Restart.KERNEL if asked else Restart.ADVISED


@dataclass(frozen=True)
class SessionResult:
    """The end of a session: the plan, what applying it did (if it was applied), and the restart decision."""

    outcome: Outcome
    plan: Plan
    result: FixResult | None = None
    restart: Restart = Restart.NOT_NEEDED

    @property
    def exit_code(self) -> int:
        """0 done or nothing to do, 1 refused, declined or failed (rolled back), 3 done but restart required."""
        if self.result is not None:
            return self.result.exit_code
        return 1 if self.outcome in (Outcome.REFUSED, Outcome.DECLINED) else 0


def _yes(plan: Plan) -> bool:
    return True


def _silent(plan: Plan) -> Reporter:
    return NullReporter()


class FixSession:
    """Plan, confirm, apply and decide about the restart for one `FixRequest`."""

    def __init__(self, request: FixRequest, *, confirm: Callable[[Plan], bool] = _yes,
                 reporter: Callable[[Plan], Reporter] = _silent) -> None:
        self.request = request
        self.confirm = confirm
        self.reporter = reporter

    def _check_restart(self) -> None:
        """--restart outside a kernel is refused before anything is planned or changed."""
        from .resume import kernel_pid

        if self.request.restart and kernel_pid() is None:
            raise UsageError("--restart: this is not running inside a Jupyter or Colab kernel; restart your "
                             "Python process yourself")

    def plan(self) -> tuple[Target, Plan]:
        """The target and the plan (resolved with a real resolver, once); changes nothing.

        An environment that an interrupted fix left half-changed is refused first: a plan made from the half
        state would forget the snapshot that restores the state before it.
        """
        from .._env.environment import facts_of, from_facts
        from .recover import interrupted_fix

        r = self.request
        target = load_target(r.matrix, r.requirements, trust_sources=r.trust_sources)
        env = from_facts(facts_of(r.python))
        found = interrupted_fix(env)
        if found is not None:
            raise FixError(found.describe() + "; nothing was planned")
        plan = plan_fix(target, python=r.python, backend=r.backend, allow=r.allow, allow_broken=r.allow_broken,
                        sources=r.sources, environment=env, protect=r.protect)
        return target, plan

    def run(self) -> SessionResult:
        """Plan; stop at a dry run, a refusal, nothing to do or a 'no'; else apply and decide about the restart."""
        self._check_restart()
        target, plan = self.plan()
        if self.request.dry_run:
            return SessionResult(Outcome.PLANNED if plan.ok else Outcome.REFUSED, plan)
        if not plan.ok:
            return SessionResult(Outcome.REFUSED, plan)
        if plan.noop:
            return SessionResult(Outcome.NOTHING_TO_DO, plan)
        if not self.confirm(plan):
            return SessionResult(Outcome.DECLINED, plan)
        reporter = self.reporter(plan)
        try:
            result = apply_plan(plan, target, reporter=reporter, verify_imports=self.request.verify_imports)
        finally:
            close = getattr(reporter, "close", None)
            if close is not None:
                close()
        outcome = Outcome.APPLIED if result.ok else Outcome.FAILED
        return SessionResult(outcome, plan, result, restart_decision(result, self.request.restart))

    def finish(self, done: SessionResult) -> str | None:
        """Act on the restart decision (after the caller has shown the result): restart the kernel, or nothing."""
        if done.restart is not Restart.KERNEL or done.result is None:
            return None
        from .resume import restart_kernel

        return restart_kernel(done.plan, done.result)
