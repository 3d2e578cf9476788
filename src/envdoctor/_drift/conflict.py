"""A pasted pip refusal: name the real conflicting pair from the text, with or without the ResolutionImpossible line.

pip's words are read by the resolver's own parser (`_resolver._conflict.from_pip`, the one `fix` and `matrix
validate` use); this module only cleans what pasting adds (a build log's `#7 17.98 ` prefix, a quote's `> `, a
requirement's `; marker`) and picks the pair: the package that two sides want differently.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from .judge import Context, Judgement

if TYPE_CHECKING:  # pragma: no cover
    from .._resolver.model import Side

_PREFIX = re.compile(r"^(?:#\d+ \d+(?:\.\d+)? |> ?)", re.MULTILINE)  # docker buildkit's step/time; a quote
_MARKER = re.compile(r";[^\n]*$", re.MULTILINE)  # "torch==2.10.0; platform_machine == ..." (per line)
_VERSION = re.compile(r"\d+(\.\d+)*")  # a plain release number ("2.10.0"), not a wildcard ("2.*")
_WHY = "a resolver's refusal depends on the set that was requested, not on what is installed here"


def cleaned(text: str) -> str:
    """The pasted text as pip printed it: prefixes and environment markers removed."""
    return _MARKER.sub("", _PREFIX.sub("", text))


def _who(side: Side) -> str:
    if side.dependent is None:
        return f"the request {side.name}{side.specifier}"
    return f"{side.dependent} {side.dependent_version or ''}".strip() + f" needs {side.name}{side.specifier}"


def _disjoint(a: str, b: str) -> bool:
    """Whether no version either specifier names satisfies both (`==2.10.0` and `==2.9.0`, `==0.21.0` and `<0.20`)."""
    sa, sb = SpecifierSet(a), SpecifierSet(b)
    named = [Version(s.version) for s in (*sa, *sb) if _VERSION.fullmatch(s.version)]
    return not any(sa.contains(v, prereleases=True) and sb.contains(v, prereleases=True) for v in named)


def pair(sides: Sequence[Side]) -> tuple[Side, Side, bool] | None:
    """Two sides that want one package differently, and whether they exclude each other; a requested line first."""
    by_key: dict[str, list[Side]] = {}
    for side in sides:
        by_key.setdefault(side.key, []).append(side)
    overlapping: tuple[Side, Side, bool] | None = None
    for group in by_key.values():
        ordered = sorted(group, key=lambda s: s.dependent is not None)  # the user's request first, then pip's order
        for i, a in enumerate(ordered):
            for b in ordered[i + 1:]:
                if a.specifier == b.specifier:
                    continue
                if _disjoint(a.specifier, b.specifier):
                    return a, b, True
                overlapping = overlapping or (a, b, False)
    return overlapping


def judge(ctx: Context) -> Judgement:
    """The pair pip names (or its reasons, when no two sides can be read), in the cause."""
    from .._resolver._conflict import from_pip

    conflict = from_pip(cleaned(ctx.text), ())
    found = pair(conflict.sides)
    facts: dict[str, object] = {"chain": list(conflict.chain), "pair": None}
    if found is not None:
        a, b, disjoint = found
        facts["pair"] = [_who(a), _who(b)]
        cause = (f"pip cannot install the set: {_who(a)}, but {_who(b)}; no version of {a.name} satisfies both."
                 if disjoint else f"pip cannot install the set; its reasons name {_who(a)} and {_who(b)}, which "
                 f"overlap, so the refusal also involves the other lines: {'; '.join(conflict.chain[:4])}")
        fix = (f"Change one side: a {b.dependent or b.name} release whose requirement on {a.name} allows "
               f"{a.specifier or 'the other'}, or drop the pin on {a.name}; `envdoctor matrix validate FILE` checks "
               "a requirements file as pip would, and `envdoctor fix --dry-run` shows a resolved set.")
        return Judgement(None, _WHY, cause=cause, fix=fix, facts=facts)
    if conflict.chain:
        said = "; ".join(conflict.chain[:4])
        return Judgement(None, _WHY, cause=f"pip cannot install the set; its reasons: {said}", facts=facts)
    return Judgement(None, _WHY, facts=facts)
