"""What a fix aims at: a matrix's packages, groups, removals and protections, or a plain requirements file."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from .._env.satisfy import applies
from .._matrix.model import Matrix
from .._resolver import Sources
from ..errors import MatrixError, UsageError

# `index_url = "pytorch:cu118"` in a matrix names torch's build index symbolically; the URL comes from
# configuration so that no registry host is written into envdoctor.
PYTORCH_INDEX_ENV = "ENVDOCTOR_PYTORCH_INDEX"
_SYMBOLIC = re.compile(r"^(?P<scheme>[a-z][a-z0-9_-]*):(?P<tag>[A-Za-z0-9._-]+)$")


@dataclass(frozen=True)
class TargetPackage:
    """One package the fix must make true, with the matrix's install instructions and where it is written."""

    name: str
    requirement: str
    origin: str
    group: str = ""
    order: int = 0
    index_url: str | None = None
    no_deps: bool = False
    protected: bool = False
    reason: str = ""

    @property
    def key(self) -> NormalizedName:
        return canonicalize_name(self.name)

    def applies(self, markers: Mapping[str, str]) -> bool:
        """False when the line's marker (`; python_version < "3.12"`) is false for that environment."""
        return applies(Requirement(self.requirement), markers)

    @property
    def cited(self) -> str:
        """Where the line is written, with the rule's own reason (its first sentence): for refusals."""
        if not self.reason:
            return self.origin
        first = self.reason.split(". ")[0].rstrip(".")
        return f"{self.origin}: {first[:160]}"


@dataclass(frozen=True)
class Removal:
    """A package that must not be installed, and the rule that says so."""

    name: str
    reason: str
    origin: str

    @property
    def key(self) -> NormalizedName:
        return canonicalize_name(self.name)


class TargetKind(str, Enum):
    """What a target was read from."""

    MATRIX = "matrix"
    REQUIREMENTS = "requirements"


@dataclass(frozen=True)
class Target:
    """The whole aim of one fix: packages in install order, removals, and names never to replace."""

    ref: str
    kind: TargetKind
    packages: tuple[TargetPackage, ...]
    removals: tuple[Removal, ...] = ()
    protected: tuple[NormalizedName, ...] = ()
    matrix: Matrix | None = None
    source: str = ""  # what load_target reads again on --resume: the matrix file or the requirements file
    sources: Sources = Sources()  # indexes the target itself names (a requirements file's -i/-f lines)
    constraints: tuple[str, ...] = ()  # a requirements file's -c lines: they bound the resolution only

    def for_environment(self, markers: Mapping[str, str]) -> Target:
        """The target without the lines whose markers are false in the environment being fixed."""
        kept = tuple(p for p in self.packages if p.applies(markers))
        return self if len(kept) == len(self.packages) else replace(self, packages=kept)

    def groups(self) -> list[tuple[str, list[TargetPackage]]]:
        """Packages grouped by install group, in install order (stable within a group)."""
        out: dict[tuple[int, str], list[TargetPackage]] = {}
        for p in self.packages:
            out.setdefault((p.order, p.group), []).append(p)
        return [(group, pkgs) for (_, group), pkgs in sorted(out.items(), key=lambda kv: kv[0][0])]


def expand_index(url: str | None, origin: str) -> str | None:
    """Map a symbolic index ('pytorch:cu118') to a URL from ENVDOCTOR_PYTORCH_INDEX ('...{tag}'); URLs pass."""
    if url is None:
        return None
    m = _SYMBOLIC.match(url)
    if not m or m.group("scheme") in ("http", "https", "file"):
        return url
    if m.group("scheme") != "pytorch":
        raise MatrixError(f"{origin}: unknown symbolic index {url!r} (known: pytorch:<tag>)")
    template = os.environ.get(PYTORCH_INDEX_ENV)
    if not template:
        raise UsageError(
            f"{origin}: index_url {url!r} needs the torch build index; set {PYTORCH_INDEX_ENV} to its URL "
            f"with a {{tag}} placeholder (the tag here is {m.group('tag')!r})"
        )
    return template.replace("{tag}", m.group("tag")) if "{tag}" in template else template.rstrip("/") + "/" + m.group("tag")


def from_matrix(matrix: Matrix) -> Target:
    """The target of a matrix: its packages by install group, its `absent` list, its protected names."""
    src = matrix.source or matrix.ref
    orders = {g.name: g.order for g in matrix.install_groups}
    group_index = {g.name: g.index_url for g in matrix.install_groups}
    packages: list[TargetPackage] = []
    for group, rules in matrix.groups_in_order():
        gname = group.name if group is not None else ""
        for rule in rules:
            origin = f"{matrix.ref} [[packages]] {rule.name}" + (f" (group {gname})" if gname else "")
            requirement = rule.requirement
            if rule.local and rule.source is None and "==" in str(rule.specifier) and "+" not in requirement:
                requirement = f"{rule.name}{rule.specifier}+{rule.local}"
            packages.append(TargetPackage(
                name=rule.name, requirement=requirement, origin=origin, group=gname,
                order=orders.get(gname, 1 << 30),
                index_url=expand_index(rule.index_url or group_index.get(gname), f"{src}: {origin}"),
                no_deps=rule.no_deps, protected=rule.protected, reason=rule.reason,
            ))
    removals = tuple(Removal(r.name, r.reason, f"{matrix.ref} [[absent]] {r.name}") for r in matrix.absent)
    protected = tuple(sorted({r.key for r in matrix.protected} | {p.key for p in matrix.packages if p.protected}))
    return Target(matrix.ref, TargetKind.MATRIX, tuple(packages), removals, protected, matrix, matrix.source or matrix.ref)


def from_requirements(path: str | os.PathLike[str]) -> Target:
    """The target of a requirements file: each line's origin is `file:line`; its -c, index options and markers kept."""
    from .._requirements import read_requirements

    file = Path(path)
    parsed = read_requirements(file)
    if not parsed.lines:
        raise UsageError(f"-r {path}: no requirements in it")
    packages = tuple(TargetPackage(name=Requirement(ln.requirement).name, requirement=ln.requirement, origin=ln.origin)
                     for ln in parsed.lines)
    return Target(str(file), TargetKind.REQUIREMENTS, packages, source=str(file.resolve()), sources=parsed.sources,
                  constraints=tuple(c.requirement for c in parsed.constraints))


def load_target(matrix: str | None = None, requirements: str | None = None) -> Target:
    """The target named on the command line: `--matrix REF` or `-r FILE` (not both)."""
    if matrix and requirements:
        raise UsageError("give either --matrix or -r, not both")
    if requirements:
        return from_requirements(requirements)
    from .._matrix.loader import DEFAULT_MATRIX, load_matrix

    return from_matrix(load_matrix(matrix or DEFAULT_MATRIX))
