"""Resolve a target against an environment and turn the answer into a frozen plan of exact installer commands."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name

from .._env.environment import Environment, facts_of, from_facts
from .._resolver import Requested, Resolution, Sources, pick_backend, resolve
from .commands import install_command, uninstall_command
from .protect import protected_names
from .simulate import Node, after_state, before_state, new_breakages
from .targets import Target
from .workdir import workdir_for


@dataclass(frozen=True)
class Step:
    """One installer call of a plan."""

    kind: str  # "uninstall" | "install"
    title: str
    packages: tuple[str, ...]
    command: tuple[str, ...]
    reason: str = ""
    index_url: str | None = None
    no_deps: bool = False


@dataclass(frozen=True)
class Change:
    """One distribution the plan changes: before and after versions (None = absent)."""

    name: str
    before: str | None
    after: str | None

    @property
    def key(self) -> NormalizedName:
        return canonicalize_name(self.name)


@dataclass(frozen=True)
class Plan:
    """Everything `fix` will do, decided before anything is touched; `--dry-run` renders exactly this."""

    target: str
    kind: str
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

    @property
    def ok(self) -> bool:
        """True when the plan may be applied (the resolver agreed and nothing protected would change)."""
        return not self.problems

    @property
    def noop(self) -> bool:
        return not self.steps


def _merged(given: Sources, named: Sources) -> Sources:
    """The command line's sources plus those the target names (a requirements file's -i/-f lines), as pip merges them."""
    if named == Sources():
        return given
    return Sources(given.index_url or named.index_url,
                   tuple(dict.fromkeys([*given.extra_index_urls, *named.extra_index_urls])),
                   tuple(dict.fromkeys([*given.find_links, *named.find_links])),
                   given.no_index or named.no_index, given.extra_args)


def _sources_for(target: Target, sources: Sources) -> Sources:
    """Resolution sources: the caller's, plus every group's own index (torch's build index) as an extra."""
    extra = [p.index_url for p in target.packages if p.index_url]
    if not extra:
        return sources
    urls = tuple(dict.fromkeys([*sources.extra_index_urls, *extra]))
    return Sources(sources.index_url, urls, sources.find_links, sources.no_index, sources.extra_args)


def plan_fix(
    target: Target,
    *,
    python: str | os.PathLike[str] | None = None,
    backend: str = "auto",
    allow: Iterable[str] = (),
    allow_broken: bool = False,
    sources: Sources | None = None,
    environment: Environment | None = None,
) -> Plan:
    """Resolve `target` with a real resolver against the environment and return the plan; changes nothing."""
    start = time.perf_counter()
    chosen = pick_backend(backend)
    env = environment or from_facts(facts_of(python))
    target = target.for_environment(env.markers)  # markers are the fixed environment's, not envdoctor's
    src = _merged(sources or Sources(), target.sources)
    exe = env.executable
    problems: list[str] = []
    warnings: list[str] = []
    if target.matrix is not None and target.matrix.python is not None:
        rule = target.matrix.python
        if not rule.specifier.contains(env.python_version, prereleases=True):
            problems.append(f"{target.ref} needs Python {rule.specifier} ({rule.reason}); {exe} is "
                            f"{env.python_version}, and fix does not change the interpreter")
    removals = [r for r in target.removals if env.get(r.name) is not None]
    regular = [p for p in target.packages if not p.no_deps]
    nodeps = [p for p in target.packages if p.no_deps]
    rsrc = _sources_for(target, src)
    resolutions: list[Resolution] = []
    if regular:
        # uv's dry run prints `+ name @ url` without a version, so direct references are resolved by pip.
        direct = any(" @ " in p.requirement for p in regular)
        resolutions.append(resolve([Requested(p.requirement, p.cited) for p in regular], python=exe,
                                   backend="pip" if direct else chosen, sources=rsrc,
                                   constraints=target.constraints))
    if nodeps:
        # pip even under --backend uv: only pip's report carries the requirements that --no-deps skips,
        # and those are what the plan must show (the seed's axolotl --no-deps hid its stale pins).
        resolutions.append(resolve([Requested(p.requirement, p.cited) for p in nodeps], python=exe,
                                   backend="pip", sources=rsrc, no_deps=True))
    for res in resolutions:
        if not res.ok and res.conflict is not None:
            problems.append(f"the resolver ({res.backend}) refuses the target: {res.conflict.message}")
    installs = {i.key: i for res in resolutions if res.ok for i in res.installs}
    changes: list[Change] = [Change(r.name, env.get(r.name).raw_version, None) for r in removals]  # type: ignore[union-attr]
    for key, inst in installs.items():
        dist = env.get(key)
        before = dist.raw_version if dist is not None else None
        if before != str(inst.version):
            changes.append(Change(inst.name, before, str(inst.version)))
    # Protected names: what the matrix says, envdoctor's own dependencies, Colab's preinstalled stack.
    named = {p.key for p in target.packages} | {r.key for r in target.removals}
    protected = protected_names(env, target, named)
    allowed = {canonicalize_name(a) for a in allow}
    for ch in changes:
        why = protected.get(ch.key)
        if why is None or ch.before is None:
            continue
        if ch.key in allowed and not why.startswith("envdoctor"):
            warnings.append(f"replacing protected {ch.name} ({why}), allowed by --allow")
            continue
        after = "removed" if ch.after is None else ch.after
        hint = "" if why.startswith("envdoctor") else f"; pass --allow {ch.name} to permit it"
        problems.append(f"would change protected {ch.name} {ch.before} -> {after} ({why}){hint}")
    # The after-state must be at least as consistent as the before-state.
    before_nodes = before_state(env)
    by_pip = {i.key for res in resolutions if res.ok and res.backend == "pip" for i in res.installs}
    nodes = [Node(i.name, i.version, i.requires if i.key in by_pip else None) for i in installs.values()]
    after_nodes = after_state(before_nodes, nodes, [r.name for r in removals])
    nodeps_keys = {p.key for p in nodeps}
    for b in new_breakages(before_nodes, after_nodes, env.markers):
        text = f"after the fix, {b.describe()}"
        if canonicalize_name(b.dependent) in nodeps_keys:
            warnings.append(f"{text} (installed with --no-deps, as the matrix says)")
        elif allow_broken:
            warnings.append(f"{text} (allowed by --allow-broken)")
        else:
            problems.append(f"{text}; add {b.dependent} to the target or remove it, or pass --allow-broken")
    work = workdir_for(env.prefix)
    cfile = str(work / "constraints.txt")
    pins = tuple(f"{i.name}=={i.version}" for i in installs.values()
                 if i.key not in nodeps_keys and not _direct(target, i.key))
    steps = _steps(target, chosen, exe, removals, installs, src, cfile if pins else None)
    return Plan(
        target=target.ref, kind=target.kind, python=exe, prefix=env.prefix, backend=chosen, steps=tuple(steps),
        changes=tuple(sorted(changes, key=lambda c: c.key)), constraints=pins, constraints_file=cfile if pins else "",
        problems=tuple(problems), warnings=tuple(warnings), protected=tuple(sorted(protected)),
        resolutions=tuple(resolutions), seconds=time.perf_counter() - start, source=target.source,
    )


def _direct(target: Target, key: str) -> bool:
    return any(p.key == key and " @ " in p.requirement for p in target.packages)


def _steps(target: Target, backend: str, exe: str, removals: list, installs: dict, sources: Sources,
           constraints: str | None) -> list[Step]:
    steps: list[Step] = []
    if removals:
        names = tuple(r.name for r in removals)
        why = "; ".join(f"{r.name}: {r.reason}" for r in removals)
        steps.append(Step("uninstall", "remove packages that must be absent", names,
                          uninstall_command(backend, exe, names), reason=why))
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
            reason = "; ".join(p.origin for p in members)
            steps.append(Step("install", title, specs, install_command(
                backend, exe, specs, sources=sources, index_url=index_url, no_deps=no_deps,
                constraints=None if no_deps else constraints), reason=reason, index_url=index_url, no_deps=no_deps))
    return steps


def _split(pkgs: list) -> dict[tuple[str | None, bool], list]:
    out: dict[tuple[str | None, bool], list] = {}
    for p in pkgs:
        out.setdefault((p.index_url, p.no_deps), []).append(p)
    return out


def write_constraints(plan: Plan) -> Path | None:
    """Write the plan's pins where its commands expect them (every install step passes `-c` this file)."""
    if not plan.constraints_file:
        return None
    path = Path(plan.constraints_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(plan.constraints) + "\n", encoding="utf-8")
    return path
