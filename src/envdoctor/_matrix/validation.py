"""The values of `matrix validate`: what a target, a matrix or a requirements file comes to, and the targets
(Python versions, platforms) it can be validated for. trust.py computes them; the renderers word them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .._resolver import Requested as Line  # a requirement line and where it was written

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


ProblemKind = Literal["conflict", "unbuilt", "failed", "runtime", "absent", "index", "python", "evidence", "probe"]
# What a target, a matrix or a file comes to: it resolves (ok), the resolver refuses it (conflict), it resolves
# but breaks a rule or is malformed (broken), a package with no usable wheel kept it from being evaluated, or
# the resolver itself failed (error: a build that failed under --allow-build, an index it could not reach),
# which pip reports as an error too, not as a conflict.
Verdict = Literal["ok", "conflict", "broken", "not-evaluated", "error"]


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
    unbuilt: tuple[str, ...] = ()  # names with no usable wheel for the target: not evaluated without a build

    @property
    def verdict(self) -> Verdict:
        kinds = {p.kind for p in self.problems}
        if self.ok:
            return "ok"
        if "conflict" in kinds:
            return "conflict"
        if "failed" in kinds:
            return "error"
        return "not-evaluated" if kinds == {"unbuilt"} else "broken"


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
    def verdict(self) -> Verdict:
        """conflict, broken, error, not-evaluated, in that order: a refusal stands whatever else went wrong."""
        verdicts = {t.verdict for t in self.targets}
        for v in ("conflict", "broken", "error"):
            if v in verdicts:
                return v  # type: ignore[return-value]
        if self.problems:
            return "broken"
        return "not-evaluated" if "not-evaluated" in verdicts else "ok"

    @property
    def all_problems(self) -> tuple[Problem, ...]:
        return self.problems + tuple(p for t in self.targets for p in t.problems)
