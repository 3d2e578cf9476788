"""Names a fix must not replace: the matrix's protected rules, envdoctor's own dependencies, Colab's stack."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from importlib import metadata

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from .._env.environment import Environment
from .targets import Target


class ProtectedBy(str, Enum):
    """Why a name is protected; only envdoctor's own dependencies cannot be allowed with --allow."""

    MATRIX = "matrix"
    OWN_DEPENDENCY = "own-dependency"
    INSTALLER = "installer"
    COLAB = "colab"


@dataclass(frozen=True)
class Protection:
    """One protected name's reason (`ref`: the matrix that protects it)."""

    by: ProtectedBy
    ref: str = ""

    @property
    def allowable(self) -> bool:
        """Whether `--allow NAME` may lift it: never for envdoctor's own dependencies (the fixer must not break itself)."""
        return self.by is not ProtectedBy.OWN_DEPENDENCY

    def describe(self) -> str:
        return {
            ProtectedBy.MATRIX: f"protected by {self.ref}",
            ProtectedBy.OWN_DEPENDENCY: "envdoctor's own dependency: the fixer must not break itself",
            ProtectedBy.INSTALLER: "the installer itself",
            ProtectedBy.COLAB: "Colab's preinstalled stack",
        }[self.by]


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


def protected_names(env: Environment, target: Target, named: Iterable[str]) -> dict[NormalizedName, Protection]:
    """Each protected name with why it is protected; names the target itself sets are not protected by Colab."""
    out: dict[NormalizedName, Protection] = {}
    named_keys = {canonicalize_name(n) for n in named}
    if env.runtime.colab:
        for key in env.distributions:
            if key not in named_keys:
                out[key] = Protection(ProtectedBy.COLAB)
    for key in target.protected:
        out[canonicalize_name(key)] = Protection(ProtectedBy.MATRIX, target.ref)
    for tool in _TOOLS:
        if tool not in named_keys:
            out.setdefault(canonicalize_name(tool), Protection(ProtectedBy.INSTALLER))
    if _same_environment(env):
        for key in own_dependencies():
            out[key] = Protection(ProtectedBy.OWN_DEPENDENCY)
    return out
