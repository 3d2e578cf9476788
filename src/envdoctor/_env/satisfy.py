"""The one answer to "is this requirement met here?": check, the fix's simulation and verification, and validate
all ask it through `unmet()`.

Requirements are parsed by packaging, markers evaluated by packaging for the environment given (with `extra`
empty: a distribution's own requirements, no extra asked for). A line that cannot be parsed or whose marker
cannot be evaluated (`python_version ~= "foo"` parses but has no answer) is returned as a `BadLine` naming the
distribution and the line, never raised.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

__all__ = ["Ask", "BadLine", "Evaluation", "Unmet", "applies", "extra_only", "unmet"]

# Installed versions by canonical name; None: installed, but its version does not parse.
Installed = Mapping[NormalizedName, "Version | None"]

_EVAL_ERRORS = (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName, InvalidSpecifier, InvalidVersion,
                ValueError, TypeError)
# `extra == "name"` as a clause of its own (either operand order), and an `or` anywhere (outside quotes or not:
# a quoted "or" only sends the line to the full evaluation, never skips it).
_EXTRA_EQ = re.compile(r"""(?:^|\(|\band\b)\s*(?:extra\s*==\s*(['"])[^'"]*\1|(['"])[^'"]*\2\s*==\s*extra)\s*(?:$|\)|\band\b)""")
_OR = re.compile(r"\bor\b")


@dataclass(frozen=True)
class Ask:
    """One requirement line and who asks for it: a distribution's Requires-Dist line, or a target's line."""

    dependent: str
    version: str | None
    line: str
    origin: str = ""  # where the line was written: 'METADATA', 'requirements.txt:3', a matrix


@dataclass(frozen=True)
class Unmet:
    """A requirement that applies here and is not met: missing (`found` None) or at another version."""

    ask: Ask
    requirement: Requirement
    found: Version | None
    installed: bool

    @property
    def missing(self) -> bool:
        return not self.installed

    @property
    def plain(self) -> str:
        """The requirement without its marker, e.g. 'tokenizers<0.21,>=0.20'."""
        req = self.requirement
        return f"{req.name}{req.specifier}" if req.url is None else f"{req.name} @ {req.url}"


@dataclass(frozen=True)
class BadLine:
    """A line that could not be evaluated; a metadata warning, not an error."""

    ask: Ask
    problem: str

    def describe(self) -> str:
        who = f"{self.ask.dependent} {self.ask.version}" if self.ask.version else self.ask.dependent
        where = f" ({self.ask.origin})" if self.ask.origin else ""
        return f"{who} declares {self.ask.line!r}{where}: {self.problem}"


@dataclass(frozen=True)
class Evaluation:
    """What `unmet()` found: the unmet requirements and the lines it could not evaluate."""

    unmet: tuple[Unmet, ...] = ()
    bad: tuple[BadLine, ...] = ()


def _first_line(e: Exception) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0].strip()


def extra_only(line: str) -> bool:
    """Fast path, agreeing with packaging: True only when the marker is a conjunction (no `or`) with an
    `extra == "name"` clause, which is false when no extra is asked for. `extra != "x"` is not skipped.

    Most Requires-Dist lines belong to extras; parsing them all costs more than the rest of the check.
    """
    _, sep, marker = line.partition(";")
    if not sep or "extra" not in marker or _OR.search(marker):
        return False
    return _EXTRA_EQ.search(marker.strip()) is not None


def applies(req: Requirement, environment: Mapping[str, str]) -> bool:
    """Whether the requirement's marker holds for `environment` (no extra asked for). Raises what packaging raises."""
    return req.marker is None or bool(req.marker.evaluate(dict(environment, extra="")))


def unmet(asks: Iterable[Ask], installed: Installed, environment: Mapping[str, str]) -> Evaluation:
    """Every requirement of `asks` that applies to `environment` and that `installed` does not satisfy."""
    env = dict(environment, extra="")
    found: list[Unmet] = []
    bad: list[BadLine] = []
    for ask in asks:
        if extra_only(ask.line):
            continue
        try:
            req = Requirement(ask.line)
        except InvalidRequirement as e:
            bad.append(BadLine(ask, f"not a valid requirement ({_first_line(e)})"))
            continue
        try:
            if req.marker is not None and not req.marker.evaluate(env):
                continue
        except _EVAL_ERRORS as e:
            bad.append(BadLine(ask, f"its marker cannot be evaluated ({type(e).__name__}: {_first_line(e)})"))
            continue
        key = canonicalize_name(req.name)
        if key not in installed:
            found.append(Unmet(ask, req, None, installed=False))
            continue
        version = installed[key]
        if version is not None and not req.specifier.contains(version, prereleases=True):
            found.append(Unmet(ask, req, version, installed=True))
    return Evaluation(tuple(found), tuple(bad))
