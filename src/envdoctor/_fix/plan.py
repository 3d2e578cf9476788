"""Resolve a target against an environment and turn the answer into a frozen plan of exact installer commands.

`plan_fix` reads as its steps: the environment, the Python rule, the resolutions, the changes, then the
three refusals (protected names, after-state breakage), the constraint pins and the installer steps.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name

from .._env.environment import Environment, facts_of, from_facts
from .._env.gpu import GpuInfo
from .._named import Named
from .._resolver import Backend, Conflict, Install, Resolution, Sources, hashed_requirements, select_backend
from .protect import Protection, protected_names
from .simulate import Node, after_state, before_state, new_breakages
from .space import estimate
from .targets import Removal, Target, TargetKind, TargetPackage, resolve_target
from .workdir import workdir_for


class StepKind(str, Enum):
    """What one installer call does."""

    UNINSTALL = "uninstall"
    INSTALL = "install"


@dataclass(frozen=True)
class Step:
    """One installer call of a plan."""

    kind: StepKind
    title: str
    packages: tuple[str, ...]
    command: tuple[str, ...]
    reason: str = ""
    index_url: str | None = None
    no_deps: bool = False
    hashed: str = ""  # hash-checking mode: the file the command reads its pins and hashes from (-r)
    hashed_text: str = ""  # that file's text, written when the plan is applied (`write_constraints`)


@dataclass(frozen=True)
class Change(Named):
    """One distribution the plan changes: before and after versions (None = absent)."""

    name: str
    before: str | None
    after: str | None



@dataclass(frozen=True)
class Plan:
    """Everything `fix` will do, decided before anything is touched; `--dry-run` renders exactly this."""

    target: str
    kind: TargetKind
    python: str
    prefix: str
    backend: str
    steps: tuple[Step, ...]
    changes: tuple[Change, ...]
    constraints: tuple[str, ...] = ()
    constraints_file: str = ""
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    protected: tuple[str, ...] = ()
    resolutions: tuple[Resolution, ...] = field(default=(), repr=False)
    seconds: float = 0.0
    source: str = ""
    sources: Sources = Sources()  # what the install steps read from; the journal re-derives them from it
    disk_bytes: int = 0  # what the steps download and unpack, as far as is known (`space.estimate`)

    @property
    def ok(self) -> bool:
        """True when the plan may be applied (the resolver agreed and nothing protected would change)."""
        return not self.problems

    @property
    def noop(self) -> bool:
        return not self.steps


@dataclass
class _Verdict:
    """The plan's refusals and warnings, collected by every step (all of them, not the first)."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def refusal(conflict: Conflict) -> str:
    """A resolver's refusal for the plan: its own words, then each requested line involved with its origin."""
    text = conflict.summary + (" (the package index could not be reached)" if conflict.unreachable else "")
    lines = [f"  {r.requirement}  ({r.origin})" for r in conflict.requested if r.origin]
    return text + ("\nthe requirement lines involved:\n" + "\n".join(lines) if lines else "")


def _merged(given: Sources, named: Sources) -> Sources:
    """The command line's sources plus those the target names (a requirements file's -i/-f lines), as pip merges them."""
    if named == Sources():
        return given
    return Sources(given.index_url or named.index_url,
                   tuple(dict.fromkeys([*given.extra_index_urls, *named.extra_index_urls])),
                   tuple(dict.fromkeys([*given.find_links, *named.find_links])),
                   given.no_index or named.no_index, given.extra_args)


def _check_python(target: Target, env: Environment, verdict: _Verdict) -> None:
    """The matrix's Python rule: fix does not change the interpreter, so a mismatch refuses the plan."""
    matrix = target.matrix
    rule = matrix.python if matrix is not None else None
    if matrix is not None and rule is not None and not rule.specifier.contains(env.python_version, prereleases=True):
        from .._check.interpreter import alternative

        verdict.problems.append(f"{target.ref} needs Python {rule.specifier} ({rule.reason}); {env.executable} is "
                                f"{env.python_version}, and fix does not change the interpreter: "
                                + alternative(matrix, env.python_version, colab=env.runtime.colab))


def _resolve(target: Target, backend: Backend, env: Environment, sources: Sources,
             verdict: _Verdict) -> list[Resolution]:
    """The target resolved against the environment, one run per own index and --no-deps (`resolve_target`)."""
    out, problems = resolve_target(target, backend, env.executable, sources)
    verdict.problems.extend(problems)
    for res in out:
        if not res.ok and res.conflict is not None:
            verdict.problems.append(f"the resolver ({res.backend}) refuses the target: {refusal(res.conflict)}")
    return out


def _changes(env: Environment, removals: Sequence[Removal], installs: Mapping[NormalizedName, Install]) -> list[Change]:
    """Before and after of every distribution the plan removes or installs at another version."""
    changes: list[Change] = []
    for r in removals:
        dist = env.get(r.name)
        changes.append(Change(r.name, dist.raw_version if dist is not None else None, None))
    for key, inst in installs.items():
        dist = env.get(key)
        before = dist.raw_version if dist is not None else None
        if before != str(inst.version):
            changes.append(Change(inst.name, before, str(inst.version)))
    return changes


def _check_protected(changes: Iterable[Change], protected: Mapping[NormalizedName, Protection],
                     allow: Iterable[str], verdict: _Verdict) -> None:
    """A change to a protected installed name refuses the plan, unless --allow lifts an allowable protection."""
    allowed = {canonicalize_name(a) for a in allow}
    for ch in changes:
        why = protected.get(ch.key)
        if why is None or ch.before is None:
            continue
        if ch.key in allowed and why.allowable:
            verdict.warnings.append(f"replacing protected {ch.name} ({why.describe()}), allowed by --allow")
            continue
        after = "removed" if ch.after is None else ch.after
        hint = f"; pass --allow {ch.name} to permit it" if why.allowable else ""
        verdict.problems.append(f"would change protected {ch.name} {ch.before} -> {after} ({why.describe()}){hint}")


def _check_after_state(env: Environment, resolutions: Sequence[Resolution], installs: Mapping[NormalizedName, Install],
                       removals: Sequence[Removal], nodeps_keys: set[NormalizedName], allow_broken: bool,
                       verdict: _Verdict) -> None:
    """The after-state must be at least as consistent as the before-state."""
    before = before_state(env)
    by_pip = {i.key for res in resolutions if res.ok and res.backend == "pip" for i in res.installs}
    nodes = [Node(i.name, i.version, i.requires if i.key in by_pip else None) for i in installs.values()]
    after = after_state(before, nodes, [r.name for r in removals])
    for b in new_breakages(before, after, env.markers):
        text = f"after the fix, {b.describe()}"
        if canonicalize_name(b.dependent) in nodeps_keys:
            verdict.warnings.append(f"{text} (installed with --no-deps, as the matrix says)")
        elif allow_broken:
            verdict.warnings.append(f"{text} (allowed by --allow-broken)")
        else:
            verdict.problems.append(f"{text}; add {b.dependent} to the target or remove it, or pass --allow-broken")


_CUDA_LOCAL = re.compile(r"^cu[0-9]+$")
_CUDA_INDEX = re.compile(r"/(whl/)?cu[0-9]+/?$")


def _check_gpu(installs: Mapping[NormalizedName, Install], target: Target, gpu: Callable[[], GpuInfo] | None,
               verdict: _Verdict) -> None:
    """A CUDA build planned for a machine without a usable GPU is said (it installs, and runs on the CPU)."""
    cuda = sorted(f"{i.name} {i.version}" for i in installs.values() if _CUDA_LOCAL.match(i.version.local or ""))
    cuda += sorted(f"{p.name} (from {p.index_url})" for p in target.packages
                   if p.index_url and _CUDA_INDEX.search(p.index_url) and p.key in installs
                   and not _CUDA_LOCAL.match(installs[p.key].version.local or ""))
    if not cuda:
        return
    from .._env.gpu import detect

    info = (gpu or detect)()
    if info.available and info.kind != "mps":
        return
    why = info.reason or ("Apple MPS, not CUDA" if info.available else "no GPU found")
    verdict.warnings.append(f"the plan installs CUDA builds ({', '.join(cuda)}) but this machine has no NVIDIA GPU "
                            f"({why}): they will install and run on the CPU only; for a CPU machine use a CPU "
                            f"matrix (index_url = \"pytorch:cpu\")")


def _pins(target: Target, installs: Mapping[NormalizedName, Install], nodeps_keys: set[NormalizedName]) -> tuple[str, ...]:
    """The resolved versions every install step is held to (-c), except --no-deps and direct references."""
    direct = {p.key for p in target.packages if " @ " in p.requirement}
    return tuple(f"{i.name}=={i.version}" for i in installs.values() if i.key not in nodeps_keys | direct)


def plan_fix(
    target: Target,
    *,
    python: str | os.PathLike[str] | None = None,
    backend: str = "auto",
    allow: Iterable[str] = (),
    allow_broken: bool = False,
    sources: Sources | None = None,
    environment: Environment | None = None,
    protect: Iterable[str] = (),
    gpu: Callable[[], GpuInfo] | None = None,
) -> Plan:
    """Resolve `target` with a real resolver against the environment and return the plan; changes nothing.

    protect: the user's own protected names (--protect); gpu: how to learn whether this machine has a GPU
    (default: `_env.gpu.detect`, asked only when the plan installs a CUDA build).
    """
    start = time.perf_counter()
    chosen = select_backend(backend)
    env = environment or from_facts(facts_of(python))
    target = target.for_environment(env.markers)  # markers are the fixed environment's, not envdoctor's
    src = _merged(sources or Sources(), target.sources)
    verdict = _Verdict()
    _check_python(target, env, verdict)
    removals = [r for r in target.removals if env.get(r.name) is not None]
    resolutions = _resolve(target, chosen, env, src, verdict)
    installs = {i.key: i for res in resolutions if res.ok for i in res.installs}
    changes = _changes(env, removals, installs)
    # Protected names: what the matrix says, envdoctor's own dependencies, Colab's preinstalled stack.
    protected = protected_names(env, target, {p.key for p in target.packages} | {r.key for r in target.removals},
                                backend=chosen.name, user=protect)
    _check_protected(changes, protected, allow, verdict)
    nodeps_keys = {p.key for p in target.packages if p.no_deps}
    _check_after_state(env, resolutions, installs, removals, nodeps_keys, allow_broken, verdict)
    _check_gpu(installs, target, gpu, verdict)
    cfile = str(workdir_for(env.prefix) / "constraints.txt")
    pins = _pins(target, installs, nodeps_keys)
    steps = _steps(target, chosen, env.executable, removals, installs, src, cfile if pins else None,
                   workdir=workdir_for(env.prefix))
    return Plan(
        target=target.ref, kind=target.kind, python=env.executable, prefix=env.prefix, backend=chosen.name,
        steps=tuple(steps), changes=tuple(sorted(changes, key=lambda c: c.key)), constraints=pins,
        constraints_file=cfile if pins else "", problems=tuple(verdict.problems), warnings=tuple(verdict.warnings),
        protected=tuple(sorted(protected)), resolutions=tuple(resolutions), seconds=time.perf_counter() - start,
        source=target.source, sources=src,
        disk_bytes=estimate(env, installs, [c.key for c in changes if c.after is not None]),
    )


def _steps(target: Target, backend: Backend, exe: str, removals: Sequence[Removal],
           installs: Mapping[NormalizedName, Install], sources: Sources, constraints: str | None, *,
           workdir: Path) -> list[Step]:
    """Removals first, then one install call per group and (index, --no-deps) split, in the matrix's order."""
    steps: list[Step] = []
    if removals:
        names = tuple(r.name for r in removals)
        why = "; ".join(f"{r.name}: {r.reason}" for r in removals)
        steps.append(Step(StepKind.UNINSTALL, "remove packages that must be absent", names,
                          backend.uninstall_command(exe, names), reason=why))
    for group, pkgs in target.groups():
        todo = [p for p in pkgs if p.key in installs]
        # The torch family and every `index_url` group install together from one index, in one call.
        for (index_url, no_deps), members in _split(todo).items():
            specs = tuple(p.requirement if " @ " in p.requirement else f"{p.name}=={installs[p.key].version}"
                          for p in members)
            title = f"install group {group}" if group else "install"
            if index_url:
                title += " from its own index"
            if no_deps:
                title += " with --no-deps"
            hashed, text = "", ""
            if target.require_hashes:  # pip's --require-hashes: the hashes a user wrote are enforced by the step
                hashed = str(workdir / f"hashed-{len(steps) + 1}.txt")
                text = hashed_requirements(specs, target.hashes)
            command = backend.install_command(exe, specs, sources=sources, index_url=index_url, no_deps=no_deps,
                                              constraints=None if no_deps else constraints, hashed=hashed or None)
            steps.append(Step(StepKind.INSTALL, title, specs, command, reason="; ".join(p.origin for p in members),
                              index_url=index_url, no_deps=no_deps, hashed=hashed, hashed_text=text))
    return steps


def _split(pkgs: Sequence[TargetPackage]) -> dict[tuple[str | None, bool], list[TargetPackage]]:
    out: dict[tuple[str | None, bool], list[TargetPackage]] = {}
    for p in pkgs:
        out.setdefault((p.index_url, p.no_deps), []).append(p)
    return out


def write_constraints(plan: Plan) -> Path | None:
    """Write the plan's pins where its commands expect them (every install step passes `-c` this file), and
    each hash-checked step's pins with their hashes (its `-r` file)."""
    for step in plan.steps:
        if step.hashed:
            Path(step.hashed).parent.mkdir(parents=True, exist_ok=True)
            Path(step.hashed).write_text(step.hashed_text, encoding="utf-8")
    if not plan.constraints_file:
        return None
    path = Path(plan.constraints_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(plan.constraints) + "\n", encoding="utf-8")
    return path
