"""`lint --fix`: rewrite stale keywords with LibCST, keeping formatting and comments; report what was left alone."""

from __future__ import annotations

import ast
import json
from collections import Counter
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
        done = {(i.cell, i.line, i.col, i.keyword) for i in f} | {(i.cell, i.line, i.col, i.keyword) for i, _ in u}
        u += [(i, "its cell or file could not be rewritten; edit it by hand") for i in mine
              if (i.cell, i.line, i.col, i.keyword) not in done]  # every stale issue is accounted for
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
    from ._reads import loads

    fixed: Fixed = []
    unfixed: Unfixed = []
    cells = [c for c in data["cells"] if c.get("cell_type") == "code"]
    masked = [source.mask(source.cell_source(c)) for c in cells]
    trees = [_tree(code) for code, _ in masked]
    reads = [Counter({k: v for k, v in loads(t).items() if k[0] == 0}) if t else Counter() for t in trees]
    dirty = False
    for n, (cell, (code, originals), tree) in enumerate(zip(cells, masked, trees, strict=True), start=1):
        cell_issues = [i for i in issues if i.cell == n]
        if tree is None or (not cell_issues and not swaps):
            continue  # a cell that does not parse is left as it is (lint has said so)
        # cells run in order: what earlier cells bind exists here; a variable read in any other cell flows there
        earlier = {name for t in trees[:n - 1] if t for name in _module_names(t)}
        elsewhere = sum((r for i, r in enumerate(reads) if i != n - 1), Counter())
        new, f, u = fix_code(code, cell_issues, matrix, imported, versions=judged, replaced=swaps, earlier=earlier,
                             reads=elsewhere)
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


def _tree(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except SyntaxError:
        return None


def _module_names(tree: ast.Module) -> set[str]:
    """The names a cell binds at its top level (assignments, imports, defs)."""
    out: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            out.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(stmt, ast.Import | ast.ImportFrom):
            out.update((a.asname or a.name).split(".")[0] for a in stmt.names)
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out.add(stmt.name)
    return out


def fix_code(code: str, issues: Sequence[Issue], matrix: Matrix, imported: dict[str, str] | None = None, *,
             versions: Judged | None = None, replaced: Mapping[str, str] | None = None,
             earlier: set[str] | None = None, reads: Counter[tuple[int, str]] | None = None,
             ) -> tuple[str, Fixed, Unfixed]:
    """Rewrite one unit of Python; issues carry the positions `check_unit` found.

    In a notebook cell, `earlier` are the names earlier cells bind and `reads` the variables other cells read.
    """
    cst = _libcst()
    from libcst.metadata import MetadataWrapper

    from ._cst import Planner
    from ._reads import loads
    from ._rewrite import Fixer

    tree = ast.parse(code)
    names = {**(imported or {}), **finder.aliases(tree, _packages(matrix))}
    wrapper = MetadataWrapper(cst.parse_module(code))
    planner = Planner(issues, names, matrix, versions, loads(tree) + (reads or Counter()), replaced, earlier)
    wrapper.visit(planner)
    new = wrapper.visit(Fixer(planner))
    return new.code, planner.fixed, planner.unfixed
