"""Which checker applies each rule kind of the matrix registry, and which kinds another command reads instead."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .._env.environment import Environment
from .._matrix.model import Matrix
from .findings import Finding


@dataclass(frozen=True)
class Context:
    """What a checker sees: the compiled matrix, the inspected environment, a model's config.json if given."""

    matrix: Matrix
    env: Environment
    model_config: dict[str, Any] | None = None
    ref: str = ""  # how `envdoctor fix --matrix` names the matrix (matrix.ref, or the file a user gave)

    @cached_property
    def fix(self) -> str:
        """The command that fixes what the matrix finds; when its Python rule rejects this interpreter, fix would
        refuse, so what would work instead (a newer matrix of the family, or the Python it needs; issue 14)."""
        rule = self.matrix.python
        if rule is not None and not rule.specifier.contains(self.env.python_version, prereleases=True):
            from .interpreter import alternative

            return alternative(self.matrix, self.env.python_version, colab=self.env.runtime.colab)
        return f"envdoctor fix --matrix {self.ref or self.matrix.ref}"


Checker = Callable[[Context], Iterable[Finding]]

# section -> its checker; filled by @checks in rules.py and gpu.py
CHECKERS: dict[str, Checker] = {}

# Kinds `check` does not apply, and who reads them instead (a test holds every kind to one of the two).
ELSEWHERE: dict[str, str] = {
    "install_groups": "fix installs packages group by group, in their order",
    "protected": "fix never replaces these packages",
    "renames": "lint, compat and explain (API drift)",
    "imports": "lint reports removed imports (--fix renames those with a replacement); explain names them",
    "symptoms": "explain matches them against an error's text",
    "probes": "certify runs them",
}


def checks(section: str) -> Callable[[Checker], Checker]:
    """Register the checker of one rule kind (its section in the matrix registry, e.g. 'packages')."""

    def register(fn: Checker) -> Checker:
        if section in CHECKERS:
            raise ValueError(f"rule kind {section!r} already has a checker: {CHECKERS[section].__qualname__}")
        CHECKERS[section] = fn
        return fn

    return register
