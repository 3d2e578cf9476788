"""`lint --fix`: rewrite stale keywords with LibCST, keeping formatting and comments; report what was left alone."""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from packaging.version import Version

from .._drift import rules
from .._drift.versions import Versions
from .._matrix.model import Matrix
from .._paths import atomic_write
from ..errors import UsageError
from . import finder, imports, source
from .engine import Issue, shared_names

Judged = Mapping[str, Version | None]

Fixed = list[Issue]
Unfixed = list[tuple[Issue, str]]


def _libcst() -> Any:
    try:
        import libcst
    except ImportError as e:
        raise UsageError("lint --fix needs LibCST: pip install 'envdoctor[lint]'") from e
    return libcst


def fix_files(files: Sequence[Path], issues: Sequence[Issue], matrix: Matrix,
              versions: Versions | None = None) -> tuple[Fixed, Unfixed, list[str]]:
    """Fix every fixable stale issue in place; returns (fixed, unfixed with reasons, changed files).

    `versions` (what lint judged against) names the keywords a rewrite adds as those versions spell them.
    """
    _libcst()
    judged: Judged = versions.versions if versions is not None else {}
    fixed: Fixed = []
    unfixed: Unfixed = []
    changed: list[str] = []
    todo = [i for i in issues if i.stale]
    for path in files:
        mine = [i for i in todo if i.path == str(path)]
        if not mine:
            continue
        fix = _fix_notebook if path.suffix == ".ipynb" else _fix_script
        f, u, dirty = fix(path, mine, matrix, judged)
        fixed += f
        unfixed += u
        if dirty:
            changed.append(str(path))
    return fixed, unfixed, changed


def _fix_script(path: Path, issues: Sequence[Issue], matrix: Matrix, judged: Judged) -> tuple[Fixed, Unfixed, bool]:
    """One .py file, rewritten in place when anything changed."""
    code = path.read_text(encoding="utf-8")
    new, fixed, unfixed = fix_code(code, issues, matrix, versions=judged, replaced=replaced(issues, matrix))
    if new != code:
        atomic_write(path, new)
    return fixed, unfixed, new != code


def _fix_notebook(path: Path, issues: Sequence[Issue], matrix: Matrix,
                  judged: Judged) -> tuple[Fixed, Unfixed, bool]:
    """Each code cell of a notebook with its magics masked; the notebook rewritten when any cell changed."""
    data = source.read_notebook(path)
    imported = {**shared_names(list(source.units(path)), matrix), **_shared_imports(path, matrix)}
    swaps = replaced(issues, matrix)  # an import renamed in one cell is renamed where later cells use it
    fixed: Fixed = []
    unfixed: Unfixed = []
    n, dirty = 0, False
    for cell in data["cells"]:
        if cell.get("cell_type") != "code":
            continue
        n += 1
        cell_issues = [i for i in issues if i.cell == n]
        if not cell_issues and not swaps:
            continue
        code, originals = source.mask(source.cell_source(cell))
        try:
            ast.parse(code)
        except SyntaxError:
            continue  # lint has said so; a cell that does not parse is left as it is
        new, f, u = fix_code(code, cell_issues, matrix, imported, versions=judged, replaced=swaps)
        fixed += f
        unfixed += u
        if new != code:
            cell["source"] = source.unmask(new, originals).splitlines(keepends=True)
            dirty = True
    if dirty:
        atomic_write(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return fixed, unfixed, dirty


def replaced(issues: Sequence[Issue], matrix: Matrix) -> dict[str, str]:
    """Removed dotted paths this file imports that have a same-signature replacement: path -> new name."""
    out: dict[str, str] = {}
    for i in issues:
        if imports.is_import_issue(i) and i.new and i.stale:
            out[f"{i.callable}.{i.keyword}"] = i.new
    return out


def _packages(matrix: Matrix) -> set[str]:
    return rules.packages_of(matrix) | imports.packages_of(matrix)


def _shared_imports(path: Path, matrix: Matrix) -> dict[str, str]:
    names: dict[str, str] = {}
    for unit in source.units(path):
        try:
            names.update(finder.aliases(ast.parse(unit.code), _packages(matrix)))
        except SyntaxError:
            continue
    return names


def fix_code(code: str, issues: Sequence[Issue], matrix: Matrix, imported: dict[str, str] | None = None, *,
             versions: Judged | None = None, replaced: Mapping[str, str] | None = None) -> tuple[str, Fixed, Unfixed]:
    """Rewrite one unit of Python; issues carry the positions `check_unit` found."""
    cst = _libcst()
    from libcst.metadata import MetadataWrapper

    from ._cst import Fixer, Planner, loads

    tree = ast.parse(code)
    names = {**(imported or {}), **finder.aliases(tree, _packages(matrix))}
    wrapper = MetadataWrapper(cst.parse_module(code))
    planner = Planner(issues, names, matrix, versions, loads(tree), replaced)
    wrapper.visit(planner)
    new = wrapper.visit(Fixer(planner))
    return new.code, planner.fixed, planner.unfixed
