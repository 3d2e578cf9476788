"""Tolerant matching: the same error pasted through GitHub markdown, a chat window or a narrow terminal.

A symptom's pattern is written against the library's real message. What users paste differs in three ways, and
explain searches three views of the text, each mapped back to the pasted offsets:

- quotes: curly quotes and primes (`‘evaluation_strategy’`) and no-break spaces read as the plain characters;
- wrapping: a line break (with the next line's indentation) reads as one space, so a message wrapped by a
  terminal, a logger's right-hand column or a mail client still matches;
- markdown: GitHub renders `__init__` as bold **init** and `_eval_` as italics, so the pasted text loses its
  underscores and sometimes keeps stray asterisks. This view drops `_` and `*` from the text and the literal
  underscores from the pattern (never from a group name), and a captured name is read back through the names
  the caller knows (`evaluationstrategy` -> `evaluation_strategy`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["View", "Views", "first_match", "normalise", "restore", "unmarked_pattern", "views"]

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2032": "'",
                         "\u00a0": " ", "\u202f": " ", "\uff1a": ":"})
_WRAP = re.compile(r"[ \t]*\r?\n[ \t]*")
_MARKS = frozenset("_*")
_GROUP_NAME = re.compile(r"\(\?P[<=]\w+>?|\(\?P=\w+\)")


def normalise(text: str) -> str:
    """Curly quotes, primes, no-break spaces and the full-width colon as plain ones (same length, same offsets)."""
    return text.translate(_QUOTES)


@dataclass(frozen=True)
class View:
    """A view of the pasted text; `origin[i]` is the pasted offset of the view's character i."""

    name: str  # "pasted", "unwrapped" or "unmarked"
    text: str
    origin: tuple[int, ...]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The pasted offsets of the view's span start..end."""
        if not self.origin:
            return 0, 0
        last = len(self.origin) - 1
        first = self.origin[min(start, last)]
        return first, (self.origin[min(end, len(self.origin)) - 1] + 1 if end > start else first)


def _identity(text: str) -> View:
    return View("pasted", text, tuple(range(len(text))))


def _unwrap(view: View) -> View:
    out: list[str] = []
    origin: list[int] = []
    pos = 0
    for m in _WRAP.finditer(view.text):
        out.append(view.text[pos:m.start()])
        origin.extend(view.origin[pos:m.start()])
        out.append(" ")
        origin.append(view.origin[m.start()])
        pos = m.end()
    out.append(view.text[pos:])
    origin.extend(view.origin[pos:])
    return View("unwrapped", "".join(out), tuple(origin))


def _unmark(view: View) -> View:
    keep = [i for i, ch in enumerate(view.text) if ch not in _MARKS]
    return View("unmarked", "".join(view.text[i] for i in keep), tuple(view.origin[i] for i in keep))


def views(text: str) -> Iterator[View]:
    """The pasted text (quotes normalised), then unwrapped (when it differs), then without markdown marks."""
    pasted = _identity(normalise(text))
    yield pasted
    unwrapped = _unwrap(pasted)
    if unwrapped.text != pasted.text:
        yield unwrapped
    yield _unmark(unwrapped)  # even when the text has no marks: the pattern loses its underscores here


class Views:
    """The views of one text, each built the first time a pattern needs it (most texts match in the first)."""

    def __init__(self, text: str) -> None:
        self._made: list[View] = []
        self._next = views(text)

    def __iter__(self) -> Iterator[View]:
        yield from self._made
        for view in self._next:
            self._made.append(view)
            yield view


def unmarked_pattern(pattern: str) -> str:
    """The pattern with its literal underscores dropped (group names and escapes kept), for the unmarked view."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        m = _GROUP_NAME.match(pattern, i)
        if m:
            out.append(m.group(0))
            i = m.end()
            continue
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            if pattern[i + 1] != "_":
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if ch != "_":
            out.append(ch)
        i += 1
    return "".join(out)


def restore(value: str, known: Iterable[str]) -> str:
    """A name captured in the unmarked view, read back as the known name it lost its underscores from."""
    return next((k for k in known if k.replace("_", "") == value), value)


def first_match(pattern: str, seen: Iterable[View]) -> tuple[View, re.Match[str]] | None:
    """The first view in which `pattern` occurs, with its match (the unmarked view with the unmarked pattern)."""
    for view in seen:
        m = re.search(unmarked_pattern(pattern) if view.name == "unmarked" else pattern, view.text)
        if m is not None:
            return view, m
    return None
