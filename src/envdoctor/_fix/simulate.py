"""Simulate the environment after a plan and find the requirements it would newly break (like `pip check`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from .._env.environment import Environment
from .._env.satisfy import Ask, unmet


@dataclass(frozen=True)
class Node:
    """One distribution of a simulated environment."""

    name: str
    version: Version | None
    requires: tuple[str, ...] | None  # None: unknown (uv does not report a new install's requirements)


@dataclass(frozen=True)
class Breakage:
    """A requirement that the after-state does not satisfy."""

    dependent: str
    dependent_version: str
    requirement: str
    found: str | None  # the version it would have, None when it would be missing

    def describe(self) -> str:
        have = "it would not be installed" if self.found is None else f"{Requirement(self.requirement).name} {self.found} would be installed"
        return f"{self.dependent} {self.dependent_version} requires {self.requirement}, but {have}"


def before_state(env: Environment) -> dict[NormalizedName, Node]:
    """The environment as it is, as simulation nodes."""
    return {k: Node(d.name, d.version, tuple(d.requires)) for k, d in env.distributions.items()}


def after_state(
    before: Mapping[NormalizedName, Node],
    installs: Iterable[Node],
    removes: Iterable[str],
) -> dict[NormalizedName, Node]:
    """`before` with `removes` taken out and `installs` put in (replacing any installed version)."""
    state = dict(before)
    for name in removes:
        state.pop(canonicalize_name(name), None)
    for node in installs:
        state[canonicalize_name(node.name)] = node
    return state


def breakages(state: Mapping[NormalizedName, Node], markers: Mapping[str, str]) -> list[Breakage]:
    """Every requirement in `state` that `state` does not satisfy (extras' requirements are skipped)."""
    nodes = sorted(state.items())
    asks = [Ask(node.name, str(node.version), line, "METADATA") for _, node in nodes for line in node.requires or ()]
    installed = {key: node.version for key, node in nodes}
    # Lines that cannot be evaluated (`Evaluation.bad`) are broken metadata: check's finding, not the plan's.
    found = unmet(asks, installed, markers).unmet
    return [Breakage(u.ask.dependent, u.ask.version or "None", u.plain, None if u.missing else str(u.found))
            for u in found]


def new_breakages(
    before: Mapping[NormalizedName, Node], after: Mapping[NormalizedName, Node], markers: Mapping[str, str]
) -> list[Breakage]:
    """Breakages of the after-state that the before-state did not have: what the fix itself would cause."""
    old = {(canonicalize_name(b.dependent), b.requirement, b.found) for b in breakages(before, markers)}
    return [b for b in breakages(after, markers) if (canonicalize_name(b.dependent), b.requirement, b.found) not in old]
