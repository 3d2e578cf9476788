"""Names a fix must not replace: the matrix's protected rules, envdoctor's own dependencies, Colab's stack."""

from __future__ import annotations

import os
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
    USER = "user"
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
            ProtectedBy.INSTALLER: "the installer that runs the steps",
            ProtectedBy.USER: "protected by --protect",
            ProtectedBy.COLAB: "Colab's preinstalled stack",
        }[self.by]


def running_installer(env: Environment, backend: str) -> str | None:
    """The distribution that runs the steps inside the target environment: its pip under the pip backend, uv
    under the uv backend when that uv binary lives in the target. Replacing it mid-step pulls the floor from
    under the fix; setuptools and wheel run no step, so pip upgrading them is ordinary (issue 14)."""
    if backend == "pip":
        return "pip" if env.get("pip") is not None else None
    if backend == "uv":
        from .._resolver import find_uv

        uv = find_uv() or ""
        inside = bool(uv and env.prefix) and os.path.realpath(uv).startswith(os.path.realpath(env.prefix) + os.sep)
        return "uv" if inside and env.get("uv") is not None else None
    return None


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


def protected_names(env: Environment, target: Target, named: Iterable[str], *, backend: str = "pip",
                    user: Iterable[str] = ()) -> dict[NormalizedName, Protection]:
    """Each protected name with why it is protected.

    A name the target itself pins is a change the target allows: Colab's stack and the matrix's protected
    names guard what the target does not name. The user's list (--protect), the installer that runs the
    steps and envdoctor's own dependencies in its own interpreter hold whatever the target says.
    """
    out: dict[NormalizedName, Protection] = {}
    named_keys = {canonicalize_name(n) for n in named}
    if env.runtime.colab:
        for key in env.distributions:
            if key not in named_keys:
                out[key] = Protection(ProtectedBy.COLAB)
    for key in target.protected:
        if canonicalize_name(key) not in named_keys:
            out[canonicalize_name(key)] = Protection(ProtectedBy.MATRIX, target.ref)
    tool = running_installer(env, backend)
    if tool is not None and tool not in named_keys:
        out[canonicalize_name(tool)] = Protection(ProtectedBy.INSTALLER)
    for name in user:
        out[canonicalize_name(name)] = Protection(ProtectedBy.USER)
    if _same_environment(env):
        for key in own_dependencies():
            out[key] = Protection(ProtectedBy.OWN_DEPENDENCY)
    return out
