"""Where names are bound, for `lint --fix`'s planner: which value a variable holds in which scope, where it was
first bound, and the one-statement line that binds it (so `args=cfg` can be traced to one `cfg = SFTConfig(...)`)."""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from ._keys import Edits, field_why
from ._reads import Key
from .engine import Issue

LITERALS = (cst.Integer, cst.Float, cst.SimpleString, cst.ConcatenatedString, cst.FormattedString)


class Bindings(Edits):
    """The variables of a module and its functions, as the visit reaches them."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        super().__init__(issues)
        self.assigned: dict[Key, list[cst.BaseExpression]] = {}  # variable -> every value bound to it so far
        self.bound_at: dict[Key, int] = {}  # variable -> line of its first binding
        self.statement_of: dict[Key, cst.SimpleStatementLine] = {}  # variable -> the one-statement line binding it
        self.module_consts: set[str] = set()
        self.functions: dict[str, cst.FunctionDef] = {}  # the module's own functions, by name
        self._scopes: list[int] = []  # lines of the defs we are in
        self._line: cst.SimpleStatementLine | None = None

    @property
    def _scope(self) -> int:
        return self._scopes[-1] if self._scopes else 0

    def _var(self, name: str, scope: int | None = None) -> Key:
        """The variable a name means in a scope (the current one by default): local if bound there, else global."""
        scope = self._scope if scope is None else scope
        return (scope, name) if (scope, name) in self.assigned else (0, name)

    def _values(self, name: str, scope: int | None = None) -> list[cst.BaseExpression]:
        return self.assigned.get(self._var(name, scope), [])

    # bindings, to know when `args=cfg` names exactly one `cfg = SFTConfig(...)`
    def _bind(self, name: str, value: cst.BaseExpression, line: int) -> None:
        self.assigned.setdefault((self._scope, name), []).append(value)
        self.bound_at.setdefault((self._scope, name), line)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if not self._scopes:
            self.functions[node.name.value] = node
        self._bind(node.name.value, node.name, self._pos(node.name)[0])
        line = self._pos(node.name)[0]  # the `def` line, as `ast` numbers the function's scope
        self._scopes.append(line)
        for p in [*node.params.params, *node.params.kwonly_params, *node.params.posonly_params]:
            self._bind(p.name.value, p.name, line)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._scopes.pop()

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self._line = node

    def visit_Assign(self, node: cst.Assign) -> None:
        line = self._pos(node)[0]
        for t in node.targets:
            if isinstance(t.target, cst.Name):
                self._bind(t.target.value, node.value, line)
                if self._line is not None and len(self._line.body) == 1:
                    self.statement_of[(self._scope, t.target.value)] = self._line
                if not self._scopes and isinstance(node.value, LITERALS):
                    self.module_consts.add(t.target.value)
            else:  # tuple targets etc.: the name is bound, but not to something we can read
                for n in names_in(t.target):
                    self._bind(n, t.target, line)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        issue = self.by_pos.get(self._pos(node.target))
        if issue is not None and isinstance(node.target, cst.Name) and issue.keyword == node.target.value:
            self.unfixed.append((issue, field_why(issue)))
        if isinstance(node.target, cst.Name):
            self._bind(node.target.value, node.value or node.target, self._pos(node)[0])

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        for n in names_in(node.target):
            self._bind(n, node.target, self._pos(node)[0])

    def visit_For(self, node: cst.For) -> None:
        for n in names_in(node.target):
            self._bind(n, node.target, self._pos(node)[0])


def names_in(node: cst.CSTNode) -> list[str]:
    if isinstance(node, cst.Name):
        return [node.value]
    if isinstance(node, cst.Tuple | cst.List):
        return [n for e in node.elements for n in names_in(e.value)]
    return []
