"""Names a fix must not replace: the matrix's protected rules, envdoctor's own dependencies, Colab's stack."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import metadata

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from .._env.environment import Environment
from .targets import Target

# Installers are protected too: replacing pip or uv mid-fix would pull the floor from under the fixer.
_TOOLS = ("pip", "uv", "setuptools", "wheel")


def own_dependencies(root: str = "envdoctor") -> set[NormalizedName]:
    """envdoctor and the closure of its installed non-extra requirements, read from this interpreter."""
    seen: set[NormalizedName] = set()
    todo = [root]
    while todo:
        name = todo.pop()
        key = canonicalize_name(name)
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(key)
        for line in dist.requires or ():
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            todo.append(req.name)
    return seen


def _same_environment(env: Environment) -> bool:
    import os
    import sys

    return os.path.realpath(env.prefix or "") == os.path.realpath(sys.prefix)


def protected_names(env: Environment, target: Target, named: Iterable[str]) -> dict[NormalizedName, str]:
    """Each protected name with why it is protected; names the target itself sets are not protected by Colab."""
    out: dict[NormalizedName, str] = {}
    named_keys = {canonicalize_name(n) for n in named}
    if env.runtime.colab:
        for key in env.distributions:
            if key not in named_keys:
                out[key] = "Colab's preinstalled stack"
    for key in target.protected:
        out[canonicalize_name(key)] = f"protected by {target.ref}"
    for tool in _TOOLS:
        if tool not in named_keys:
            out.setdefault(canonicalize_name(tool), "the installer itself")
    if _same_environment(env):
        for key in own_dependencies():
            out[key] = "envdoctor's own dependency: the fixer must not break itself"
    return out
