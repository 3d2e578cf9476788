"""The second LibCST pass of `lint --fix`: apply the planner's edits, every other byte kept as it was."""

from __future__ import annotations

import libcst as cst

from ._cst import Planner
from ._moves import kw


class Fixer(cst.CSTTransformer):
    """Apply the planner's edits; every other byte of the source stays as it was."""

    def __init__(self, plan: Planner) -> None:
        super().__init__()
        self.plan = plan

    def leave_Arg(self, original_node: cst.Arg, updated_node: cst.Arg) -> cst.Arg:
        means = self.plan.means_args.get(original_node)
        if means is not None:
            return updated_node.with_changes(keyword=cst.Name(means[0]), value=_meaning(means, updated_node.value))
        new = self.plan.renames.get(original_node)
        return updated_node.with_changes(keyword=cst.Name(new)) if new else updated_node

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        new = self.plan.name_renames.get(original_node)
        return updated_node.with_changes(value=new) if new else updated_node

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        args = [u for o, u in zip(original_node.args, updated_node.args, strict=True)
                if o not in self.plan.removals]
        if args and original_node.args and original_node.args[-1] in self.plan.removals:
            gone = updated_node.args[-1]  # keep the call's closing style: its comma and what precedes `)`
            args[-1] = args[-1].with_changes(comma=gone.comma, whitespace_after_arg=gone.whitespace_after_arg)
        args = self._extend(original_node, args)
        if original_node in self.plan.new_configs:
            via, new = self.plan.new_configs[original_node]
            args = _append(args, kw(via, new.with_changes(args=self._extend(new, list(new.args)))))
        func = self.plan.converts.get(original_node, updated_node.func)
        return updated_node.with_changes(args=args, func=func)

    def leave_Dict(self, original_node: cst.Dict, updated_node: cst.Dict) -> cst.Dict:
        kept = [u for o, u in zip(original_node.elements, updated_node.elements, strict=True)
                if o not in self.plan.key_removals]
        if len(kept) == len(updated_node.elements):
            return updated_node
        if kept and original_node.elements[-1] in self.plan.key_removals:  # keep the closing style, as for a call
            gone = updated_node.elements[-1]
            kept[-1] = kept[-1].with_changes(comma=gone.comma)
        return updated_node.with_changes(elements=kept)

    def leave_DictElement(self, original_node: cst.DictElement, updated_node: cst.DictElement) -> cst.DictElement:
        means = self.plan.means_keys.get(original_node)
        if means is None or not isinstance(updated_node.key, cst.SimpleString):
            return updated_node
        key = updated_node.key
        return updated_node.with_changes(key=key.with_changes(value=f"{key.prefix}{key.quote}{means[0]}{key.quote}"),
                                         value=_meaning(means, updated_node.value))

    def leave_SimpleString(self, original_node: cst.SimpleString, updated_node: cst.SimpleString) -> cst.SimpleString:
        new = self.plan.key_renames.get(original_node)
        if new is None:
            return updated_node
        return updated_node.with_changes(value=f"{updated_node.prefix}{updated_node.quote}{new}{updated_node.quote}")

    def _extend(self, original: cst.Call, args: list[cst.Arg]) -> list[cst.Arg]:
        for extra in [*self.plan.additions.get(original, []), *self.plan.kept.get(original, [])]:
            args = _append(args, extra)
        return args

    def leave_ImportAlias(self, original_node: cst.ImportAlias, updated_node: cst.ImportAlias) -> cst.ImportAlias:
        new = self.plan.alias_renames.get(original_node)
        return updated_node.with_changes(name=cst.Name(new)) if new else updated_node

    def leave_ImportFrom(self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom
                         ) -> cst.ImportFrom | cst.RemovalSentinel:
        if isinstance(original_node.names, cst.ImportStar) or isinstance(updated_node.names, cst.ImportStar):
            return updated_node
        kept = [u for o, u in zip(original_node.names, updated_node.names, strict=True)
                if o not in self.plan.alias_removals]
        kept += [cst.ImportAlias(name=cst.Name(n)) for n in self.plan.merges.get(original_node, [])]
        if not kept:
            return cst.RemoveFromParent()
        if len(kept) != len(updated_node.names):
            last = updated_node.names[-1].comma
            kept = [*(a.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
                      if isinstance(a.comma, cst.MaybeSentinel) else a for a in kept[:-1]),
                    kept[-1].with_changes(comma=last)]
        return updated_node.with_changes(names=kept)

    def leave_SimpleStatementLine(self, original_node: cst.SimpleStatementLine,
                                  updated_node: cst.SimpleStatementLine
                                  ) -> cst.SimpleStatementLine | cst.RemovalSentinel:
        if original_node in self.plan.dropped_lines or not updated_node.body:
            return cst.RemoveFromParent()
        return updated_node

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        if not self.plan.new_imports:
            return updated_node
        by_module: dict[str, dict[str, None]] = {}
        for module, name in self.plan.new_imports:
            by_module.setdefault(module, {})[name] = None
        lines = [cst.parse_statement(f"from {m} import {', '.join(names)}\n") for m, names in by_module.items()]
        body = list(updated_node.body)
        at = 0  # after the last import of the module's own level (or its docstring)
        for n, stmt in enumerate(body):
            if not isinstance(stmt, cst.SimpleStatementLine):
                continue
            if any(isinstance(s, cst.Import | cst.ImportFrom) for s in stmt.body) or (
                    n == 0 and isinstance(stmt.body[0], cst.Expr) and isinstance(stmt.body[0].value, cst.SimpleString)):
                at = n + 1
        return updated_node.with_changes(body=[*body[:at], *lines, *body[at:]])


def _meaning(means: tuple[str, str, str, bool | None], value: cst.BaseExpression) -> cst.BaseExpression:
    """The new keyword's value: the literal for a literal True/False, else `(yes if value else no)`."""
    _, yes, no, flag = means
    if flag is not None:
        return cst.parse_expression(yes if flag else no)
    return cst.IfExp(test=value, body=cst.parse_expression(yes), orelse=cst.parse_expression(no),
                     lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def _multiline(comma: cst.Comma | cst.MaybeSentinel) -> bool:
    return isinstance(comma, cst.Comma) and isinstance(comma.whitespace_after, cst.ParenthesizedWhitespace)


def _append(args: list[cst.Arg], extra: cst.Arg) -> list[cst.Arg]:
    """Append a keyword in the call's own style: one line, or one argument per line with a trailing comma."""
    if not args:
        return [extra]
    last = args[-1]
    if isinstance(last.comma, cst.MaybeSentinel) and isinstance(last.whitespace_after_arg, cst.ParenthesizedWhitespace) \
            and len(args) >= 2 and _multiline(args[-2].comma):  # one per line, no trailing comma, `)` on its own line
        return [*args[:-1], last.with_changes(comma=args[-2].comma, whitespace_after_arg=cst.SimpleWhitespace("")),
                extra.with_changes(whitespace_after_arg=last.whitespace_after_arg)]
    if _multiline(last.comma):
        sep = args[-2].comma if len(args) >= 2 and _multiline(args[-2].comma) else last.comma
        return [*args[:-1], last.with_changes(comma=sep), extra.with_changes(comma=last.comma)]
    return [*args[:-1], last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))),
            extra.with_changes(comma=last.comma)]
