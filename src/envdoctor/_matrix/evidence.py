"""The form of a rule's evidence: a line in a published wheel, or a public URL, so that anyone can check it.

A wheel reference names the distribution, its version, the file inside the wheel and a line (or a range):
    transformers==4.43.0:transformers/modeling_rope_utils.py:L351 "\\"llama3\\": _compute_llama3_parameters"
Double-quoted text after it is what those lines contain (`tools/verify_evidence.py` checks it; a `\\"` inside is a
quote); other text after it is a note for the reader. Without a line, the reference is the whole file, and
`!"text"` says what the file does not contain (a keyword that a release removed):
    transformers==5.0.0:transformers/training_args.py !"no_cuda:" removed in 5.0.0
A URL is `https://...`, optionally followed by a note.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WHEEL = re.compile(
    r"^(?P<package>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9.+!_-]+)"
    r":(?P<path>[^\s:]+)(?::L(?P<start>\d+)(?:-L?(?P<end>\d+))?)?(?:\s+(?P<note>.*))?$"
)
_URL = re.compile(r"^(?P<url>https://[^\s\"']+)(?:\s+(?P<note>.*))?$")
_QUOTED = re.compile(r'(!?)"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class WheelLine:
    """Lines `start`..`end` of `path` inside the wheel of `package==version` (0..0: the whole file), what they must
    contain and what the file must not."""

    package: str
    version: str
    path: str
    start: int
    end: int
    contains: tuple[str, ...]
    note: str
    text: str
    absent: tuple[str, ...] = ()

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class PublicUrl:
    """A public page (release notes, an issue thread, a model's config on the Hub)."""

    url: str
    note: str
    text: str


Evidence = WheelLine | PublicUrl


def parse_evidence(text: str) -> Evidence | None:
    """The evidence a string names, or None when it is neither a wheel reference nor a public URL."""
    text = text.strip()
    m = _WHEEL.match(text)
    if m:
        note = m["note"] or ""
        start = int(m["start"]) if m["start"] else 0
        end = int(m["end"]) if m["end"] else start
        hints = [(bang, h.replace('\\"', '"').replace("\\\\", "\\")) for bang, h in _QUOTED.findall(note)]
        return WheelLine(m["package"], m["version"], m["path"], start, max(start, end),
                         tuple(h for bang, h in hints if not bang), note, text, tuple(h for bang, h in hints if bang))
    u = _URL.match(text)
    if u:
        return PublicUrl(u["url"], u["note"] or "", text)
    return None


# What no bundled evidence may cite: documents that are not in the repository.
OUTSIDE = re.compile(r"FACTS\.md|\bseeds?\b|\d{3}_[0-9a-f]{16}\.txt", re.IGNORECASE)
