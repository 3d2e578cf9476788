"""Validate matrix files with pydantic, report every problem with its key path, and merge `extends`."""

from __future__ import annotations

import difflib
import types
from dataclasses import fields
from pathlib import Path
from typing import Any, Union, get_origin

from packaging.utils import canonicalize_name
from pydantic import BaseModel, ValidationError

from ..errors import MatrixError
from . import schema
from .checks import depth_problem
from .checks import where as _loc
from .kinds import BY_SECTION, KINDS, RuleKind
from .model import Matrix


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that owns the last key in loc, to suggest its real field names."""
    model: Any = schema.matrix_model()
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return None
        ann = field.annotation
        candidates = [ann, *getattr(ann, "__args__", ())]
        nxt = None
        for c in candidates:
            for inner in [c, *getattr(c, "__args__", ())]:
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    nxt = inner
        if nxt is None:
            return None
        model = nxt
    return model


def _union_arm(loc: tuple[Any, ...]) -> bool:
    """Whether the last part of `loc` is pydantic's tag for one arm of a union field (`extends.str`)."""
    if len(loc) < 2 or isinstance(loc[-2], int):
        return False
    owner = _model_at(loc[:-1])
    field = owner.model_fields.get(str(loc[-2])) if owner is not None else None
    if field is None:
        return False
    arms = [a for a in getattr(field.annotation, "__args__", ()) if a is not type(None)]
    return get_origin(field.annotation) in (Union, types.UnionType) and len(arms) > 1


def _problems(path: Path, error: ValidationError) -> list[str]:
    out: list[str | tuple[Any, ...]] = []  # a tuple: a union field, worded once all its arms are seen
    unions: dict[tuple[Any, ...], list[str]] = {}
    for err in error.errors():
        loc = tuple(err["loc"])
        if _union_arm(loc):
            if loc[:-1] not in unions:
                unions[loc[:-1]] = []
                out.append(loc[:-1])
            unions[loc[:-1]].append(err["msg"].removeprefix("Input should be ").removeprefix("Value error, "))
            continue
        where = _loc(loc)
        if err["type"] == "extra_forbidden":
            owner = _model_at(loc)
            names = [f.alias or n for n, f in owner.model_fields.items()] if owner else []
            hint = difflib.get_close_matches(str(loc[-1]), names, n=1)
            did = f" (did you mean {hint[0]!r}?)" if hint else ""
            out.append(f"{path}: unknown key {where!r}{did}")
        elif err["type"] == "missing":
            out.append(f"{path}: missing required key {where!r}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            out.append(f"{path}: {where}: {msg}")
    return [p if isinstance(p, str) else f"{path}: {_loc(p)}: input should be one of: {'; '.join(unions[p])}"
            for p in out]


def _key(entry: dict[str, Any], fields: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(
        canonicalize_name(entry[f]) if f == "name" and entry.get(f) else repr(entry.get(f)) for f in fields
    )


def _merge_kind(kind: RuleKind, parent: dict[str, Any], value: Any) -> Any:
    if not kind.many:
        return value
    merged = {_key(e, kind.key): e for e in parent.get(kind.path[-1], [])}
    for e in value:
        merged[_key(e, kind.key)] = e
    return list(merged.values())


def merge(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Child over parent: scalars replace, each rule kind merges by its registry entry (lists entry by entry,
    one-table rules replace when the child has one), groups of kinds (`gpu`) merge kind by kind."""
    groups = {k.path[0] for k in KINDS if len(k.path) > 1}
    own = {k.path[0] for k in KINDS}
    out = dict(parent)
    for k, v in child.items():
        if k not in own:
            out[k] = v
    for group in groups & set(child):
        out[group] = dict(parent.get(group) or {})
    for kind in KINDS:
        holder_child: Any = child
        holder_parent: Any = parent
        for part in kind.path[:-1]:
            holder_child = holder_child.get(part) or {}
            holder_parent = holder_parent.get(part) or {}
        value = holder_child.get(kind.path[-1])
        if value is None:
            continue
        target = out
        for part in kind.path[:-1]:
            target = target[part]
        target[kind.path[-1]] = _merge_kind(kind, holder_parent, value)
    return out


def _holder(data: dict[str, Any], kind: RuleKind) -> dict[str, Any]:
    for part in kind.path[:-1]:
        data = data.setdefault(part, {})
    return data


def _label(kind: RuleKind, entry: dict[str, Any]) -> str:
    """A rule's label (the registry's, as `matrix show` and `matrix diff` name it) from its dumped dict."""
    try:
        return kind.label(kind.rule.from_dict(entry))
    except (MatrixError, TypeError, ValueError):
        return ""


def drop(merged: dict[str, Any], removes: list[str], path: Path) -> list[str]:
    """Remove inherited rules named 'section:label' (or 'section' for a one-table kind) from `merged`, in place;
    returns a problem for each name that matches no inherited rule, listing what there is."""
    problems = []
    for target in removes:
        section, _, label = target.partition(":")
        kind = BY_SECTION.get(section)
        if kind is None:
            hint = difflib.get_close_matches(section, list(BY_SECTION), n=1)
            did = f" (did you mean {hint[0]!r}?)" if hint else ""
            problems.append(f"{path}: remove {target!r}: no rule kind {section!r}{did}")
            continue
        holder = _holder(merged, kind)
        name = kind.path[-1]
        if not kind.many:
            if label or holder.get(name) is None:
                problems.append(f"{path}: remove {target!r}: write {section!r} alone, for an inherited [{section}]")
            else:
                holder.pop(name)
            continue
        entries = holder.get(name) or []
        kept = [e for e in entries if _label(kind, e) != label]
        if len(kept) == len(entries):
            labels = ", ".join(sorted(_label(kind, e) for e in entries)) or "none inherited"
            hint = difflib.get_close_matches(label, [_label(kind, e) for e in entries], n=1)
            did = f" (did you mean {section}:{hint[0]}?)" if hint else ""
            problems.append(f"{path}: remove {target!r}: no inherited {section} rule {label!r}{did}; {labels}")
        holder[name] = kept
    return problems


def _check_merged(path: Path, data: dict[str, Any]) -> list[str]:
    problems = []
    groups = {g["name"] for g in data.get("install_groups", [])}
    for p in data.get("packages", []):
        if p.get("group") is not None and p["group"] not in groups:
            known = ", ".join(sorted(groups)) or "none declared"
            problems.append(f"{path}: package {p['name']!r} names unknown install group {p['group']!r} ({known})")
    return problems


def _bundled_name_check(path: Path, data: dict[str, Any]) -> list[str]:
    from .._paths import bundled_matrix_dir

    try:
        path.relative_to(bundled_matrix_dir())
    except ValueError:
        return []
    if (data.get("name"), data.get("version")) != (path.parent.name, path.stem):
        return [f"{path}: name/version {data.get('name')}@{data.get('version')} must match its place "
                f"{path.parent.name}/{path.stem}.toml"]
    return []


def compile_chain(chain: list[tuple[Path, bytes, dict[str, Any]]]) -> Matrix:
    """Validate every file of an extends chain (root first), merge them, and build the compiled Matrix."""
    problems: list[str] = []
    dumped: list[dict[str, Any]] = []
    file_model = schema.matrix_model()
    for path, _, data in chain:
        deep = depth_problem(data)
        if deep is not None:  # before pydantic: a deep enough file exhausts the recursive parts
            problems.append(f"{path}: {deep[0]}: {deep[1]}")
            continue
        try:
            model = file_model.model_validate(data)
        except ValidationError as e:
            problems.extend(_problems(path, e))
            continue
        problems.extend(_bundled_name_check(path, data))
        dumped.append(model.model_dump(exclude_unset=True))
    if problems:
        raise MatrixError(problems[0], tuple(problems))
    merged: dict[str, Any] = {}
    for (path, _, _), d in zip(chain, dumped, strict=True):
        problems.extend(drop(merged, list(d.get("remove", ())), path))
        merged = merge(merged, d)
    leaf = chain[-1][0]
    problems.extend(_check_merged(leaf, merged))
    if problems:
        raise MatrixError(problems[0], tuple(problems))
    merged["source"] = str(leaf)
    merged["chain"] = [f"{d['name']}@{d['version']}" for d in dumped]
    merged["extends"] = dumped[-1].get("extends")  # as written: a reference or a list of them
    defaults = {f.name: f.default for f in fields(Matrix)}
    for k in ("status", "status_reason", "title", "description", "remove", "model_types"):
        merged[k] = dumped[-1].get(k, defaults[k])  # the leaf's own, never inherited
    return Matrix.from_dict(merged)
