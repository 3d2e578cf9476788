"""The LibCST passes of `lint --fix`: plan every edit first (and why some are unsafe), then apply them."""

from __future__ import annotations

import ast
from collections.abc import Sequence

import libcst as cst
from libcst.metadata import PositionProvider

from .._drift import rules
from . import finder
from .engine import Issue

_LITERALS = (cst.Integer, cst.Float, cst.SimpleString, cst.ConcatenatedString, cst.FormattedString)


def dotted(node: cst.BaseExpression, names: dict[str, str]) -> str | None:
    """The imported dotted path a LibCST expression names: the `ast` finder's answer for the same source."""
    if not isinstance(node, cst.Name | cst.Attribute):
        return None
    return finder.dotted(ast.parse(f"({_code(node)})", mode="eval").body, names)  # parenthesised: may span lines


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


class Planner(cst.CSTVisitor):
    """Read-only pass: decide every rename and move, keyed by the original nodes."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, issues: Sequence[Issue], names: dict[str, str]) -> None:
        super().__init__()
        self.by_pos = {(i.line, i.col): i for i in issues}
        self.names = names
        self.renames: dict[cst.Arg, str] = {}
        self.removals: set[cst.Arg] = set()
        self.additions: dict[cst.Call, list[cst.Arg]] = {}
        self.assigned: dict[str, list[cst.BaseExpression]] = {}  # name -> every value bound to it so far
        self.module_consts: set[str] = set()
        self.fixed: list[Issue] = []
        self.unfixed: list[tuple[Issue, str]] = []
        self._depth = 0

    # bindings, to know when `args=cfg` names exactly one `cfg = SFTConfig(...)`
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._depth += 1
        for p in [*node.params.params, *node.params.kwonly_params, *node.params.posonly_params]:
            self.assigned.setdefault(p.name.value, []).append(p.name)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._depth -= 1

    def visit_Assign(self, node: cst.Assign) -> None:
        for t in node.targets:
            if isinstance(t.target, cst.Name):
                self.assigned.setdefault(t.target.value, []).append(node.value)
                if self._depth == 0 and isinstance(node.value, _LITERALS):
                    self.module_consts.add(t.target.value)
            else:  # tuple targets etc.: the name is bound, but not to something we can read
                for n in _names_in(t.target):
                    self.assigned.setdefault(n, []).append(t.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if isinstance(node.target, cst.Name):
            self.assigned.setdefault(node.target.value, []).append(node.value or node.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        for n in _names_in(node.target):
            self.assigned.setdefault(n, []).append(node.target)

    def visit_For(self, node: cst.For) -> None:
        for n in _names_in(node.target):
            self.assigned.setdefault(n, []).append(node.target)

    def _pos(self, node: cst.CSTNode) -> tuple[int, int]:
        start = self.get_metadata(PositionProvider, node).start
        return start.line, start.column

    def visit_Call(self, node: cst.Call) -> None:
        keywords = {a.keyword.value for a in node.args if a.keyword is not None}
        moved: list[tuple[cst.Arg, Issue]] = []
        for arg in node.args:
            if arg.keyword is None:
                continue
            issue = self.by_pos.get(self._pos(arg))
            if issue is None or issue.keyword != arg.keyword.value:
                continue
            if issue.new is None:
                self.unfixed.append((issue, f"no equivalent: {issue.reason}"))
            elif issue.target is None:
                if issue.new in keywords:
                    self.unfixed.append((issue, f"both `{issue.keyword}` and `{issue.new}` are given; keep one"))
                else:
                    self.renames[arg] = issue.new
                    self.fixed.append(issue)
            else:
                moved.append((arg, issue))
        if moved:
            self._plan_moves(node, moved)

    def _plan_moves(self, call: cst.Call, moved: list[tuple[cst.Arg, Issue]]) -> None:
        via, target = moved[0][1].via or "", moved[0][1].target or ""
        holder = next((a for a in call.args if a.keyword is not None and a.keyword.value == via), None)
        show = f"{via}={rules.short(target)}(..., {moved[0][1].new}=...)"
        if holder is None:
            for _, issue in moved:
                self.unfixed.append((issue, f"there is no {via}= to put it in; pass {show} yourself"))
            return
        config, by_name = self._config_call(holder.value, target)
        base = next((b for b in rules.INHERITS.get(target, ()) if self._config_call(holder.value, b)[0]), None)
        if config is None and base is not None:
            # Rewriting TrainingArguments(...) into SFTConfig(...) is not safe: SFTConfig's defaults differ
            # (learning_rate, logging_steps, ...), while SFTTrainer itself converts with the base's values.
            for _, issue in moved:
                self.unfixed.append((issue, f"{via}={_code(holder.value)} is a {rules.short(base)}: build it as "
                                            f"{rules.short(target)}(...) with {issue.new}=... (it takes every "
                                            f"{rules.short(base)} keyword; check the defaults that differ)"))
            return
        if config is None:
            for _, issue in moved:
                self.unfixed.append((issue, f"{via}={_code(holder.value)} is not a {rules.short(target)}(...) "
                                            f"built once in this file; move it into that config by hand"))
            return
        present = {a.keyword.value for a in config.args if a.keyword is not None}
        for arg, issue in moved:
            if issue.new in present or issue.keyword in present:
                self.unfixed.append((issue, f"{rules.short(target)}(...) already sets `{issue.new}`; "
                                            f"delete one of the two"))
            elif by_name and not self._safe(arg.value):
                self.unfixed.append((issue, f"the value `{_code(arg.value)}` may not exist where "
                                            f"{_code(holder.value)} is built; move it by hand"))
            else:
                self.removals.add(arg)
                self.additions.setdefault(config, []).append(
                    cst.Arg(keyword=cst.Name(issue.new or issue.keyword), value=arg.value,
                            equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                                  whitespace_after=cst.SimpleWhitespace(""))))
                self.fixed.append(issue)

    def _config_call(self, value: cst.BaseExpression, target: str) -> tuple[cst.Call | None, bool]:
        """The target's constructor call that `via=` receives: inline, or one `name = Target(...)` earlier."""
        if isinstance(value, cst.Call):
            return (value, False) if self._is(value, target) else (None, False)
        if isinstance(value, cst.Name):
            bound = self.assigned.get(value.value, [])
            if len(bound) == 1 and isinstance(bound[0], cst.Call) and self._is(bound[0], target):
                return bound[0], True
        return None, False

    def _is(self, call: cst.Call, target: str) -> bool:
        path = dotted(call.func, self.names)
        return path is not None and rules.normalize(path) == target

    def _safe(self, value: cst.BaseExpression) -> bool:
        if isinstance(value, _LITERALS):
            return True
        if isinstance(value, cst.Name):
            return value.value in ("True", "False", "None") or (
                value.value in self.module_consts and len(self.assigned.get(value.value, [])) == 1)
        if isinstance(value, cst.UnaryOperation):
            return self._safe(value.expression)
        return False


def _names_in(node: cst.CSTNode) -> list[str]:
    if isinstance(node, cst.Name):
        return [node.value]
    if isinstance(node, cst.Tuple | cst.List):
        return [n for e in node.elements for n in _names_in(e.value)]
    return []


class Fixer(cst.CSTTransformer):
    """Apply the planner's edits; every other byte of the source stays as it was."""

    def __init__(self, plan: Planner) -> None:
        super().__init__()
        self.plan = plan

    def leave_Arg(self, original_node: cst.Arg, updated_node: cst.Arg) -> cst.Arg:
        new = self.plan.renames.get(original_node)
        return updated_node.with_changes(keyword=cst.Name(new)) if new else updated_node

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        args = [u for o, u in zip(original_node.args, updated_node.args, strict=True)
                if o not in self.plan.removals]
        if args and original_node.args and original_node.args[-1] in self.plan.removals:
            args[-1] = args[-1].with_changes(comma=updated_node.args[-1].comma)  # keep the call's closing style
        for extra in self.plan.additions.get(original_node, []):
            args = _append(args, extra)
        return updated_node.with_changes(args=args)


def _multiline(comma: cst.Comma | cst.MaybeSentinel) -> bool:
    return isinstance(comma, cst.Comma) and isinstance(comma.whitespace_after, cst.ParenthesizedWhitespace)


def _append(args: list[cst.Arg], extra: cst.Arg) -> list[cst.Arg]:
    """Append a keyword in the call's own style: one line, or one argument per line with a trailing comma."""
    if not args:
        return [extra]
    last = args[-1]
    if _multiline(last.comma):
        sep = args[-2].comma if len(args) >= 2 and _multiline(args[-2].comma) else last.comma
        return [*args[:-1], last.with_changes(comma=sep), extra.with_changes(comma=last.comma)]
    return [*args[:-1], last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))),
            extra.with_changes(comma=last.comma)]
