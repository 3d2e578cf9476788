"""Verify a fix the way the Colab seed's verification cell does: the target is met and its packages import."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable

from .._env.environment import Environment
from .._env.satisfy import Ask
from .._env.satisfy import unmet as unmet_asks
from .restart import _top_levels
from .snapshot import record_files
from .targets import Target

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


def verify(target: Target | None, env: Environment, changed: Iterable[str], sites: Iterable[str],
           imports: bool = True) -> tuple[list[str], list[str]]:
    """(failures, warnings) after the steps: unmet requirements, and changed target packages that do not import.

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
            for mod in import_names(env, p.name, site_list):
                names.setdefault(mod, (p.name, p.no_deps))
    warnings: list[str] = []
    for mod, error in import_failures(env.executable, list(names)).items():
        pkg, no_deps = names.get(mod, (mod, False))
        text = f"import {mod} ({pkg}) fails after the fix: {error}"
        (warnings if no_deps else failures).append(text + (" (installed with --no-deps)" if no_deps else ""))
    return failures, warnings
