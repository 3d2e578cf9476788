"""The checkers of the package, Python and platform rules of a matrix: one function per rule kind (models: model.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName
from packaging.version import Version

from .._env.environment import Environment
from .._env.satisfy import Ask, unmet
from .findings import Finding, Kind, Status
from .registry import Context, checks


def _spec(s: SpecifierSet) -> str:
    return str(s) or "any version"


def _contains(spec: SpecifierSet, version: Any) -> bool:
    return spec.contains(version, prereleases=True)


def installed(env: Environment) -> dict[NormalizedName, Version | None]:
    """Installed versions by canonical name, as `unmet()` takes them."""
    return {key: d.version for key, d in env.distributions.items()}


def met(req: Requirement, env: Environment) -> bool:
    """Whether one matrix requirement ('trl<0.9') holds here, asked the way the consistency check asks."""
    evaluation = unmet([Ask("matrix", None, str(req))], installed(env), env.markers)
    return not evaluation.unmet and not evaluation.bad


@checks("python")
def python(ctx: Context) -> Iterator[Finding]:
    """The interpreter's version against [python]."""
    rule, env = ctx.matrix.python, ctx.env
    if rule is None:
        return
    ok = _contains(rule.specifier, env.python_version)
    yield Finding(Kind.PYTHON, Status.OK if ok else Status.FAIL, "python",
                  f"Python {env.python_version} {'satisfies' if ok else 'does not satisfy'} {rule.specifier}",
                  reason=rule.reason, evidence=rule.evidence, expected=str(rule.specifier),
                  found=str(env.python_version), fix=None if ok else ctx.fix)


@checks("platform")
def platform(ctx: Context) -> Iterator[Finding]:
    """Each [[platform]] marker against the interpreter's markers."""
    env = ctx.env
    for plat in ctx.matrix.platform:
        ok = plat.marker.evaluate(dict(env.markers))
        yield Finding(Kind.PLATFORM, Status.OK if ok else Status.FAIL, "platform",
                      f"platform {'satisfies' if ok else 'does not satisfy'} {plat.marker}",
                      reason=plat.reason, evidence=plat.evidence, expected=str(plat.marker),
                      found=f"{env.markers.get('sys_platform')} {env.markers.get('platform_machine')}")


@checks("packages")
def packages(ctx: Context) -> Iterator[Finding]:
    """Each [[packages]] rule: installed, at an allowed version, of the right local build."""
    matrix, env = ctx.matrix, ctx.env
    fix = ctx.fix
    for rule in matrix.packages:
        dist = env.get(rule.name)
        common: dict[str, Any] = dict(reason=rule.reason, evidence=rule.evidence, expected=_spec(rule.specifier))
        if dist is None:
            status = Status.WARN if rule.optional else Status.FAIL
            yield Finding(Kind.MISSING, status, rule.name, f"{rule.name} is not installed (needs {_spec(rule.specifier)})",
                          fix=fix, **common)
            continue
        if dist.version is None:
            yield Finding(Kind.PACKAGE, Status.FAIL, rule.name,
                          f"{rule.name} has an invalid version {dist.raw_version!r}", found=dist.raw_version,
                          fix=fix, **common)
            continue
        found = str(dist.version)
        if not _contains(rule.specifier, dist.version):
            yield Finding(Kind.PACKAGE, Status.FAIL, rule.name,
                          f"{rule.name} {found} does not satisfy {rule.specifier}", found=found, fix=fix, **common)
        elif rule.local and dist.local != rule.local:
            yield Finding(Kind.PACKAGE, Status.FAIL, rule.name,
                          f"{rule.name} {found} is not the +{rule.local} build", found=found, fix=fix, **common)
        else:
            yield Finding(Kind.PACKAGE, Status.OK, rule.name, f"{rule.name} {found} satisfies {_spec(rule.specifier)}",
                          found=found, **common)


@checks("absent")
def absent(ctx: Context) -> Iterator[Finding]:
    """Each [[absent]] package that is installed."""
    for rule in ctx.matrix.absent:
        dist = ctx.env.get(rule.name)
        if dist is not None:
            yield Finding(Kind.ABSENT, Status.FAIL, rule.name, f"{rule.name} {dist.raw_version} must not be installed",
                          reason=rule.reason, evidence=rule.evidence, expected="absent", found=dist.raw_version,
                          fix=f"pip uninstall {rule.name}")


@checks("known_bad")
def known_bad(ctx: Context) -> Iterator[Finding]:
    """Each [[known_bad]] version that is installed (together with its `with` requirement, when it has one)."""
    matrix, env = ctx.matrix, ctx.env
    for bad in matrix.known_bad:
        dist = env.get(bad.name)
        if dist is None or dist.version is None or not _contains(bad.specifier, dist.version):
            continue
        if bad.with_ is not None and not met(bad.with_, env):
            continue
        together = f" together with {bad.with_}" if bad.with_ is not None else ""
        yield Finding(Kind.KNOWN_BAD, Status.FAIL, bad.name,
                      f"{bad.name} {dist.version} is a known-bad version ({bad.specifier}){together}",
                      reason=bad.reason, evidence=bad.evidence, expected=f"not {bad.specifier}",
                      found=str(dist.version), fix=ctx.fix)
