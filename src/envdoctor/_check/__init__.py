"""Check an environment against a matrix: every finding at once, ordered by root cause."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from .._env.environment import Distribution, Environment, inspect_environment
from .._env.gpu import GpuInfo
from .._env.satisfy import Ask, unmet
from .._matrix.loader import DEFAULT_MATRIX, load_matrix
from .._matrix.model import Matrix
from ..errors import InspectionError
from .findings import Finding, Kind, Report, Status
from .gpu import gpu_findings

__all__ = ["Finding", "Report", "Status", "check", "check_environment"]


def _spec(s: SpecifierSet) -> str:
    return str(s) or "any version"


def _contains(spec: SpecifierSet, version: Any) -> bool:
    return spec.contains(version, prereleases=True)


def _installed(env: Environment) -> dict[NormalizedName, Version | None]:
    return {key: d.version for key, d in env.distributions.items()}


def _met(req: Requirement, env: Environment) -> bool:
    """Whether one matrix requirement ('trl<0.9') holds here, asked the way the consistency check asks."""
    evaluation = unmet([Ask("matrix", None, str(req))], _installed(env), env.markers)
    return not evaluation.unmet and not evaluation.bad


def _packages(matrix: Matrix, env: Environment) -> Iterator[Finding]:
    for rule in matrix.packages:
        dist = env.get(rule.name)
        common: dict[str, Any] = dict(reason=rule.reason, evidence=rule.evidence, expected=_spec(rule.specifier))
        if dist is None:
            status = Status.WARN if rule.optional else Status.FAIL
            yield Finding(Kind.MISSING, status, rule.name, f"{rule.name} is not installed (needs {_spec(rule.specifier)})",
                          fix=f"envdoctor fix --matrix {matrix.ref}", **common)
            continue
        if dist.version is None:
            yield Finding(Kind.PACKAGE, Status.FAIL, rule.name,
                          f"{rule.name} has an invalid version {dist.raw_version!r}", found=dist.raw_version,
                          fix=f"envdoctor fix --matrix {matrix.ref}", **common)
            continue
        found = str(dist.version)
        if not _contains(rule.specifier, dist.version):
            yield Finding(Kind.PACKAGE, Status.FAIL, rule.name,
                          f"{rule.name} {found} does not satisfy {rule.specifier}", found=found,
                          fix=f"envdoctor fix --matrix {matrix.ref}", **common)
        elif rule.local and dist.local != rule.local:
            yield Finding(Kind.PACKAGE, Status.FAIL, rule.name,
                          f"{rule.name} {found} is not the +{rule.local} build", found=found,
                          fix=f"envdoctor fix --matrix {matrix.ref}", **common)
        else:
            yield Finding(Kind.PACKAGE, Status.OK, rule.name, f"{rule.name} {found} satisfies {_spec(rule.specifier)}",
                          found=found, **common)


def _absent_and_bad(matrix: Matrix, env: Environment) -> Iterator[Finding]:
    for rule in matrix.absent:
        dist = env.get(rule.name)
        if dist is not None:
            yield Finding(Kind.ABSENT, Status.FAIL, rule.name, f"{rule.name} {dist.raw_version} must not be installed",
                          reason=rule.reason, evidence=rule.evidence, expected="absent", found=dist.raw_version,
                          fix=f"pip uninstall {rule.name}")
    for bad in matrix.known_bad:
        dist = env.get(bad.name)
        if dist is None or dist.version is None or not _contains(bad.specifier, dist.version):
            continue
        if bad.with_ is not None and not _met(bad.with_, env):
            continue
        together = f" together with {bad.with_}" if bad.with_ is not None else ""
        yield Finding(Kind.KNOWN_BAD, Status.FAIL, bad.name,
                      f"{bad.name} {dist.version} is a known-bad version ({bad.specifier}){together}",
                      reason=bad.reason, evidence=bad.evidence, expected=f"not {bad.specifier}",
                      found=str(dist.version), fix=f"envdoctor fix --matrix {matrix.ref}")


def _consistency(matrix: Matrix, env: Environment) -> Iterator[Finding]:
    """Like `pip check`: every installed distribution's requirements, markers evaluated for this interpreter."""
    ours = {p.key for p in matrix.packages}
    asks: dict[Ask, Distribution] = {}
    for _, dist in sorted(env.distributions.items()):
        for line in dist.requires:
            asks[Ask(dist.name, dist.raw_version, line, "METADATA")] = dist
    evaluation = unmet(asks, _installed(env), env.markers)
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


def _python_platform(matrix: Matrix, env: Environment) -> Iterator[Finding]:
    if matrix.python is not None:
        rule = matrix.python
        ok = _contains(rule.specifier, env.python_version)
        yield Finding(Kind.PYTHON, Status.OK if ok else Status.FAIL, "python",
                      f"Python {env.python_version} {'satisfies' if ok else 'does not satisfy'} {rule.specifier}",
                      reason=rule.reason, evidence=rule.evidence, expected=str(rule.specifier),
                      found=str(env.python_version))
    for plat in matrix.platform:
        ok = plat.marker.evaluate(dict(env.markers))
        yield Finding(Kind.PLATFORM, Status.OK if ok else Status.FAIL, "platform",
                      f"platform {'satisfies' if ok else 'does not satisfy'} {plat.marker}",
                      reason=plat.reason, evidence=plat.evidence, expected=str(plat.marker),
                      found=f"{env.markers.get('sys_platform')} {env.markers.get('platform_machine')}")


def _lookup(config: dict[str, Any], dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def load_model_config(model: str | os.PathLike[str]) -> dict[str, Any]:
    """config.json of a model: a file, or a folder that holds one."""
    path = Path(model)
    if path.is_dir():
        path = path / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InspectionError(f"--model {model}: cannot read {path}: {e.strerror or e}") from e
    except ValueError as e:
        raise InspectionError(f"--model {model}: {path} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise InspectionError(f"--model {model}: {path} is not a JSON object")
    return data


def _model(matrix: Matrix, env: Environment, config: dict[str, Any]) -> Iterator[Finding]:
    for rule in matrix.model_features:
        value = _lookup(config, rule.key)
        if value is None:
            continue
        if rule.contains is not None:
            if not (isinstance(value, list) and rule.contains in value):
                continue
        elif rule.equals is not None and value != rule.equals:
            continue
        found = env.version_of(rule.requires.name)
        ok = found is not None and _met(rule.requires, env)
        yield Finding(Kind.MODEL, Status.OK if ok else Status.FAIL, rule.requires.name,
                      f"the model uses {rule.feature}: needs {rule.requires}"
                      + (f", found {found}" if found is not None else ", not installed"),
                      reason=rule.reason, evidence=rule.evidence, expected=str(rule.requires.specifier),
                      found=str(found) if found is not None else None,
                      fix=None if ok else f"pip install '{rule.requires}'")


def _metadata(env: Environment) -> Iterator[Finding]:
    for b in env.broken:
        yield Finding(Kind.METADATA, Status.WARN, Path(b.path).name, f"unreadable metadata in {b.path}: {b.reason}",
                      fix="reinstall that package, or delete the stray folder")
    for d in env.duplicates:
        yield Finding(Kind.METADATA, Status.WARN, d.name,
                      f"{d.name} is installed twice: {d.kept_version} (used) shadows {d.shadowed_version} in {d.shadowed}",
                      expected="one install", found=f"{d.kept_version}, {d.shadowed_version}",
                      fix=f"pip uninstall {d.name} (repeat until none is left), then reinstall it")


def _matrix_status(matrix: Matrix) -> Iterator[Finding]:
    if matrix.status != "current":
        yield Finding(Kind.MATRIX, Status.WARN, matrix.ref,
                      f"matrix {matrix.ref} is marked {matrix.status}: {matrix.status_reason or 'see its description'}",
                      reason=matrix.status_reason or "")


def _certificate(matrix: Matrix, env: Environment) -> tuple[dict[str, Any], list[Finding]]:
    try:
        from .._certify import certificate_status
    except ImportError:
        return {}, []
    try:
        status = certificate_status(matrix, env)
    except Exception as e:  # a broken certificate store must never break the check
        return {"valid": False, "reason": str(e)}, []
    info = {"valid": bool(status.valid), "reason": status.reason}
    found = Finding(Kind.CERTIFICATE, Status.OK if status.valid else Status.SKIP, "certificate",
                    f"certificate: {status.reason}",
                    fix=None if status.valid else f"envdoctor certify --matrix {matrix.ref}")
    return info, [found]


def check_environment(matrix: Matrix, env: Environment, model_config: dict[str, Any] | None = None,
                      certificate: bool = True) -> Report:
    """Apply every rule of `matrix` to `env`; pure apart from reading the certificate store."""
    findings: list[Finding] = []
    findings += _matrix_status(matrix)
    findings += _python_platform(matrix, env)
    findings += _packages(matrix, env)
    findings += _absent_and_bad(matrix, env)
    findings += _consistency(matrix, env)
    findings += gpu_findings(matrix, env)
    if model_config is not None:
        findings += _model(matrix, env, model_config)
    findings += _metadata(env)
    cert_info, cert_findings = _certificate(matrix, env) if certificate else ({}, [])
    findings += cert_findings
    findings.sort(key=lambda f: f.sort_key)
    return Report(
        matrix=matrix.ref, matrix_status=matrix.status, python=str(env.python_version),
        executable=env.executable, gpu=env.gpu.to_dict(), runtime=vars(env.runtime).copy(),
        tools={"pip": env.pip_version, "uv": env.uv},
        findings=tuple(findings), certificate=cert_info,
    )


def check(matrix: str | Matrix = DEFAULT_MATRIX, *, model: str | os.PathLike[str] | None = None,
          gpu: str | GpuInfo | None = None, python: str | os.PathLike[str] | None = None,
          environment: Environment | None = None) -> Report:
    """Check an environment (this one, `python=` another interpreter) against a matrix reference."""
    m = matrix if isinstance(matrix, Matrix) else load_matrix(matrix)
    env = environment if environment is not None else inspect_environment(python=python, gpu=gpu)
    config = load_model_config(model) if model is not None else None
    return check_environment(m, env, config)


