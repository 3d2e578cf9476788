"""Matrices you can trust: resolve a matrix (or a requirements file) with a real resolver and check its rules.

`validate_matrix` hands the matrix's package set to `envdoctor._resolver.resolve` (uv's `pip compile`, else
pip's `--dry-run --report`) for the matrix's declared Python and platform, explains a conflict as
"A v requires B spec; the matrix pins B==x", then checks the runtime rules that metadata does not declare
(`known_bad` with `with`, `absent`) against the resolved set. What cannot be checked here (a build on
another index, a VCS source, `--no-deps`, a package with no wheel) is listed as `Unchecked`, never passed silently.
Validation resolves from wheels only: it never runs a build backend, whoever wrote the matrix (issue 15).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from .._env.satisfy import Ask, unmet
from .._resolver import Conflict, ConflictKind
from .._resolver import Requested as Line  # a requirement line and where it was written
from ..errors import UsageError
from .checks import index_problem as check_index  # the load refuses a bad one; kept for a built Matrix
from .model import KnownBadRule, Matrix

PYTHONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
# A declared platform name -> the marker values of that platform (for the matrix's `platform` rules).
PLATFORM_MARKERS = {
    "linux": {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix", "platform_machine": "x86_64"},
    "windows": {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt", "platform_machine": "AMD64"},
    "macos": {"sys_platform": "darwin", "platform_system": "Darwin", "os_name": "posix", "platform_machine": "arm64"},
}
# The targets `--platform` takes; the resolver maps each to uv's --python-platform or pip's --platform tags.
PLATFORMS = ("linux", "linux-aarch64", "windows", "macos", "macos-x86_64")


@dataclass(frozen=True)
class Unchecked:
    """Something the resolver could not check here; reported, never passed silently."""

    name: str
    reason: str


ProblemKind = Literal["conflict", "runtime", "absent", "index", "python", "evidence", "probe"]


@dataclass(frozen=True)
class Problem:
    """A reason the set is not trustworthy: a resolver conflict, a runtime rule, a malformed index hint."""

    kind: ProblemKind
    message: str
    detail: tuple[str, ...] = ()


@dataclass(frozen=True)
class TargetResult:
    """The resolver's answer for one (Python, platform) target."""

    python_version: str
    platform: str
    ok: bool
    backend: str
    seconds: float
    installs: tuple[tuple[str, str], ...] = ()
    problems: tuple[Problem, ...] = ()
    unbuilt: tuple[str, ...] = ()  # requested names with no wheel for the target: not evaluated without a build


@dataclass(frozen=True)
class Validation:
    """Everything `matrix validate` found for one matrix or requirements file."""

    subject: str
    targets: tuple[TargetResult, ...]
    problems: tuple[Problem, ...] = ()
    unchecked: tuple[Unchecked, ...] = ()
    lines: tuple[Line, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems and all(t.ok for t in self.targets)

    @property
    def all_problems(self) -> tuple[Problem, ...]:
        return self.problems + tuple(p for t in self.targets for p in t.problems)


def rules_without_evidence(matrix: Matrix) -> list[str]:
    """Every rule of the merged matrix that has no evidence, by its place ('packages[torch]', 'gpu.bf16')."""
    out: list[str] = []
    if matrix.python is not None and not matrix.python.evidence:
        out.append("python")
    groups: dict[str, Iterable[object]] = {
        "platform": matrix.platform, "packages": matrix.packages, "protected": matrix.protected,
        "absent": matrix.absent, "known_bad": matrix.known_bad, "renames": matrix.renames,
        "symptoms": matrix.symptoms, "model_features": matrix.model_features, "gpu.workloads": matrix.gpu.workloads,
    }
    for section, rules in groups.items():
        for i, rule in enumerate(rules):
            if not getattr(rule, "evidence", ()):
                label = getattr(rule, "name", None) or getattr(rule, "id", None) or getattr(rule, "old", None) or i
                out.append(f"{section}[{label}]")
    for part in ("cuda", "bf16", "mps", "driver"):
        rule = getattr(matrix.gpu, part)
        if rule is not None and not rule.evidence:
            out.append(f"gpu.{part}")
    return out


def _public_spec(spec: SpecifierSet) -> tuple[SpecifierSet, bool]:
    """The specifier without local version labels ('==2.4.0+cu118' -> '==2.4.0'), and whether one was dropped."""
    parts, dropped = [], False
    for s in spec:
        if "+" in s.version:
            parts.append(f"{s.operator}{s.version.split('+', 1)[0]}")
            dropped = True
        else:
            parts.append(str(s))
    return SpecifierSet(",".join(parts)), dropped


def matrix_lines(matrix: Matrix) -> tuple[list[Line], list[Unchecked], list[Problem]]:
    """The requirement lines of a matrix for the resolver, what stays unchecked, and malformed index hints."""
    lines: list[Line] = []
    unchecked: list[Unchecked] = []
    problems: list[Problem] = []
    groups = {g.name: g for g in matrix.install_groups}
    for g in matrix.install_groups:
        if g.index_url and (err := check_index(g.index_url)):
            problems.append(Problem("index", f"{matrix.ref} install_groups.{g.name}: {err}"))
    for p in matrix.packages:
        origin = f"{matrix.ref} packages.{p.name}"
        if p.source is not None:
            unchecked.append(Unchecked(p.name, f"{p.name} {p.specifier}: installed from {p.source}" + (" with --no-deps" if p.no_deps else "")
                                       + ": not resolved here; its own requirements are not checked against the matrix"))
            continue
        spec, dropped = _public_spec(p.specifier)
        lines.append(Line(f"{p.name}{spec}", origin))
        index = p.index_url or (groups[p.group].index_url if p.group in groups else None)
        if p.index_url and (err := check_index(p.index_url)):
            problems.append(Problem("index", f"{origin}: {err}"))
        if index or p.local or dropped:
            build = f"+{p.local}" if p.local else "the pinned build"
            where = f" from {index}" if index else ""
            unchecked.append(Unchecked(p.name, f"{p.name}{p.specifier} {build}{where}: validated by its public version "
                                               "on the configured index; that build itself was not resolved"))
        if p.no_deps:
            unchecked.append(Unchecked(p.name, f"{p.name} is installed with --no-deps: its requirements are not checked"))
    return lines, unchecked, problems


def file_lines(path: str | Path) -> tuple[list[Line], list[Unchecked]]:
    """The requirement lines of a requirements file (read as pip reads it), each with its file:line origin."""
    from .._requirements import read_requirements

    lines: list[Line] = []
    unchecked: list[Unchecked] = []
    for entry in read_requirements(path).lines:
        req = Requirement(entry.requirement)
        name = req.name
        if req.url:
            unchecked.append(Unchecked(name, f"{entry.origin}: installed from {req.url}: not resolved here"))
            continue
        spec, dropped = _public_spec(req.specifier)
        marker = f"; {req.marker}" if req.marker is not None else ""
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        lines.append(Line(f"{name}{extras}{spec}{marker}", entry.origin))
        if dropped:
            unchecked.append(Unchecked(name, f"{entry.origin}: {req.specifier} names a local build; validated by its "
                                             "public version on the configured index"))
    return lines, unchecked


def target_pythons(spec: SpecifierSet | None) -> list[str]:
    """The lowest and highest CPython minor versions a Python rule allows (both ends catch different breakage)."""
    allowed = [v for v in PYTHONS if spec is None or spec.contains(Version(f"{v}.0"), prereleases=True)
               or spec.contains(Version(f"{v}.99"), prereleases=True)]
    if not allowed:
        return []
    return sorted({allowed[0], allowed[-1]}, key=lambda v: Version(v))


def target_platform(matrix: Matrix | None) -> str:
    """The first of linux, windows, macos that every platform rule of the matrix allows."""
    rules = matrix.platform if matrix is not None else ()
    for name, values in PLATFORM_MARKERS.items():
        if all(r.marker.evaluate(dict(values)) for r in rules):
            return name
    return "linux"


def explain_conflict(conflict: Conflict, lines: Sequence[Line], subject: str) -> Problem:
    """'transformers 4.46.3 requires tokenizers<0.21,>=0.20; the matrix pins tokenizers==0.21.0' from its sides."""
    by_key = {ln.key: ln for ln in lines}
    said: list[str] = []
    for side in conflict.sides:
        asked = by_key.get(side.key)
        if side.dependent is None or asked is None:
            continue
        pins = [s for s in Requirement(asked.requirement).specifier if s.operator in ("==", "===")]
        requirement = f"{side.name}{side.specifier}"
        if pins and not _pin_breaks(side.dependent, side.dependent_version, requirement, side.key, pins[0].version):
            continue
        verb = "pins" if pins else "asks for"
        who = f"{side.dependent} {side.dependent_version}" if side.dependent_version else side.dependent
        text = f"{who} requires {requirement}; {subject} {verb} {asked.requirement} ({asked.origin})"
        if text not in said:
            said.append(text)
    if said:
        return Problem("conflict", "; ".join(said), conflict.chain)
    return Problem("conflict", re.sub(r"\s+", " ", conflict.summary).strip(), conflict.chain)


def _pin_breaks(dependent: str, version: str | None, requirement: str, key: NormalizedName, pin: str) -> bool:
    """Whether `dependent version` requiring `requirement` is unmet by the pin (a wildcard pin says nothing)."""
    try:
        pinned: Version | None = Version(pin)
    except InvalidVersion:
        pinned = None
    ask = Ask(dependent, version, requirement, "the resolver's explanation")
    return bool(unmet([ask], {key: pinned}, {}).unmet)


def runtime_problems(installs: dict[NormalizedName, Version], known_bad: Iterable[KnownBadRule],
                     absent: Iterable[str] = ()) -> list[Problem]:
    """Rules metadata does not declare, checked against a resolved set: known-bad pairs and absent packages."""
    out: list[Problem] = []
    for bad in known_bad:
        have = installs.get(bad.key)
        if have is None or not bad.specifier.contains(have, prereleases=True):
            continue
        if bad.with_ is not None:
            other = installs.get(canonicalize_name(bad.with_.name))
            if other is None or not bad.with_.specifier.contains(other, prereleases=True):
                continue
            pair = f"{bad.name} {have} with {bad.with_.name} {other}"
        else:
            pair = f"{bad.name} {have}"
        out.append(Problem("runtime", f"the resolved set has {pair}, a known-bad combination: {bad.reason}",
                           tuple(bad.evidence)))
    for name in absent:
        have = installs.get(canonicalize_name(name))
        if have is not None:
            out.append(Problem("absent", f"the resolved set installs {name} {have}, which the matrix says must be absent"))
    return out


def _resolve_target(lines: Sequence[Line], python_version: str, platform: str, backend: str, subject: str,
                    known_bad: Sequence[KnownBadRule], absent: Sequence[str], timeout: float) -> TargetResult:
    from .._resolver import Requested, resolve

    res = resolve([Requested(ln.requirement, ln.origin) for ln in lines], python_version=python_version,
                  platform=platform, backend=backend, against_installed=False, timeout=timeout, only_binary=True)
    if not res.ok:
        conflict = res.conflict or Conflict(ConflictKind.FAILED, res.raw[-500:])
        problem = explain_conflict(conflict, lines, subject)
        return TargetResult(python_version, platform, False, res.backend, res.seconds, (), (problem,),
                            _unbuilt(conflict))
    installs = {i.key: i.version for i in res.installs}
    problems = runtime_problems(installs, known_bad, absent)
    pairs = tuple(sorted((i.name, str(i.version)) for i in res.installs))
    return TargetResult(python_version, platform, not problems, res.backend, res.seconds, pairs, tuple(problems))


def _unbuilt(conflict: Conflict) -> tuple[str, ...]:
    """The requested names a wheels-only refusal names: uv says 'no usable wheels', pip finds no version."""
    words = conflict.summary + " " + " ".join(conflict.chain)
    if conflict.kind is ConflictKind.NOT_FOUND or "no usable wheels" in words or "building from source" in words:
        return tuple(r.key for r in conflict.requested)
    return ()


def _unbuilt_unchecked(targets: Sequence[TargetResult]) -> list[Unchecked]:
    out: dict[str, Unchecked] = {}
    for t in targets:
        for name in t.unbuilt:
            out.setdefault(name, Unchecked(name, f"{name}: could not be evaluated without building: no wheel for "
                                                 f"Python {t.python_version} / {t.platform}, and validate runs no "
                                                 "build backend (it resolves from wheels only)"))
    return list(out.values())


Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def validate_matrix(matrix: Matrix, *, python_version: str | None = None, platform: str | None = None,
                    backend: str = "auto", timeout: float = 300.0, progress: Progress = _quiet) -> Validation:
    """Resolve a matrix's package set for its declared Python(s) and platform and check its runtime rules."""
    lines, unchecked, problems = matrix_lines(matrix)
    missing = rules_without_evidence(matrix)
    if missing:
        problems.append(Problem("evidence", f"{matrix.ref}: {len(missing)} rule(s) without evidence: "
                                            + ", ".join(missing)))
    # The probes' own params models say what a matrix may ask of them (issue 15, finding 1): a matrix that
    # names an unknown probe, a dotted callable or a module outside its packages is not a trustworthy matrix.
    from .._certify.params import validate_probe_params

    problems += [Problem("probe", text) for text in validate_probe_params(matrix)]
    pythons = [python_version] if python_version else target_pythons(matrix.python.specifier if matrix.python else None)
    if not pythons:
        problems.append(Problem("python", f"{matrix.ref}: python {matrix.python.specifier if matrix.python else ''} "
                                          f"allows none of {', '.join(PYTHONS)}"))
    plat = platform or target_platform(matrix)
    absent = [a.name for a in matrix.absent]
    if not lines:  # a base matrix of API rules (drift) has no package set to resolve
        unchecked.append(Unchecked(matrix.name, f"{matrix.ref} declares no packages: nothing to resolve"))
        pythons = []
    targets = []
    for py in pythons:
        progress(f"resolving {matrix.ref} ({len(lines)} requirements) for Python {py} / {plat}")
        targets.append(_resolve_target(lines, py, plat, backend, "the matrix", matrix.known_bad, absent, timeout))
    unchecked += _unbuilt_unchecked(targets)
    return Validation(matrix.ref, tuple(targets), tuple(problems), tuple(unchecked), tuple(lines))


def validate_requirements(path: str | Path, *, python_version: str | None = None, platform: str | None = None,
                          backend: str = "auto", rules: Sequence[Matrix] = (), timeout: float = 300.0,
                          progress: Progress = _quiet) -> Validation:
    """Resolve a requirements file (read as pip reads it) and check it against the runtime rules of `rules`."""
    lines, unchecked = file_lines(path)
    if not lines:
        raise UsageError(f"-r {path}: no requirements to validate")
    seen: dict[tuple[str, str, str], KnownBadRule] = {}
    for m in rules:
        for bad in m.known_bad:
            seen.setdefault((bad.key, str(bad.specifier), str(bad.with_)), bad)
    py = python_version or f"{sys.version_info.major}.{sys.version_info.minor}"
    progress(f"resolving {path} ({len(lines)} requirements) for Python {py} / {platform or 'linux'}")
    target = _resolve_target(lines, py, platform or "linux", backend, "the file", list(seen.values()), (), timeout)
    unchecked += _unbuilt_unchecked([target])
    return Validation(str(path), (target,), (), tuple(unchecked), tuple(lines))


def parse_platform(value: str) -> str:
    """'linux' from --platform; raises UsageError naming the choices (and the likely one) on anything else."""
    import difflib

    name = value.strip().lower()
    if name in PLATFORMS:
        return name
    hint = difflib.get_close_matches(name, PLATFORMS, n=1)
    did = f" (did you mean {hint[0]!r}?)" if hint else ""
    raise UsageError(f"--platform {value!r}: not a platform envdoctor resolves for{did}; use one of {', '.join(PLATFORMS)}")


def parse_python_version(value: str) -> str:
    """'3.12' from --python-version; raises UsageError on anything else."""
    if not re.fullmatch(r"3\.\d{1,2}", value.strip()):
        raise UsageError(f"--python-version {value!r}: give a CPython minor version such as 3.12")
    return value.strip()

