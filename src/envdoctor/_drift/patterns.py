"""Is a symptom pattern safe to run? Reject the shapes that make Python's backtracking `re` take exponential time.

A matrix is data that anyone may share, and its `symptoms[].pattern` is searched in text the user pastes;
`^(a+)+$` on 35 bytes never finishes (issue 15, finding 5). The pattern is parsed with the `re` module's own
parser (never regex-matched as text) and walked for the three shapes behind catastrophic backtracking:

- a quantifier inside a repeated group: `(a+)+`, `(a*)*`, `(.*a){20}`, `(\\w+\\s?)*`;
- a repeated alternation whose branches can start with the same character: `(a|a)*`, `(a|ab)+`, `(\\w|\\d)*`;
- a repeated group that can match the empty string: `(a?)*`, `(|a)+`.

Atomic groups and possessive quantifiers (`(?>a+)+`, `(a++)+`) never backtrack into, so they pass. Matching is
also bounded (`bounded_text`): what the checker cannot see (`.*x.*y.*z`, polynomial) stays short.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

try:  # Python 3.11+: the parser's home; `sre_parse` is its deprecated alias
    from re import _constants as _c  # type: ignore[attr-defined]
    from re import _parser as _p  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _p  # type: ignore[no-redef]

__all__ = ["MAX_LINE", "MAX_TEXT", "bounded_text", "pattern_problem"]

MAX_TEXT = 256 * 1024  # the error is at the end of a log: keep the last 256 KiB
MAX_LINE = 4096  # a single line (a minified blob, a progress bar) is cut to this many characters
_MAX_PATTERN = 2000

_REPEATS = {_c.MAX_REPEAT, _c.MIN_REPEAT} | ({_c.POSSESSIVE_REPEAT} if hasattr(_c, "POSSESSIVE_REPEAT") else set())
_ATOMIC = {x for x in (getattr(_c, "ATOMIC_GROUP", None), getattr(_c, "POSSESSIVE_REPEAT", None)) if x is not None}
_ZERO_WIDTH = {_c.AT, _c.ASSERT, _c.ASSERT_NOT}
# The characters first-sets are compared over: ASCII, and a few others so that classes like \w or [^x] meet.
_ALPHABET = frozenset(chr(i) for i in range(128)) | frozenset("éß€中\u00a0\u2028")
_CATEGORY = {
    "CATEGORY_DIGIT": str.isdigit, "CATEGORY_NOT_DIGIT": lambda ch: not ch.isdigit(),
    "CATEGORY_SPACE": str.isspace, "CATEGORY_NOT_SPACE": lambda ch: not ch.isspace(),
    "CATEGORY_WORD": lambda ch: ch.isalnum() or ch == "_",
    "CATEGORY_NOT_WORD": lambda ch: not (ch.isalnum() or ch == "_"),
}

Items = Sequence[tuple[Any, Any]]


def pattern_problem(pattern: str) -> str | None:
    """None when `pattern` is a regular expression that is safe to search any text with, else why it is not."""
    if len(pattern) > _MAX_PATTERN:
        return f"the pattern is {len(pattern)} characters long (at most {_MAX_PATTERN})"
    try:
        parsed = _p.parse(pattern)
    except (_c.error, RecursionError, OverflowError) as e:
        return f"not a regular expression: {e}"
    try:
        return _walk(list(parsed), inside=None)
    except RecursionError:
        return "the pattern nests too deeply to check"


def bounded_text(text: str) -> str:
    """The text a pattern is searched in: its last MAX_TEXT characters, each line cut to MAX_LINE."""
    text = text[-MAX_TEXT:]
    if all(len(line) <= MAX_LINE for line in text.split("\n")):
        return text
    return "\n".join(line[:MAX_LINE] for line in text.split("\n"))


def _walk(items: Items, inside: str | None) -> str | None:
    """The first unsafe shape in `items`; `inside` names the enclosing repeat (or None at top level)."""
    for op, av in items:
        if op in _ATOMIC:
            continue  # no backtracking into it: whatever it holds runs once per attempt
        if op in _REPEATS:
            lo, hi, body = av
            body = list(body)
            if inside is not None and hi > 1 and hi != lo:
                return f"a quantifier inside a repeated group ({inside}): nested quantifiers backtrack exponentially"
            if hi > 1:
                shown = _shown(lo, hi)
                if _nullable(body):
                    return f"a repeated group ({shown}) that can match the empty string"
                overlap = _overlapping_branch(body)
                if overlap is not None:
                    both = overlap if overlap == "the empty string" else repr(overlap)
                    return f"a repeated alternation ({shown}) whose branches can both match {both}"
                found = _walk(body, shown)
            else:
                found = _walk(body, inside)
        elif op == _c.SUBPATTERN:
            found = _walk(list(av[-1]), inside)
        elif op == _c.BRANCH:
            found = next((f for f in (_walk(list(b), inside) for b in av[1]) if f), None)
        elif op in (_c.ASSERT, _c.ASSERT_NOT):
            found = _walk(list(av[1]), inside)
        elif op == _c.GROUPREF_EXISTS:
            found = next((f for f in (_walk(list(b), inside) for b in av[1:] if b) if f), None)
        else:
            found = None
        if found:
            return found
    return None


def _shown(lo: int, hi: int) -> str:
    if hi == _c.MAXREPEAT:
        return {0: "*", 1: "+"}.get(lo, f"{{{lo},}}")
    return f"{{{lo},{hi}}}" if lo != hi else f"{{{lo}}}"


def _nullable(items: Items) -> bool:
    """Whether the sequence can match the empty string."""
    for op, av in items:
        if op in _ZERO_WIDTH:
            continue
        if op in _REPEATS:
            if av[0] == 0 or _nullable(list(av[2])):
                continue
            return False
        if op in (_c.SUBPATTERN,):
            if _nullable(list(av[-1])):
                continue
            return False
        if op == getattr(_c, "ATOMIC_GROUP", None):
            if _nullable(list(av)):
                continue
            return False
        if op == _c.BRANCH:
            if any(_nullable(list(b)) for b in av[1]):
                continue
            return False
        if op == _c.GROUPREF:
            continue  # a back reference to an empty group is empty
        return False
    return True


def _overlapping_branch(body: Items) -> str | None:
    """A character two alternatives inside a repeated body can both start with (what follows an alternative that
    can match empty counts as its start, the next repetition included), or None when every choice is clear."""
    return _ambiguous(body, _first(body))


def _ambiguous(items: Items, follow: set[str]) -> str | None:
    for i, (op, av) in enumerate(items):
        rest = list(items[i + 1:])
        after = _first(rest) | (follow if _nullable(rest) else set())
        if op == _c.BRANCH:
            seen: set[str] = set()
            empty = 0
            for branch in av[1]:
                branch = list(branch)
                empty += _nullable(branch)
                if empty > 1:
                    return "the empty string"
                first = _first(branch) | (after if _nullable(branch) else set())
                common = seen & first
                if common:
                    return _pick(common)
                seen |= first
            found = next((f for f in (_ambiguous(list(b), after) for b in av[1]) if f), None)
        elif op == _c.SUBPATTERN:
            found = _ambiguous(list(av[-1]), after)
        else:
            found = None
        if found:
            return found
    return None


def _pick(chars: set[str]) -> str:
    printable = sorted(c for c in chars if c in string.printable and not c.isspace())
    return printable[0] if printable else sorted(chars)[0]


def _first(items: Items) -> set[str]:
    """The characters (of the comparison alphabet) a match of the sequence can start with."""
    out: set[str] = set()
    for op, av in items:
        if op in _ZERO_WIDTH:
            continue
        if op in _REPEATS:
            out |= _first(list(av[2]))
            if av[0] == 0 or _nullable(list(av[2])):
                continue
            return out
        if op == _c.SUBPATTERN:
            out |= _first(list(av[-1]))
            if _nullable(list(av[-1])):
                continue
            return out
        if op == getattr(_c, "ATOMIC_GROUP", None):
            out |= _first(list(av))
            if _nullable(list(av)):
                continue
            return out
        if op == _c.BRANCH:
            for b in av[1]:
                out |= _first(list(b))
            if any(_nullable(list(b)) for b in av[1]):
                continue
            return out
        return out | _chars(op, av)
    return out


def _chars(op: Any, av: Any) -> set[str]:
    """The characters one single-character item matches (a back reference or unknown item: all of them)."""
    if op == _c.LITERAL:
        return {chr(av)}
    if op == _c.NOT_LITERAL:
        return set(_ALPHABET - {chr(av)})
    if op == _c.IN:
        negate = bool(av) and av[0][0] == _c.NEGATE
        matched: set[str] = set()
        for kind, value in av[1:] if negate else av:
            if kind == _c.LITERAL:
                matched.add(chr(value))
            elif kind == _c.RANGE:
                lo, hi = value
                matched |= {ch for ch in _ALPHABET if lo <= ord(ch) <= hi} | {chr(lo), chr(hi)}
            elif kind == _c.CATEGORY and str(value) in _CATEGORY:
                matched |= {ch for ch in _ALPHABET if _CATEGORY[str(value)](ch)}
            else:
                matched |= set(_ALPHABET)
        return set(_ALPHABET - matched) if negate else matched
    return set(_ALPHABET)
