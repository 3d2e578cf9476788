"""What `matrix validate` resolves: a matrix's packages or a requirements file's lines, each with where it was
written, and what stays unchecked (a VCS source, `--no-deps`, a local build, the file's own indexes)."""

from __future__ import annotations

from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from .._resolver import Requested as Line  # a requirement line and where it was written
from .checks import index_problem as check_index
from .model import Matrix
from .validation import Problem, Unchecked


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
    read = read_requirements(path, as_pip=True)
    named = [*([read.sources.index_url] if read.sources.index_url else []), *read.sources.extra_index_urls,
             *read.sources.find_links] + (["--no-index"] if read.sources.no_index else [])
    if named:
        # an index a file names could shadow a name on the configured one (dependency confusion, issue 15)
        unchecked.append(Unchecked("sources", f"{Path(path).name}: names its own sources ({', '.join(named)}): not "
                                              "used here; validate resolves with pip's configured index"))
    for origin, text in read.skipped:
        name = text.split()[0]
        unchecked.append(Unchecked(name, f"{origin}: {text}: not applied here (validate resolves the requirement "
                                         "lines with the configured index)"))
    for entry in read.lines:
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
