"""The registry of rule kinds, read off the `section()` fields of `Matrix` and `GpuRules`: what merging, `matrix
show`, `matrix diff`, the evidence check and `check` iterate, so that none of them lists the kinds by hand."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import Any

from .model import Matrix
from .record import Listed, Record, hints, optional_arms


@dataclass(frozen=True)
class RuleKind:
    """One kind of rule: where it is written, its class, and how it is merged, named, shown and diffed."""

    section: str  # as written and reported: 'packages', 'gpu.bf16'
    path: tuple[str, ...]  # attributes from the Matrix (and keys from the top of the file): ('gpu', 'bf16')
    rule: type[Record]
    many: bool  # [[section]] (a list) or [section] (one table)
    key: tuple[str, ...]  # fields a child matrix's list entry replaces its parent's by
    label: Callable[[Any], str]
    show: Callable[[Any], str]
    head: Callable[[Any], str]
    title: str
    listed: Listed
    doc: str

    @property
    def evidence(self) -> bool:
        """Whether its rules carry evidence (every rule of a bundled matrix must then have some)."""
        return any(f.name == "evidence" for f in fields(self.rule))  # type: ignore[arg-type]

    def rules(self, matrix: Matrix) -> tuple[Any, ...]:
        """The rules of this kind in a compiled matrix (none, one or many)."""
        value: Any = matrix
        for part in self.path:
            value = getattr(value, part)
        if self.many:
            return tuple(value)
        return () if value is None else (value,)

    def place(self, rule: Any) -> str:
        """Where a rule is, as a person reads it: 'packages[torch]', 'gpu.bf16'."""
        return f"{self.section}[{self.label(rule)}]" if self.many else self.section


def _head(label: Callable[[Any], str], show: Callable[[Any], str]) -> Callable[[Any], str]:
    """A rule's line in `matrix show` by default: its label and what it says ('qlora-8b: >= 14 GiB')."""

    def head(rule: Any) -> str:
        name, says = label(rule), show(rule)
        return says if name == says else f"{name}: {says}"

    return head


def _kinds(cls: Any, prefix: tuple[str, ...]) -> Iterator[RuleKind]:
    types_ = hints(cls)
    for f in fields(cls):  # type: ignore[arg-type]
        meta = f.metadata.get("kind")
        tp, _ = optional_arms(types_[f.name])
        if meta is None:
            if isinstance(tp, type) and issubclass(tp, Record) and any("kind" in g.metadata for g in fields(tp)):  # type: ignore[arg-type]
                yield from _kinds(tp, (*prefix, f.name))  # a group of kinds under one table: [gpu.bf16]
            continue
        many = not meta["one"]
        rule = tp.__args__[0] if many else tp
        path = (*prefix, f.name)
        head = meta["head"] or (meta["show"] if not many else _head(meta["label"], meta["show"]))
        yield RuleKind(".".join(path), path, rule, many, meta["key"], meta["label"], meta["show"], head,
                       meta["title"] or ".".join(path), meta["listed"], f.metadata["doc"])


KINDS: tuple[RuleKind, ...] = tuple(_kinds(Matrix, ()))
BY_SECTION: dict[str, RuleKind] = {k.section: k for k in KINDS}


@dataclass(frozen=True)
class PlacedRule:
    """One rule of a compiled matrix with its kind and its place."""

    kind: RuleKind
    rule: Any
    place: str

    @property
    def evidence(self) -> tuple[str, ...]:
        return tuple(getattr(self.rule, "evidence", ()))


def every_rule(matrix: Matrix) -> Iterator[PlacedRule]:
    """Every rule of a compiled matrix, kind by kind in file order, with its place ('packages[torch]', 'gpu.bf16')."""
    for kind in KINDS:
        for rule in kind.rules(matrix):
            yield PlacedRule(kind, rule, kind.place(rule))
