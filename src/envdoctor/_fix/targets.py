"""What a fix aims at: a matrix's packages, groups, removals and protections, or a plain requirements file.

A target also says where each package may come from and whether it may be built: a source that a shared matrix
names and the user has not trusted is resolved wheels only, and the plan refuses to install from it
(`resolve_target`); hashes a requirements file carries go with their lines into every resolution.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import NormalizedName

from .._env.satisfy import applies
from .._matrix.model import Matrix
from .._named import Named
from .._resolver import Backend, Requested, Resolution, Sources, resolve
from .._resolver.sources import SourceTrust
from ..errors import MatrixError, UsageError

# `index_url = "pytorch:cu118"` in a matrix names torch's build index symbolically; the URL comes from
# configuration so that no registry host is written into envdoctor.
PYTORCH_INDEX_ENV = "ENVDOCTOR_PYTORCH_INDEX"
_SYMBOLIC = re.compile(r"^(?P<scheme>[a-z][a-z0-9_-]*):(?P<tag>[A-Za-z0-9._-]+)$")


@dataclass(frozen=True)
class TargetPackage(Named):
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
    hashes: tuple[str, ...] = ()  # 'sha256:<hex>' the artifact must have (a requirements file's --hash)
    untrusted: str = ""  # why its index or URL may not be used (a shared matrix's source the user did not trust)


    @property
    def unbuildable_preview(self) -> bool:
        """An untrusted direct URL that is not a wheel: only a build backend could read it, so it is never fetched
        (pip builds a direct URL even under --only-binary :all:)."""
        url = Requirement(self.requirement).url
        return bool(self.untrusted) and url is not None and not url.split("#")[0].split("?")[0].endswith(".whl")

    @property
    def requested(self) -> Requested:
        """The line for the resolver: the requirement, where it is written, its hashes."""
        return Requested(self.requirement, self.cited, self.hashes)

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
class Removal(Named):
    """A package that must not be installed, and the rule that says so."""

    name: str
    reason: str
    origin: str



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
    require_hashes: bool = False  # hash-checking mode: every install step runs with --require-hashes

    @property
    def hashes(self) -> dict[NormalizedName, tuple[str, ...]]:
        """Each hashed package's allowed hashes, by name (for the install steps' requirement files)."""
        return {p.key: p.hashes for p in self.packages if p.hashes}

    def trust_problems(self) -> list[str]:
        """One refusal per source the target names that the user has not trusted, with the packages it serves."""
        by_why: dict[str, list[str]] = {}
        for p in self.packages:
            if p.untrusted:
                by_why.setdefault(p.untrusted, []).append(p.name)
        return [f"{self.ref} names a source you have not trusted, {why} (for {', '.join(names)}); it was "
                f"previewed from wheels only and nothing is installed from it" for why, names in by_why.items()]

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
    tag = m.group("tag")
    if not template:
        if tag == "cpu":
            # A frozen CPU matrix (`matrix freeze` on a CPU machine): the CPU build comes from the configured
            # index (pip.conf, --index-url); if that index lacks the pinned +cpu build, the resolver says so.
            return None
        raise UsageError(
            f"{origin}: index_url {url!r} names torch's build index for the tag {tag!r} (the part after "
            f"'pytorch:' in that index_url); set {PYTORCH_INDEX_ENV} to the index URL with a {{tag}} placeholder, "
            f"e.g. {PYTORCH_INDEX_ENV}='https://<torch build index>/whl/{{tag}}' (envdoctor puts {tag!r} in its place)"
        )
    return template.replace("{tag}", tag) if "{tag}" in template else template.rstrip("/") + "/" + tag


def is_bundled(matrix: Matrix) -> bool:
    """Whether the matrix file ships inside envdoctor (its sources are envdoctor's, reviewed with it)."""
    from .._paths import bundled_matrix_dir

    if not matrix.source:
        return False
    try:
        Path(matrix.source).resolve().relative_to(bundled_matrix_dir().resolve())
    except (ValueError, OSError):
        return False
    return True


def _untrusted(rule_index: str | None, expanded: str | None, source: str | None, trust: SourceTrust | None) -> str:
    """Why the package's index or direct URL may not be used ('' when it may): symbolic indexes are the user's."""
    if trust is None:
        return ""
    written_url = rule_index is not None and expanded == rule_index  # a URL in the file, not `pytorch:<tag>`
    if written_url and expanded is not None and (why := trust.problem(expanded)) is not None:
        return why
    if source is not None and (why := trust.problem(source)) is not None:
        return why
    return ""


def from_matrix(matrix: Matrix, *, trust: SourceTrust | None = None) -> Target:
    """The target of a matrix: its packages by install group, its `absent` list, its protected names.

    trust: the user's trust in the sources a matrix names (default: `SourceTrust.load()`, the config's list);
    a bundled matrix's sources are always used.
    """
    src = matrix.source or matrix.ref
    checked = None if is_bundled(matrix) else (trust or SourceTrust.load())
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
            written = rule.index_url or group_index.get(gname)
            index = expand_index(written, f"{src}: {origin}")
            packages.append(TargetPackage(
                name=rule.name, requirement=requirement, origin=origin, group=gname,
                order=orders.get(gname, 1 << 30), index_url=index,
                no_deps=rule.no_deps, protected=rule.protected, reason=rule.reason,
                hashes=rule.hashes,  # `hashes = ["sha256:..."]` on the rule: enforced like a requirements file's
                untrusted=_untrusted(written, index, rule.source, checked),
            ))
    removals = tuple(Removal(r.name, r.reason, f"{matrix.ref} [[absent]] {r.name}") for r in matrix.absent)
    protected = tuple(sorted({r.key for r in matrix.protected} | {p.key for p in matrix.packages if p.protected}))
    return Target(matrix.ref, TargetKind.MATRIX, tuple(packages), removals, protected, matrix, matrix.source or matrix.ref,
                  require_hashes=any(p.hashes for p in packages))


def from_requirements(path: str | os.PathLike[str]) -> Target:
    """The target of a requirements file: each line's origin is `file:line`; its -c, index options and markers kept."""
    from .._requirements import read_requirements

    file = Path(path)
    parsed = read_requirements(file)
    if not parsed.lines:
        raise UsageError(f"-r {path}: no requirements in it")
    # The user's own file: its -i/-f lines and URLs are the user's choice, trusted as pip trusts them.
    packages = tuple(TargetPackage(name=Requirement(ln.requirement).name, requirement=ln.requirement, origin=ln.origin,
                                   hashes=ln.hashes) for ln in parsed.lines)
    return Target(str(file), TargetKind.REQUIREMENTS, packages, source=str(file.resolve()), sources=parsed.sources,
                  constraints=tuple(c.requirement for c in parsed.constraints), require_hashes=parsed.require_hashes)


def load_target(matrix: str | None = None, requirements: str | None = None, *, trust_sources: bool = False) -> Target:
    """The target named on the command line: `--matrix REF` or `-r FILE` (not both).

    trust_sources: `--trust-sources`, trust the https sources the matrix names (see `_resolver.sources`).
    """
    if matrix and requirements:
        raise UsageError("give either --matrix or -r, not both")
    if requirements:
        return from_requirements(requirements)
    from .._matrix.loader import DEFAULT_MATRIX, load_matrix

    return from_matrix(load_matrix(matrix or DEFAULT_MATRIX), trust=SourceTrust.load(trust_sources))


@dataclass(frozen=True)
class Run:
    """One resolver run of a target: packages that share an index (and --no-deps), with the sources they read."""

    packages: tuple[TargetPackage, ...]
    sources: Sources
    no_deps: bool = False
    only_binary: bool = False  # a source of the run is not trusted: wheels only, no build backend runs
    index_url: str | None = None


def resolution_runs(target: Target, sources: Sources) -> list[Run]:
    """The runs that resolve a target: its packages split by their own index and --no-deps.

    A group's index serves only that group's packages (and their dependencies), as in its install step: it
    replaces the main index for that run and is never an extra index for the rest (a planted `six 99.0` there
    must not reach a package without an index of its own).
    """
    runs: dict[tuple[str | None, bool], list[TargetPackage]] = {}
    for p in target.packages:
        if p.unbuildable_preview:
            continue  # `resolve_target` names it as not evaluated
        runs.setdefault((p.index_url, p.no_deps), []).append(p)
    out = []
    for (index_url, no_deps), pkgs in sorted(runs.items(), key=lambda kv: (kv[0][0] is not None, kv[0][0] or "",
                                                                             kv[0][1])):
        src = sources if index_url is None else Sources(index_url, sources.extra_index_urls, sources.find_links,
                                                        False, sources.extra_args)
        out.append(Run(tuple(pkgs), src, no_deps, any(p.untrusted for p in pkgs), index_url))
    return out


def resolve_target(target: Target, backend: Backend, python: str, sources: Sources) -> tuple[list[Resolution], list[str]]:
    """The target's runs resolved against the environment at `python`, and the refusals to add to the plan.

    Untrusted sources are refused (`trust_problems`) and resolved wheels only; a run that could not be
    resolved that way names its packages as not evaluated without building.
    """
    problems = target.trust_problems()
    skipped = [p.name for p in target.packages if p.unbuildable_preview]
    if skipped:
        problems.append(f"could not be evaluated without building: {', '.join(skipped)} (a direct URL you have not "
                        f"trusted that is not a wheel; it was not fetched)")
    out: list[Resolution] = []
    for run in resolution_runs(target, sources):
        # uv's dry run prints `+ name @ url` without a version, so direct references are resolved by pip; and
        # only pip's report carries the requirements that --no-deps skips, which the plan must show (the seed's
        # axolotl --no-deps hid its stale pins).
        direct = any(" @ " in p.requirement for p in run.packages)
        res = resolve([p.requested for p in run.packages], python=python,
                      backend="pip" if direct or run.no_deps else backend, sources=run.sources,
                      constraints=() if run.no_deps else target.constraints, no_deps=run.no_deps,
                      only_binary=run.only_binary)
        out.append(res)
        if not res.ok and run.only_binary:
            names = ", ".join(p.name for p in run.packages if p.untrusted)
            problems.append(f"could not be evaluated without building: {names} (its source is not trusted, so "
                            f"the preview used wheels only and ran no build backend)")
    return out, problems
