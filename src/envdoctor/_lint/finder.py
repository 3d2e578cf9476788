"""Find calls of transformers/TRL callables and their keywords in Python source, with the stdlib `ast`.

Keywords are read where they are written: in the call, in a dict literal or `dict(...)` that reaches the call
through `**name` (bound in the same function, or at module level), in the dict a `model_init_kwargs=` carries
to `from_pretrained`, and in the fields a user's `@dataclass` subclass of a rule's class re-declares.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .._drift import rules

# What TRL hands to `AutoModel*.from_pretrained`: the configs' model_init_kwargs (SFTConfig, DPOConfig, GRPOConfig,
# ... and SFTTrainer before 0.13.0), read as from_pretrained keywords.
MODEL_INIT = {"model_init_kwargs": "transformers.AutoModelForCausalLM.from_pretrained",
              "ref_model_init_kwargs": "transformers.AutoModelForCausalLM.from_pretrained"}


@dataclass(frozen=True)
class Keyword:
    """One keyword argument of a call and where it is (1-based line, 0-based column)."""

    name: str
    line: int
    col: int
    through: str = ""  # how it reaches the call when not written in it: "**kw", "model_init_kwargs"
    cell: int | None = None  # the notebook cell it is written in, when not the call's own


@dataclass(frozen=True)
class CallSite:
    """One call of a callable the rules know, e.g. 'trl.SFTTrainer', with its keyword names."""

    callable: str
    line: int
    col: int
    keywords: tuple[Keyword, ...]
    star_kwargs: bool  # **kwargs may hold more keywords than we can see
    shown: str = ""  # the name as written when it is not the rule's (a user's subclass), for messages


@dataclass(frozen=True)
class Subclass:
    """A class of the user's file that derives from a class the rules know: `class MyArgs(TrainingArguments)`."""

    name: str
    base: str  # the rules' callable it inherits from
    fields: tuple[Keyword, ...] = ()  # dataclass fields it declares, itself or through a user-level base
    params: frozenset[str] = frozenset()  # keywords its own __init__ names (handled by the user's code)
    own: tuple[Keyword, ...] = ()  # the fields this class itself declares (reported here, once)


@dataclass(frozen=True)
class DictKeys:
    """The string keys a name's dict literals (or `dict(...)` calls) bind; complete when nothing else can add keys."""

    keys: tuple[Keyword, ...] = ()
    complete: bool = True

    def __or__(self, other: DictKeys) -> DictKeys:
        return DictKeys(self.keys + tuple(k for k in other.keys if k not in self.keys),
                        self.complete and other.complete)


@dataclass
class Context:
    """What one file knows beyond a unit: imported names, user subclasses, module-level dicts (every cell)."""

    names: dict[str, str] = field(default_factory=dict)
    classes: dict[str, Subclass] = field(default_factory=dict)
    dicts: dict[str, DictKeys] = field(default_factory=dict)


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


def _known(path: str | None, known: set[str]) -> str | None:
    if path is None:
        return None
    norm = rules.normalize(path)
    return norm if any(rules.matches(k, norm) for k in known) else None


def _is_dataclass(cls: ast.ClassDef) -> bool:
    for dec in cls.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        if (target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")) == "dataclass":
            return True
    return False


def subclasses(tree: ast.AST, names: dict[str, str], known: set[str],
               seen: dict[str, Subclass] | None = None) -> dict[str, Subclass]:
    """Every class of the file whose base is a rule's class, or a class found here that is (in source order)."""
    out = dict(seen or {})
    for node in sorted((n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)), key=lambda n: n.lineno):
        base: Subclass | None = None
        for b in node.bases:
            path = _known(dotted(b, names), known)
            if path is not None:
                base = Subclass(node.name, path)
            elif isinstance(b, ast.Name) and b.id in out:
                base = out[b.id]
            if base is not None:
                break
        if base is None:
            continue
        own = [Keyword(s.target.id, s.target.lineno, s.target.col_offset) for s in node.body
               if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
               and "ClassVar" not in ast.unparse(s.annotation)] if _is_dataclass(node) else []
        fields = [*base.fields, *own]
        init = next((s for s in node.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"), None)
        params = base.params
        if init is not None:
            a = init.args
            params = params | {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]}
        out[node.name] = Subclass(node.name, base.base, tuple(fields), frozenset(params), tuple(own))
    return out


def _dict_keys(value: ast.AST | None) -> DictKeys:
    """The string keys of a dict literal or a `dict(...)` call; anything else adds unknown keys."""
    if isinstance(value, ast.Dict):
        keys = tuple(Keyword(k.value, k.lineno, k.col_offset) for k in value.keys
                     if isinstance(k, ast.Constant) and isinstance(k.value, str))
        return DictKeys(keys, len(keys) == len(value.keys))
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "dict":
        keys = tuple(Keyword(k.arg, k.lineno, k.col_offset) for k in value.keywords if k.arg is not None)
        return DictKeys(keys, len(keys) == len(value.keywords) and not value.args)
    return DictKeys((), False)


class _Scopes:
    """Dict bindings per function scope (module level is scope 0), and each call with its scope."""

    def __init__(self, tree: ast.AST) -> None:
        self.dicts: dict[int, dict[str, DictKeys]] = {0: {}}
        self.parent: dict[int, int] = {}
        self.calls: list[tuple[ast.Call, int]] = []
        self.attr_sets: list[tuple[str, ast.expr, int]] = []  # `args.model_init_kwargs = {...}`
        self._visit(tree, 0)

    def _bind(self, scope: int, name: str, keys: DictKeys) -> None:
        table = self.dicts.setdefault(scope, {})
        table[name] = table[name] | keys if name in table else keys

    def _visit(self, node: ast.AST, scope: int) -> None:
        for child in ast.iter_child_nodes(node):
            inner = scope
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                inner = id(child)
                self.parent[inner] = scope
                self.dicts[inner] = {}
                sig = child.args  # parameters shadow module-level names (`def f(**kwargs)` is no module `kwargs`)
                for p in [*sig.posonlyargs, *sig.args, *sig.kwonlyargs, *(x for x in (sig.vararg, sig.kwarg) if x)]:
                    self._bind(inner, p.arg, DictKeys((), False))
            elif isinstance(child, ast.Assign | ast.AnnAssign):
                targets = child.targets if isinstance(child, ast.Assign) else [child.target]
                for t in targets:
                    if isinstance(t, ast.Name):
                        self._bind(scope, t.id, _dict_keys(child.value))
                    elif isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name):
                        key = t.slice
                        if isinstance(key, ast.Constant) and isinstance(key.value, str):
                            self._bind(scope, t.value.id, DictKeys((Keyword(key.value, key.lineno, key.col_offset),)))
                        else:
                            self._bind(scope, t.value.id, DictKeys((), False))
                    elif isinstance(t, ast.Attribute) and t.attr in MODEL_INIT and child.value is not None:
                        self.attr_sets.append((t.attr, child.value, scope))
            elif isinstance(child, ast.Call):
                self.calls.append((child, scope))
                f = child.func
                if isinstance(f, ast.Attribute) and f.attr == "update" and isinstance(f.value, ast.Name):
                    keys = DictKeys(tuple(Keyword(k.arg, k.lineno, k.col_offset) for k in child.keywords
                                          if k.arg is not None))
                    for a in child.args:
                        keys = keys | _dict_keys(a)
                    self._bind(scope, f.value.id, keys)
            self._visit(child, inner)

    def lookup(self, name: str, scope: int, shared: dict[str, DictKeys]) -> DictKeys:
        """The keys `name` holds where it is used: its own scope, then enclosing ones, then other cells."""
        s: int | None = scope
        while s is not None:
            if name in self.dicts.get(s, {}):
                return self.dicts[s][name]
            s = self.parent.get(s)
        return shared.get(name, DictKeys((), False))


def module_dicts(tree: ast.AST, cell: int | None) -> dict[str, DictKeys]:
    """The dicts a unit binds at module level, tagged with its cell (for calls in other cells of a notebook)."""
    return {name: DictKeys(tuple(Keyword(k.name, k.line, k.col, k.through, cell) for k in d.keys), d.complete)
            for name, d in _Scopes(tree).dicts[0].items()}


def _through(value: ast.AST, scope: int, scopes: _Scopes, shared: dict[str, DictKeys], label: str) -> DictKeys:
    if isinstance(value, ast.Name):
        d = scopes.lookup(value.id, scope, shared)
        label = label or f"**{value.id}"
    else:
        d = _dict_keys(value)
        label = label or "**{...}"
    return DictKeys(tuple(Keyword(k.name, k.line, k.col, label, k.cell) for k in d.keys), d.complete)


def _receiver_free(node: ast.Call, names: dict[str, str]) -> str | None:
    """`model.push_to_hub(...)`: a method the rules judge whatever the receiver, in a file that imports its package."""
    f = node.func
    if not isinstance(f, ast.Attribute) or f.attr not in rules.ANY_RECEIVER:
        return None
    callable_ = rules.ANY_RECEIVER[f.attr]
    pkg = callable_.split(".")[0]
    return callable_ if any(v.split(".")[0] == pkg for v in names.values()) else None


def calls(tree: ast.AST, names: dict[str, str], known: set[str], context: Context | None = None) -> list[CallSite]:
    """Every call whose normalized callable some rule names (wildcards included), with the keywords it gets."""
    ctx = context or Context()
    scopes = _Scopes(tree)
    out = []
    for node, scope in scopes.calls:
        shown, skip = "", frozenset[str]()
        if isinstance(node.func, ast.Name) and node.func.id in ctx.classes:  # `class TrainingArguments(TA)` wins
            sub = ctx.classes[node.func.id]
            path: str | None = sub.base
            shown, skip = sub.name, sub.params | {f.name for f in sub.fields}
        else:
            path = _known(dotted(node.func, names), known) or _receiver_free(node, names)
        kws = [Keyword(k.arg, k.lineno, k.col_offset) for k in node.keywords if k.arg is not None]
        star = False
        for k in node.keywords:
            if k.arg is None:
                d = _through(k.value, scope, scopes, ctx.dicts, "")
                kws += d.keys
                star = star or not d.complete
            elif k.arg in MODEL_INIT and path is not None:
                d = _through(k.value, scope, scopes, ctx.dicts, k.arg)
                if d.keys:
                    out.append(CallSite(MODEL_INIT[k.arg], k.lineno, k.col_offset, d.keys, True, "from_pretrained"))
        if path is None:
            continue
        kept = tuple(k for k in kws if k.name not in skip)
        out.append(CallSite(path, node.lineno, node.col_offset, kept, star, shown))
    for attr, value, scope in scopes.attr_sets:
        d = _through(value, scope, scopes, ctx.dicts, attr)
        if d.keys:
            out.append(CallSite(MODEL_INIT[attr], value.lineno, value.col_offset, d.keys, True, "from_pretrained"))
    out.sort(key=lambda c: (c.line, c.col))
    return out


def iter_fields(classes: dict[str, Subclass]) -> Iterator[tuple[Subclass, Keyword]]:
    """Each field a user's subclass declares itself (once, at its own class)."""
    for sub in classes.values():
        for f in sub.own:
            yield sub, f
