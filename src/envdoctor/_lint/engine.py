"""Lint scripts and notebooks: every stale keyword at once, judged against installed or pinned versions."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from .._drift import rules
from .._drift.versions import Versions, for_matrix
from .._matrix.model import Matrix, RenameRule
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
    drop: bool = False  # the rule says --fix may delete the keyword (no equivalent, and deleting changes nothing)
    through: str = ""  # how the keyword reaches the call when not written in it ("**kw", "model_init_kwargs")
    means: tuple[str, str, str] | None = None  # a removed boolean: (keyword, literal for True, literal for False)

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
    return shared_context(units, matrix).names


def shared_context(units: Sequence[source.Unit], matrix: Matrix) -> finder.Context:
    """Imports, user subclasses and module-level dicts of every unit of a file together (in cell order)."""
    ctx = finder.Context()
    trees = []
    for unit in units:
        try:
            trees.append((unit, ast.parse(unit.code)))
        except SyntaxError:
            continue
    for _, tree in trees:
        ctx.names.update(finder.aliases(tree, rules.packages_of(matrix)))
    known = rules.known_callables(matrix)
    for unit, tree in trees:
        ctx.classes = finder.subclasses(tree, ctx.names, known, ctx.classes)
        for name, keys in finder.module_dicts(tree, unit.cell).items():
            ctx.dicts[name] = ctx.dicts[name] | keys if name in ctx.dicts else keys
    return ctx


def check_unit(unit: source.Unit, matrix: Matrix, versions: Versions,
               imported: dict[str, str] | finder.Context | None = None) -> tuple[list[Issue], str | None]:
    """The issues of one unit (imported: what the file's other units import and bind), or why it cannot be parsed."""
    try:
        tree = ast.parse(unit.code, filename=unit.path)
    except SyntaxError as e:
        return [], f"{unit.where}:{e.lineno}: cannot parse: {e.msg}"
    ctx = imported if isinstance(imported, finder.Context) else finder.Context(dict(imported or {}))
    names = {**ctx.names, **finder.aliases(tree, rules.packages_of(matrix))}
    if not names:
        return [], None
    known = rules.known_callables(matrix)
    own = finder.subclasses(tree, names, known, {k: v for k, v in ctx.classes.items()})
    here = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    local = finder.Context(names, own, ctx.dicts)
    out: list[Issue] = []
    for call in finder.calls(tree, names, known, local):
        for kw in call.keywords:
            t = rules.translate(matrix, call.callable, kw.name, versions.versions)
            if t is None:
                continue
            out.append(_issue(unit, kw, call.callable, t, matrix, versions, call.shown))
        if call.star_kwargs:
            continue  # a default may be set through **kwargs
        given = [k.name for k in call.keywords]
        for dc in rules.default_changes(matrix, call.callable, given, versions.versions):
            out.append(Issue(unit.path, unit.cell, call.line, call.col, call.callable, dc.keyword, INFO,
                             "default_changed", dc.describe(), reason=dc.rule.reason))
    for sub, f in finder.iter_fields({k: v for k, v in own.items() if k in here}):
        t = rules.translate(matrix, sub.base, f.name, versions.versions)
        if t is not None:
            issue = _issue(unit, f, sub.base, t, matrix, versions, sub.name)
            out.append(replace(issue, message=_field_message(sub, t, issue)))
    out = list({(i.cell, i.line, i.col, i.keyword, i.callable): i for i in out}.values())  # one dict, many calls
    out.sort(key=lambda i: (i.cell or 0, i.line, i.col))
    return out, None


def _issue(unit: source.Unit, kw: finder.Keyword, callable_: str, t: rules.Translation, matrix: Matrix,
           versions: Versions, shown: str = "") -> Issue:
    """One stale keyword; a moved one takes its target's current name (or says the target dropped it too)."""
    new, status, message, drop, reason, last = t.new, t.status, "", t.rule.drop, t.rule.reason, t.rule
    if t.target and t.new:
        there = rules.translate(matrix, t.target, t.new, versions.versions)
        if there is not None and there.status == rules.NO_EQUIVALENT:
            new, status, last = None, rules.NO_EQUIVALENT, there.rule
            drop = there.rule.drop  # the target dropped it: may go too
            reason = f"{t.rule.reason} Then: {there.rule.reason}"
            message = (f"{shown or rules.short(callable_)}({t.keyword}=) has no equivalent in {there.rule.package} "
                       f"{there.version}: {reason}")
        else:
            new = rules.final_name(matrix, t.target, t.new, versions.versions) or t.new
    message = message or _message(t, new, shown)
    if kw.through:
        message = f"{message} (reaches {shown or rules.short(callable_)} through {kw.through})"
    cell = kw.cell if kw.cell is not None else unit.cell
    return Issue(unit.path, cell, kw.line, kw.col, callable_, kw.name, _SEVERITY[status], status, message,
                 new, t.target if new else None, t.via if new else None, reason, drop and new is None,
                 kw.through, _means(last) if new is None else None)


def _means(rule: RenameRule) -> tuple[str, str, str] | None:
    yes, no = rule.means(True), rule.means(False)
    return (yes[0], yes[1], no[1]) if yes and no else None


def _field_message(sub: finder.Subclass, t: rules.Translation, issue: Issue) -> str:
    base = rules.short(sub.base)
    if t.status == rules.DEPRECATED:
        return f"{sub.name}({base}) re-declares `{t.keyword}`: {issue.message}"
    verb = "no longer reads" if t.status != rules.TOO_NEW else "does not read yet"
    instead = f" (use `{issue.new}`)" if issue.new else ""
    return (f"{sub.name}({base}) re-declares the field `{t.keyword}`, which {base} of {t.rule.package} {t.version} "
            f"{verb}{instead}: the value is silently ignored, so training changes without an error. "
            f"{t.rule.reason}")


def _message(t: rules.Translation, new: str | None, shown: str = "") -> str:
    pkg = f"{t.rule.package} {t.version}"
    call = shown or rules.short(t.callable)
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
        imported = shared_context(units, matrix)
        seen: set[tuple[object, ...]] = set()
        for unit in units:
            found, error = check_unit(unit, matrix, versions, imported)
            for i in found:  # a dict of one cell that reaches calls in two cells is one issue
                key = (i.path, i.cell, i.line, i.col, i.keyword, i.callable)
                if key not in seen:
                    seen.add(key)
                    issues.append(i)
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
