"""Find calls of transformers/TRL callables and their keywords in Python source, with the stdlib `ast`."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass

from .._drift import rules


@dataclass(frozen=True)
class Keyword:
    """One keyword argument of a call and where it is (1-based line, 0-based column)."""

    name: str
    line: int
    col: int


@dataclass(frozen=True)
class CallSite:
    """One call of a callable the rules know, e.g. 'trl.SFTTrainer', with its keyword names."""

    callable: str
    line: int
    col: int
    keywords: tuple[Keyword, ...]
    star_kwargs: bool  # **kwargs may hold more keywords than we can see


def aliases(tree: ast.AST, packages: Iterable[str]) -> dict[str, str]:
    """Local name -> dotted path for everything imported from the given packages (anywhere in the file)."""
    wanted = {p.replace("-", "_") for p in packages}
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in wanted:
                    out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] in wanted:
            for a in node.names:
                if a.name != "*":
                    out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def dotted(node: ast.AST, names: dict[str, str]) -> str | None:
    """The imported dotted path an expression names, e.g. `tf.TrainingArguments` -> transformers.TrainingArguments."""
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Attribute):
        base = dotted(node.value, names)
        return f"{base}.{node.attr}" if base else None
    return None


def calls(tree: ast.AST, names: dict[str, str], known: set[str]) -> list[CallSite]:
    """Every call whose normalized callable some rule names (wildcards included)."""
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        path = dotted(node.func, names)
        if path is None:
            continue
        norm = rules.normalize(path)
        if not any(rules.matches(k, norm) for k in known):
            continue
        kws = tuple(Keyword(k.arg, k.lineno, k.col_offset) for k in node.keywords if k.arg is not None)
        out.append(CallSite(norm, node.lineno, node.col_offset, kws, any(k.arg is None for k in node.keywords)))
    out.sort(key=lambda c: (c.line, c.col))
    return out
