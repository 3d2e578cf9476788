"""`lint --fix`: rewrite stale keywords with LibCST, keeping formatting and comments; report what was left alone."""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._drift import rules
from .._matrix.model import Matrix
from .._paths import atomic_write
from ..errors import UsageError
from . import finder, source
from .engine import Issue, shared_names

Fixed = list[Issue]
Unfixed = list[tuple[Issue, str]]


def _libcst() -> Any:
    try:
        import libcst
    except ImportError as e:
        raise UsageError("lint --fix needs LibCST: pip install 'envdoctor[lint]'") from e
    return libcst


def fix_files(files: Sequence[Path], issues: Sequence[Issue], matrix: Matrix) -> tuple[Fixed, Unfixed, list[str]]:
    """Fix every fixable stale issue in place; returns (fixed, unfixed with reasons, changed files)."""
    _libcst()
    fixed: Fixed = []
    unfixed: Unfixed = []
    changed: list[str] = []
    todo = [i for i in issues if i.stale]
    for path in files:
        mine = [i for i in todo if i.path == str(path)]
        if not mine:
            continue
        fix = _fix_notebook if path.suffix == ".ipynb" else _fix_script
        f, u, dirty = fix(path, mine, matrix)
        fixed += f
        unfixed += u
        if dirty:
            changed.append(str(path))
    return fixed, unfixed, changed


def _fix_script(path: Path, issues: Sequence[Issue], matrix: Matrix) -> tuple[Fixed, Unfixed, bool]:
    """One .py file, rewritten in place when anything changed."""
    code = path.read_text(encoding="utf-8")
    new, fixed, unfixed = fix_code(code, issues, matrix)
    if new != code:
        atomic_write(path, new)
    return fixed, unfixed, new != code


def _fix_notebook(path: Path, issues: Sequence[Issue], matrix: Matrix) -> tuple[Fixed, Unfixed, bool]:
    """Each code cell of a notebook with its magics masked; the notebook rewritten when any cell changed."""
    data = source.read_notebook(path)
    imported = shared_names(list(source.units(path)), matrix)
    fixed: Fixed = []
    unfixed: Unfixed = []
    n, dirty = 0, False
    for cell in data["cells"]:
        if cell.get("cell_type") != "code":
            continue
        n += 1
        cell_issues = [i for i in issues if i.cell == n]
        if not cell_issues:
            continue
        code, originals = source.mask(source.cell_source(cell))
        new, f, u = fix_code(code, cell_issues, matrix, imported)
        fixed += f
        unfixed += u
        if new != code:
            cell["source"] = source.unmask(new, originals).splitlines(keepends=True)
            dirty = True
    if dirty:
        atomic_write(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return fixed, unfixed, dirty


def fix_code(code: str, issues: Sequence[Issue], matrix: Matrix,
             imported: dict[str, str] | None = None) -> tuple[str, Fixed, Unfixed]:
    """Rewrite one unit of Python; issues carry the positions `check_unit` found."""
    cst = _libcst()
    from libcst.metadata import MetadataWrapper

    from ._cst import Fixer, Planner

    names = {**(imported or {}), **finder.aliases(ast.parse(code), rules.packages_of(matrix))}
    wrapper = MetadataWrapper(cst.parse_module(code))
    planner = Planner(issues, names)
    wrapper.visit(planner)
    new = wrapper.visit(Fixer(planner))
    return new.code, planner.fixed, planner.unfixed
