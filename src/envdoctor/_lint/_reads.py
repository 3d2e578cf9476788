"""Which variables a piece of Python reads, function by function, with the stdlib `ast` (for `lint --fix`)."""

from __future__ import annotations

import ast
from collections import Counter

Key = tuple[int, str]  # a variable: (line of the def it is local to, 0 for the module; its name)


def loads(tree: ast.AST) -> Counter[Key]:
    """How often each variable is read other than as `name.attribute` (which keeps working on a subclass).

    A variable is (the line of the `def` it is local to, or 0 for the module, name); a function's read of a name
    it does not bind counts for the module's.
    """
    out: Counter[Key] = Counter()

    def scan(body: list[ast.stmt], scope: int, local: set[str]) -> None:
        for stmt in body:
            for node in _walk_here(stmt):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    scan(node.body, node.lineno, _locals(node))
                elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                    out[(scope if node.id in local else 0, node.id)] += 1
                elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                    out[(scope if node.value.id in local else 0, node.value.id)] -= 1

    scan(getattr(tree, "body", []), 0, set())
    return out


def _walk_here(node: ast.AST) -> list[ast.AST]:
    """The nodes of one statement in its own scope: a nested def is kept (with its decorators and defaults, which
    run here), its body is not (its own scope)."""
    out: list[ast.AST] = []
    todo = [node]
    while todo:
        n = todo.pop()
        out.append(n)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef):
            todo.extend([*n.decorator_list, *n.args.defaults, *[d for d in n.args.kw_defaults if d is not None]])
        else:
            todo.extend(ast.iter_child_nodes(n))
    return out


def _locals(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    a = fn.args
    names = {p.arg for p in [*a.posonlyargs, *a.args, *a.kwonlyargs, *([a.vararg] if a.vararg else []),
                             *([a.kwarg] if a.kwarg else [])]}
    for stmt in fn.body:
        for n in _walk_here(stmt):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                names.add(n.id)
            elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(n.name)
            elif isinstance(n, ast.Import | ast.ImportFrom):
                names.update((al.asname or al.name).split(".")[0] for al in n.names)
    return names
