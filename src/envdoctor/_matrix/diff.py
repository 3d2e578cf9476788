"""What moved between two matrices, from what to what, and the reason each side records for it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from .kinds import KINDS
from .model import Matrix

DIFF_SCHEMA_VERSION = 1

ChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True)
class Change:
    """One rule that was added, removed or changed; `reason` is the new side's, `old_reason` the old side's."""

    section: str
    key: str
    kind: ChangeKind
    old: str | None = None
    new: str | None = None
    reason: str | None = None
    old_reason: str | None = None
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class MatrixDiff:
    """The changes from matrix `a` to matrix `b`, in the order sections appear in a matrix file."""

    a: str
    b: str
    changes: tuple[Change, ...]

    def to_dict(self) -> dict[str, Any]:
        """The diff as JSON holds it, with its schema version."""
        return {"schema_version": DIFF_SCHEMA_VERSION, "from": self.a, "to": self.b,
                "changes": [vars(c) | {"evidence": list(c.evidence)} for c in self.changes]}


def _keyed(section: str, old: Iterable[Any], new: Iterable[Any], key: Callable[[Any], str],
           show: Callable[[Any], str]) -> list[Change]:
    a = {key(r): r for r in old}
    b = {key(r): r for r in new}
    out: list[Change] = []
    for k, rb in b.items():
        ra = a.get(k)
        ev = tuple(getattr(rb, "evidence", ()))
        if ra is None:
            out.append(Change(section, k, "added", None, show(rb), getattr(rb, "reason", None), None, ev))
        elif show(ra) != show(rb) or getattr(ra, "reason", None) != getattr(rb, "reason", None):
            out.append(Change(section, k, "changed", show(ra), show(rb), getattr(rb, "reason", None),
                              getattr(ra, "reason", None), ev))
    for k, ra in a.items():
        if k not in b:
            out.append(Change(section, k, "removed", show(ra), None, None, getattr(ra, "reason", None),
                              tuple(getattr(ra, "evidence", ()))))
    return out


def _scalar(section: str, old: Any, new: Any, show: Callable[[Any], str]) -> list[Change]:
    sa = show(old) if old is not None else None
    sb = show(new) if new is not None else None
    if sa == sb and getattr(old, "reason", None) == getattr(new, "reason", None):
        return []
    kind: ChangeKind = "added" if sa is None else "removed" if sb is None else "changed"
    return [Change(section, section, kind, sa, sb, getattr(new, "reason", None), getattr(old, "reason", None),
                   tuple(getattr(new if new is not None else old, "evidence", ())))]


def diff(a: Matrix, b: Matrix) -> MatrixDiff:
    """Every difference between `a` and `b` that a reader of the story needs: the status, then each rule kind."""
    changes: list[Change] = []
    if (a.status, a.status_reason) != (b.status, b.status_reason):
        changes.append(Change("status", "status", "changed", a.status, b.status, b.status_reason, a.status_reason))
    for kind in KINDS:
        old, new = kind.rules(a), kind.rules(b)
        if kind.many:
            changes += _keyed(kind.section, old, new, kind.label, kind.show)
        else:
            changes += _scalar(kind.section, old[0] if old else None, new[0] if new else None, kind.show)
    return MatrixDiff(a.ref, b.ref, tuple(changes))


def render_text(d: MatrixDiff, evidence: bool = False) -> str:
    """The diff as text: one line per change, then the reason recorded for it (and its evidence on request)."""
    if not d.changes:
        return f"{d.a} -> {d.b}: no differences\n"
    lines = [f"{d.a} -> {d.b}: {len(d.changes)} change(s)"]
    section = None
    mark = {"added": "+", "removed": "-", "changed": "~"}
    for c in d.changes:
        if c.section != section:
            section = c.section
            lines.append(f"\n{section}:")
        if c.kind == "changed":
            what: str | None = f"{c.old} -> {c.new}"
        else:
            what = c.new if c.kind == "added" else c.old
        label = "" if c.key in (c.section, c.old, c.new) else f"{c.key} "
        lines.append(f"  {mark[c.kind]} {label}{what}")
        if c.kind == "removed":
            if c.old_reason:
                lines.append(f"      was there because: {c.old_reason}")
        else:
            if c.reason:
                lines.append(f"      why: {c.reason}")
            if c.kind == "changed" and c.old_reason and c.old_reason != c.reason:
                lines.append(f"      before: {c.old_reason}")
        if evidence:
            lines += [f"      evidence: {e}" for e in c.evidence]
    return "\n".join(lines) + "\n"
