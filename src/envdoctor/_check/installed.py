"""Checks of the installed set itself, whatever the matrix says: requirements met (like `pip check`), metadata readable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from .._env.environment import Distribution, Environment
from .._env.satisfy import Ask, unmet
from .._matrix.model import Matrix
from .findings import Finding, Kind, Status
from .rules import installed


def consistency(matrix: Matrix, env: Environment) -> Iterator[Finding]:
    """Like `pip check`: every installed distribution's requirements, markers evaluated for this interpreter."""
    ours = {p.key for p in matrix.packages}
    asks: dict[Ask, Distribution] = {}
    for _, dist in sorted(env.distributions.items()):
        for line in dist.requires:
            asks[Ask(dist.name, dist.raw_version, line, "METADATA")] = dist
    evaluation = unmet(asks, installed(env), env.markers)
    for u in evaluation.unmet:
        dist = asks[u.ask]
        req = u.requirement
        status = Status.FAIL if dist.key in ours or canonicalize_name(req.name) in ours else Status.WARN
        head = f"{dist.name} {dist.raw_version} requires {req.name}{req.specifier}"
        common: dict[str, Any] = dict(expected=str(req), reason="declared in its METADATA (Requires-Dist)",
                                      evidence=(f"{dist.path}/METADATA: Requires-Dist: {u.ask.line}",))
        if u.missing:
            yield Finding(Kind.CONSISTENCY, status, dist.name, f"{head}, which is not installed",
                          found="not installed", fix=f"pip install '{req}'", **common)
        else:
            dep = env.get(req.name)
            yield Finding(Kind.CONSISTENCY, status, dist.name,
                          f"{head}, but {dep.name if dep else req.name} {u.found} is installed",
                          found=str(u.found), **common)
    for bad in evaluation.bad:
        dist = asks[bad.ask]
        yield Finding(Kind.METADATA, Status.WARN, dist.name, bad.describe(),
                      evidence=(f"{dist.path}/METADATA: Requires-Dist: {bad.ask.line}",))


def metadata(env: Environment) -> Iterator[Finding]:
    """Unreadable dist-info folders and distributions installed twice."""
    for b in env.broken:
        yield Finding(Kind.METADATA, Status.WARN, Path(b.path).name, f"unreadable metadata in {b.path}: {b.reason}",
                      fix="reinstall that package, or delete the stray folder")
    for d in env.duplicates:
        yield Finding(Kind.METADATA, Status.WARN, d.name,
                      f"{d.name} is installed twice: {d.kept_version} (used) shadows {d.shadowed_version} in {d.shadowed}",
                      expected="one install", found=f"{d.kept_version}, {d.shadowed_version}",
                      fix=f"pip uninstall {d.name} (repeat until none is left), then reinstall it")
