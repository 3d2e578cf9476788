"""Verify a fix the way the Colab seed's verification cell does: the target is met and its packages import."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from .._env.environment import Environment
from .._env.satisfy import Ask
from .._env.satisfy import unmet as unmet_asks
from .restart import _top_levels
from .snapshot import record_files
from .targets import Target

DEPENDENTS_LIMIT = 10  # dependents imported before and after a fix: bounded, an import of each can take seconds

# Runs in the target interpreter: import each name, report the error of those that fail (stdlib only).
_SCRIPT = r"""
import importlib, json, sys
out = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except BaseException as e:  # an import may raise anything, even SystemExit
        out[name] = f"{type(e).__name__}: {e}"[:300]
print(json.dumps(out))
"""


def unmet(target: Target | None, env: Environment) -> list[str]:
    """What the target still asks for after the steps ran."""
    if target is None:
        return []
    packages = {Ask(target.ref, None, p.requirement, p.origin): p for p in target.for_environment(env.markers).packages}
    installed = {key: dist.version for key, dist in env.distributions.items()}
    evaluation = unmet_asks(packages, installed, env.markers)
    out: list[str] = [f"{packages[b.ask].name}: {b.problem} ({b.ask.origin})" for b in evaluation.bad]
    for u in evaluation.unmet:
        p = packages[u.ask]
        if u.missing:
            out.append(f"{p.name} is not installed after the fix ({p.origin})")
        else:
            dist = env.get(p.name)
            raw = dist.raw_version if dist is not None else str(u.found)
            out.append(f"{p.name} is {raw} after the fix, not {u.requirement.specifier} ({p.origin})")
    for r in target.removals:
        if env.get(r.name) is not None:
            out.append(f"{r.name} is still installed ({r.origin})")
    return out


def import_names(env: Environment, name: str, sites: Iterable[str]) -> list[str]:
    """The top-level modules a distribution installed (public ones first; private only if there is nothing else)."""
    dist = env.get(name)
    if dist is None or not dist.path.endswith(".dist-info"):
        return []
    tops = sorted(n for n in _top_levels(record_files(dist.path, dist.location) or [], sites) if n.isidentifier())
    public = [n for n in tops if not n.startswith("_")]
    return public or tops


def import_failures(python: str, names: list[str], timeout: float = 600.0) -> dict[str, str]:
    """Import `names` in the target interpreter; the ones that fail, with the error's one line."""
    if not names:
        return {}
    try:
        proc = subprocess.run([python, "-c", _SCRIPT, *names], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {n: f"importing did not finish within {timeout:.0f} s" for n in names}
    except OSError as e:
        return {n: f"cannot run {python}: {e.strerror or e}" for n in names}
    try:
        return dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {n: f"the interpreter died while importing: {last}" for n in names}


@dataclass(frozen=True)
class Dependents:
    """Installed packages that depend on what the fix changes, with their import names and how they imported
    before the first step (module -> error; absent: it imported)."""

    modules: dict[str, str]  # module -> the distribution it belongs to
    failing_before: dict[str, str]


def dependents(env: Environment, changed: Iterable[str], exclude: Iterable[str], sites: Iterable[str],
               limit: int = DEPENDENTS_LIMIT) -> dict[str, str]:
    """Import names of up to `limit` installed distributions (not themselves changed or targeted) that require
    a changed one: what a new version can break at import time (diffusers after a peft upgrade)."""
    changed_keys = {str(canonicalize_name(c)) for c in changed}
    skip = changed_keys | {str(canonicalize_name(e)) for e in exclude}
    site_list = list(sites)
    found: dict[str, str] = {}
    count = 0
    for key, dist in sorted(env.distributions.items()):
        if key in skip or count >= limit:
            continue
        needs = False
        for line in dist.requires:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if canonicalize_name(req.name) in changed_keys and (req.marker is None or
                                                                 req.marker.evaluate({**env.markers, "extra": ""})):
                needs = True
                break
        if needs:
            count += 1
            for mod in import_names(env, key, site_list):
                found.setdefault(mod, dist.name)
    return found


def baseline(env: Environment, changed: Iterable[str], exclude: Iterable[str], sites: Iterable[str]) -> Dependents:
    """The dependents of what the fix will change, imported before the first step (bounded, in a subprocess)."""
    modules = dependents(env, changed, exclude, sites)
    return Dependents(modules, import_failures(env.executable, list(modules), timeout=120.0) if modules else {})


def verify(target: Target | None, env: Environment, changed: Iterable[str], sites: Iterable[str],
           imports: bool = True, before: Dependents | None = None) -> tuple[list[str], list[str]]:
    """(failures, warnings) after the steps: unmet requirements, changed target packages that install no module
    or do not import, and installed dependents of a changed package that imported before and do not now.

    A --no-deps package that does not import is a warning: the matrix chose to install it without its
    declared requirements (the seed installs axolotl's by hand afterwards).
    """
    failures = unmet(target, env)
    if failures or not imports or target is None:
        return failures, []
    changed_keys = set(changed)
    site_list = list(sites)
    names: dict[str, tuple[str, bool]] = {}
    for p in target.packages:
        if p.key in changed_keys:
            mods = import_names(env, p.name, site_list)
            dist = env.get(p.name)
            if not mods and dist is not None and dist.path.endswith(".dist-info"):
                # axolotl 0.4.0 from git built an empty wheel: nothing to import is not "it imports".
                failures.append(f"{p.name} {dist.raw_version} installed no importable module ({p.origin}); "
                                f"its wheel is empty or broken")
            for mod in mods:
                names.setdefault(mod, (p.name, p.no_deps))
    deps = dict(before.modules) if before is not None else {}
    warnings: list[str] = []
    for mod, error in import_failures(env.executable, [*names, *(m for m in deps if m not in names)]).items():
        if mod in names:
            pkg, no_deps = names[mod]
            text = f"import {mod} ({pkg}) fails after the fix: {error}"
            (warnings if no_deps else failures).append(text + (" (installed with --no-deps)" if no_deps else ""))
        elif before is not None and mod not in before.failing_before:
            failures.append(f"import {mod} ({deps[mod]}, installed, not changed) imported before the fix and "
                            f"fails after it: {error}")
    return failures, warnings
