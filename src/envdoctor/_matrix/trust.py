"""Matrices you can trust: resolve a matrix (or a requirements file) with a real resolver and check its rules.

`validate_matrix` hands the matrix's package set to `envdoctor._resolver.resolve` (uv's `pip compile`, else
pip's `--dry-run --report`) for the matrix's declared Python and platform, explains a conflict as
"A v requires B spec; the matrix pins B==x", then checks the runtime rules that metadata does not declare
(`known_bad` with `with`, `absent`) against the resolved set. What cannot be checked here (a build on
another index, a VCS source, `--no-deps`, a package with no wheel) is listed as `Unchecked`, never passed silently.

Validation runs no build backend unless the user says so (issue 15; STYLE rule 16). Reading an sdist's
requirements means running its build backend: pip's `--dry-run --report` always calls
`prepare_metadata_for_build_wheel` (setup.py, for pathtools); uv reads PEP 643 static metadata (PKG-INFO 2.2+
with Requires-Dist not Dynamic, or a static `[project]` table) without a build, but `--no-build` drops sdists from
its resolution altogether, and a build is its fallback otherwise, so there is no "static metadata only" mode
to rely on. So a requirements file is resolved from wheels for this interpreter, as pip would resolve it
(`pip install --dry-run --ignore-installed --only-binary :all:`); a package that then has no usable wheel makes
the verdict "not evaluated" naming it, never a conflict (issue 13). `allow_build=True` (`--allow-build`) trusts
the file's packages and resolves exactly as plain pip does, builds included, for this interpreter only: pip and
uv build an sdist with the running Python, so a foreign target stays wheels-only and says what it could not
evaluate. Known gap: pip's wheels-only backtracking skips sdist-only releases without saying so, so with
`--backend pip` a conflict found among older wheels is reported as a conflict (uv names such releases; auto
prefers uv).

What is resolved comes from `lines` (a matrix's packages, a file's requirement lines), for which Python and
platform from `targets`; the verdicts' values are `validation`.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from .._env.satisfy import Ask, unmet
from .._resolver import Conflict, ConflictKind, Resolution
from .._resolver import Requested as Line  # a requirement line and where it was written
from ..errors import UsageError
from .lines import file_lines, matrix_lines
from .model import KnownBadRule, Matrix
from .targets import running_platform, target_platform, target_pythons
from .validation import PYTHONS, Problem, TargetResult, Unchecked, Validation


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
                    known_bad: Sequence[KnownBadRule], absent: Sequence[str], timeout: float, *,
                    native: bool = False, allow_build: bool = False) -> TargetResult:
    """One target: declared (wheels only, --python-version/--platform) or `native` (this interpreter, as pip would)."""
    from .._resolver import Requested, resolve

    def run(subset: Sequence[Line]):  # type: ignore[no-untyped-def]
        return resolve([Requested(ln.requirement, ln.origin) for ln in subset],
                       python_version=None if native else python_version, platform=None if native else platform,
                       backend=backend, against_installed=False, timeout=timeout, only_binary=not allow_build)

    res = run(lines)
    if not res.ok:
        conflict = res.conflict or Conflict(ConflictKind.FAILED, res.raw[-500:])
        if conflict.unbuilt and not allow_build:
            refusal = _without_unbuilt(lines, conflict, run)
            if refusal is not None:  # a refusal among wheels that stands with or without the sdists
                refused, rest, aside = refusal
                set_aside = dataclasses.replace(conflict, unbuilt=aside)
                return TargetResult(python_version, platform, False, res.backend, res.seconds, (),
                                    (explain_conflict(refused, rest, subject),
                                     _unbuilt_problem(set_aside, python_version, platform, native)), aside)
            problem = _unbuilt_problem(conflict, python_version, platform, native)
        elif conflict.kind is ConflictKind.FAILED:  # the tool failed (a build, the index): no refusal to explain
            problem = Problem("failed", re.sub(r"\s+", " ", conflict.summary).strip(), conflict.chain)
        else:
            problem = explain_conflict(conflict, lines, subject)
        return TargetResult(python_version, platform, False, res.backend, res.seconds, (), (problem,),
                            tuple(conflict.unbuilt))
    installs = {i.key: i.version for i in res.installs}
    problems = runtime_problems(installs, known_bad, absent)
    pairs = tuple(sorted((i.name, str(i.version)) for i in res.installs))
    return TargetResult(python_version, platform, not problems, res.backend, res.seconds, pairs, tuple(problems))


def _without_unbuilt(lines: Sequence[Line], conflict: Conflict, run: Callable[[Sequence[Line]], Resolution]
                     ) -> tuple[Conflict, list[Line], tuple[NormalizedName, ...]] | None:
    """The refusal of the lines left when those naming an sdist-only package are set aside, if that is one.

    Requirements only narrow a resolution: a set that cannot be installed stays so with more lines added. So when
    the rest is refused for a reason that names no wheel-less package (uv names every release it set aside for
    want of a wheel), the whole file is refused too, whatever the set-aside sdists require: pip's verdict.
    """
    unbuilt, rest = set(conflict.unbuilt), list(lines)
    for _ in range(3):  # a few rounds: a second package may turn out to have no wheel once the first is gone
        kept = [ln for ln in rest if ln.key not in unbuilt]
        if len(kept) == len(rest) or not kept:
            return None  # nothing more to set aside (the package is a dependency, not a line of the file)
        rest = kept
        again = run(rest)
        if again.ok or again.conflict is None:
            return None
        if not again.conflict.unbuilt:
            if again.conflict.kind is ConflictKind.FAILED:
                return None
            return again.conflict, rest, tuple(sorted(unbuilt))
        unbuilt |= set(again.conflict.unbuilt)
    return None


def _unbuilt_problem(conflict: Conflict, python_version: str, platform: str, native: bool) -> Problem:
    """'could not be evaluated without building: pathtools': the refusal came from a package with no usable wheel."""
    how = ("rerun with --allow-build to trust these packages' build backends, as plain pip does"
           if native else "only a resolution for this interpreter can build them (--allow-build without "
                          "--python-version/--platform)")
    return Problem("unbuilt", f"could not be evaluated without building: {', '.join(conflict.unbuilt)} (no usable "
                              f"wheel for Python {python_version} / {platform}, and validate ran no build backend; "
                              f"{how})", conflict.chain)


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
                          progress: Progress = _quiet, allow_build: bool = False) -> Validation:
    """Resolve a requirements file (read as pip reads it) and check it against the runtime rules of `rules`.

    With no Python or platform given (or this interpreter's), it is resolved for this interpreter as plain pip
    would, wheels only unless `allow_build`; a declared target is resolved from wheels for that target.
    """
    lines, unchecked = file_lines(path)
    if not lines:
        raise UsageError(f"-r {path}: no requirements to validate")
    seen: dict[tuple[str, str, str], KnownBadRule] = {}
    for m in rules:
        for bad in m.known_bad:
            seen.setdefault((bad.key, str(bad.specifier), str(bad.with_)), bad)
    here_py, here = f"{sys.version_info.major}.{sys.version_info.minor}", running_platform()
    py, plat = python_version or here_py, platform or here or sys.platform
    native = py == here_py and platform in (None, here)
    if allow_build and not native:
        raise UsageError(f"--allow-build resolves for this interpreter only (Python {here_py} / {here or 'this platform'}): "
                         f"pip and uv build a source distribution with the running Python; drop --python-version and "
                         f"--platform, or validate Python {py} / {plat} from wheels without --allow-build")
    progress(f"resolving {path} ({len(lines)} requirements) for Python {py} / {plat}"
             + (" (this interpreter)" if native else ""))
    target = _resolve_target(lines, py, plat, backend, "the file", list(seen.values()), (), timeout,
                             native=native, allow_build=allow_build)
    unchecked += _unbuilt_unchecked([target])
    return Validation(str(path), (target,), (), tuple(unchecked), tuple(lines))


