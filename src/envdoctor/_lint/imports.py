"""Removed imports (the drift matrix's [[imports]]): `from peft import prepare_model_for_int8_training` and the like.

An import of a name the installed (or pinned) release no longer has is an error: the script stops at its first
line with an ImportError. Read with the stdlib `ast`; nothing a script says is imported or run.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path

from packaging.utils import canonicalize_name

from .._drift.versions import Versions, for_matrix
from .._matrix.model import ImportRule, Matrix
from ..errors import UsageError
from . import finder, source
from .engine import ERROR, WARNING, Issue

VIA = "import"  # Issue.via of an import issue: `callable` is then the module, `keyword` the removed name
FIX_NOTE = "--fix"  # Issue.via of a note --fix adds to what it fixed (a rewrite the user should read)


def packages_of(matrix: Matrix) -> set[str]:
    """The packages the import rules are about, canonicalized."""
    return {canonicalize_name(r.package) for r in matrix.imports}


def rule_for(matrix: Matrix, module: str, name: str) -> ImportRule | None:
    """The rule about `name` imported from `module` (or from one of the rule module's submodules)."""
    return next((r for r in matrix.imports if r.name == name
                 and (module == r.module or module.startswith(r.module + "."))), None)


def is_import_issue(issue: Issue) -> bool:
    """Whether an issue is a removed import (not a keyword)."""
    return issue.via == VIA


def check_tree(tree: ast.AST, unit: source.Unit, matrix: Matrix, versions: Versions) -> list[Issue]:
    """The stale imports of one parsed unit: `from M import name` and attribute uses `m.name` of an imported M."""
    if not matrix.imports:
        return []
    out: list[Issue] = []
    names = finder.aliases(tree, packages_of(matrix))
    guarded = _guarded(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node not in guarded:
            for a in node.names:
                rule = rule_for(matrix, node.module, a.name)
                if rule is not None:
                    out += _issue(rule, unit, a.lineno, a.col_offset, node.module, versions, "import")
        elif isinstance(node, ast.Attribute):
            base = finder.dotted(node.value, names)
            rule = rule_for(matrix, base, node.attr) if base else None
            if rule is not None and base is not None:
                end = node.end_col_offset or node.col_offset
                out += _issue(rule, unit, node.lineno, end - len(node.attr), base, versions, "use")
    out.sort(key=lambda i: (i.line, i.col))
    return out


_CATCHES_IMPORT = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


def _guarded(tree: ast.AST) -> set[ast.AST]:
    """Imports inside `try: ... except ImportError:` (either side): a fallback for other versions, not a bug.

    e.g. `try: from peft import prepare_model_for_kbit_training` / `except ImportError: from peft import
    prepare_model_for_int8_training as prepare_model_for_kbit_training` (a common shim for old peft).
    """
    out: set[ast.AST] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        if not any(h.type is None or _names(h.type) & _CATCHES_IMPORT for h in node.handlers):
            continue
        for part in [*node.body, *node.handlers]:
            out.update(n for n in ast.walk(part) if isinstance(n, ast.ImportFrom))
    return out


def _names(node: ast.expr) -> set[str]:
    if isinstance(node, ast.Tuple):
        return {n for e in node.elts for n in _names(e)}
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.Attribute):
        return {node.attr}
    return set()


def _issue(rule: ImportRule, unit: source.Unit, line: int, col: int, module: str, versions: Versions,
           how: str) -> list[Issue]:
    v = versions.versions.get(canonicalize_name(rule.package))
    if v is None:
        return []
    if v >= rule.removed:
        severity, status, verb = ERROR, "removed", f"was removed in {rule.package} {rule.removed} (here {v})"
    elif rule.deprecated is not None and v >= rule.deprecated:
        severity, status, verb = WARNING, "deprecated", f"is deprecated since {rule.package} {rule.deprecated}"
    else:
        return []
    what = f"from {module} import {rule.name}" if how == "import" else f"{module}.{rule.name}"
    return [Issue(unit.path, unit.cell, line, col, module, rule.name, severity, status,  # type: ignore[arg-type]
                  f"`{what}`: {rule.name} {verb}: {rule.instead}", rule.replacement, None, VIA, rule.reason)]


def with_imports(files: Sequence[Path], matrix: Matrix, versions: Versions, issues: Sequence[Issue], *,
                 use_pins: bool) -> tuple[Versions, list[Issue]]:
    """The engine's issues with every stale import added (in file order), and the versions of their packages.

    A package only the import rules name (peft) is judged, and shown, when some file imports a name a rule is about.
    """
    units: list[source.Unit] = []
    for f in files:
        try:
            units += source.units(f)
        except UsageError:
            continue  # the engine has recorded why
    trees = [(u, t) for u in units if (t := _parse(u)) is not None]
    wanted = {canonicalize_name(r.package) for _, t in trees for r in mentioned(t, matrix)}
    missing = wanted - set(versions.versions)
    if missing:
        extra = for_matrix(matrix, missing, use_pins=use_pins)
        versions = Versions({**versions.versions, **extra.versions}, {**versions.sources, **extra.sources},
                            versions.notes + extra.notes)
    found: list[Issue] = list(issues)
    for unit, tree in trees:
        found += check_tree(tree, unit, matrix, versions)
    order = {str(f): n for n, f in enumerate(files)}
    found.sort(key=lambda i: (order.get(i.path, len(order)), i.cell or 0, i.line, i.col))
    return versions, found


def _parse(unit: source.Unit) -> ast.AST | None:
    try:
        return ast.parse(unit.code, filename=unit.path)
    except SyntaxError:
        return None  # the engine reports it


def mentioned(tree: ast.AST, matrix: Matrix) -> list[ImportRule]:
    """The import rules whose module a unit imports from (cheap: before any version is looked up)."""
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    return [r for r in matrix.imports if any(m == r.module or m.startswith(r.module + ".")
                                             or r.module.startswith(m + ".") or m == r.package for m in modules)]
