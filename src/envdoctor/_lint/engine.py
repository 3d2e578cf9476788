"""Lint scripts and notebooks: every stale keyword at once, judged against installed or pinned versions."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from .._drift import rules
from .._drift.versions import Versions, for_matrix
from .._matrix.model import Matrix
from ..errors import UsageError
from . import finder, source

Severity = Literal["error", "warning", "info"]
ERROR: Final = "error"
WARNING: Final = "warning"
INFO: Final = "info"
# What an issue is: a drift status for a keyword given, or a default that changed under a keyword left out.
IssueStatus = Literal["removed", "deprecated", "too_new", "no_equivalent", "default_changed"]
_SEVERITY: dict[rules.Status, Severity] = {rules.REMOVED: ERROR, rules.NO_EQUIVALENT: ERROR, rules.TOO_NEW: ERROR,
                                           rules.DEPRECATED: WARNING}


@dataclass(frozen=True)
class Issue:
    """One stale keyword (or one silently changed default) at one place."""

    path: str
    cell: int | None
    line: int
    col: int
    callable: str
    keyword: str
    severity: Severity
    status: IssueStatus
    message: str
    new: str | None = None
    target: str | None = None
    via: str | None = None
    reason: str = ""  # the rule's reason, for --fix to quote without parsing the message

    @property
    def where(self) -> str:
        """'path:line:col', with ' [cell N]' after the path in a notebook."""
        cell = f" [cell {self.cell}]" if self.cell is not None else ""
        return f"{self.path}{cell}:{self.line}:{self.col + 1}"

    @property
    def stale(self) -> bool:
        """An error or a warning (not an info about a changed default)."""
        return self.severity in (ERROR, WARNING)

    def to_dict(self) -> dict[str, object]:
        """The issue as JSON-ready values (col 1-based, like the text)."""
        return {"path": self.path, "cell": self.cell, "line": self.line, "col": self.col + 1,
                "callable": self.callable, "keyword": self.keyword, "severity": self.severity,
                "status": self.status, "new": self.new, "target": self.target, "via": self.via,
                "message": self.message}


@dataclass(frozen=True)
class LintResult:
    """Everything found in the given files, the versions judged against, and what --fix did."""

    issues: tuple[Issue, ...]
    versions: Versions
    matrix: str
    files: int
    errors: tuple[str, ...] = ()  # files or cells that could not be parsed
    fixed: tuple[Issue, ...] = ()
    unfixed: tuple[tuple[Issue, str], ...] = ()  # (issue, why it was left alone)
    changed_files: tuple[str, ...] = field(default=())

    @property
    def stale(self) -> tuple[Issue, ...]:
        """The errors and warnings."""
        return tuple(i for i in self.issues if i.stale)

    @property
    def exit_code(self) -> int:
        """0 clean, 1 stale keywords found (or left unfixed), 2 some file could not be read or parsed."""
        if self.fixed or self.unfixed:  # after --fix, what is left decides
            return 1 if self.unfixed else (2 if self.errors else 0)
        return 1 if self.stale else (2 if self.errors else 0)


def shared_names(units: Sequence[source.Unit], matrix: Matrix) -> dict[str, str]:
    """Imports of every unit of a file together: a notebook imports in one cell and calls in another."""
    names: dict[str, str] = {}
    for unit in units:
        try:
            names.update(finder.aliases(ast.parse(unit.code), rules.packages_of(matrix)))
        except SyntaxError:
            continue
    return names


def check_unit(unit: source.Unit, matrix: Matrix, versions: Versions,
               imported: dict[str, str] | None = None) -> tuple[list[Issue], str | None]:
    """The issues of one unit (imported: names imported elsewhere in the file), or why it cannot be parsed."""
    try:
        tree = ast.parse(unit.code, filename=unit.path)
    except SyntaxError as e:
        return [], f"{unit.where}:{e.lineno}: cannot parse: {e.msg}"
    names = {**(imported or {}), **finder.aliases(tree, rules.packages_of(matrix))}
    if not names:
        return [], None
    known = rules.known_callables(matrix)
    out: list[Issue] = []
    for call in finder.calls(tree, names, known):
        for kw in call.keywords:
            t = rules.translate(matrix, call.callable, kw.name, versions.versions)
            if t is None:
                continue
            new = t.new
            if t.target and t.new:
                new = rules.final_name(matrix, t.target, t.new, versions.versions) or t.new
            out.append(Issue(unit.path, unit.cell, kw.line, kw.col, call.callable, kw.name, _SEVERITY[t.status],
                             t.status, _message(t, new), new, t.target, t.via, t.rule.reason))
        if call.star_kwargs:
            continue  # a default may be set through **kwargs
        given = [k.name for k in call.keywords]
        for dc in rules.default_changes(matrix, call.callable, given, versions.versions):
            out.append(Issue(unit.path, unit.cell, call.line, call.col, call.callable, dc.keyword, INFO,
                             "default_changed", dc.describe(), reason=dc.rule.reason))
    out.sort(key=lambda i: (i.line, i.col))
    return out, None


def _message(t: rules.Translation, new: str | None) -> str:
    pkg = f"{t.rule.package} {t.version}"
    call = rules.short(t.callable)
    if new is None:
        return f"{call}({t.keyword}=) has no equivalent in {pkg}: {t.rule.reason}"
    verb = rules.VERB[t.status]
    arrow = (f"{call}({t.keyword}=) -> {call}({t.via}={rules.short(t.target)}({new}=))" if t.target
             else f"{call}({t.keyword}=) -> {call}({new}=)")
    return f"{arrow}: `{t.keyword}` {verb} {pkg}. {t.rule.reason}"


def lint(paths: Sequence[str], matrix: Matrix, *, use_pins: bool = False, fix: bool = False) -> LintResult:
    """Lint .py files and notebooks (folders recursively); with fix=True rewrite what can be fixed safely."""
    files = source.files(paths)
    versions = for_matrix(matrix, rules.packages_of(matrix), use_pins=use_pins)
    issues: list[Issue] = []
    errors: list[str] = []
    for f in files:
        try:
            units = list(source.units(f))
        except UsageError as e:  # one unreadable file in a folder must not hide the others' findings
            errors.append(str(e).removeprefix("lint: "))
            continue
        imported = shared_names(units, matrix)
        for unit in units:
            found, error = check_unit(unit, matrix, versions, imported)
            issues.extend(found)
            if error:
                errors.append(error)
    from .imports import with_imports  # removed imports, the matrix's [[imports]] (imports.py)

    versions, issues = with_imports(files, matrix, versions, issues, use_pins=use_pins)
    if not fix:
        return LintResult(tuple(issues), versions, matrix.ref, len(files), tuple(errors))
    from .fix import fix_files

    fixed, unfixed, changed = fix_files(files, issues, matrix, versions)
    return LintResult(tuple(issues), versions, matrix.ref, len(files), tuple(errors), tuple(fixed),
                      tuple(unfixed), tuple(changed))
