"""Turn pip's and uv's refusal texts into one `Conflict` that names both sides and the requirement lines involved."""

from __future__ import annotations

import re
from collections.abc import Sequence

from packaging.utils import NormalizedName, canonicalize_name

from . import Conflict, Requested

# pip: "    transformers 4.46.3 depends on tokenizers<0.21 and >=0.20" / "    The user requested tokenizers==0.21.0"
_PIP_CAUSE = re.compile(r"^\s+(?P<line>(The user requested|\S+ \S+ depends on|The user requested \(constraint\)) .+)$")
_PIP_NOTFOUND = re.compile(
    r"(Could not find a version that satisfies the requirement (?P<req>\S+)(?P<rest>.*)|"
    r"No matching distribution found for (?P<req2>\S+))"
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _names_in(text: str, known: Sequence[Requested]) -> list[NormalizedName]:
    """The requested package names mentioned in `text`, in the order they appear there."""
    keys = {r.key for r in known}
    found: list[NormalizedName] = []
    for m in _NAME.finditer(text):
        key = canonicalize_name(m.group(0))
        if key in keys and key not in found:
            found.append(key)
    return found


def _involved(chain: Sequence[str], requested: Sequence[Requested]) -> tuple[Requested, ...]:
    names = _names_in("\n".join(chain), requested)
    by_key = {r.key: r for r in requested}
    return tuple(by_key[n] for n in names)


def _with_origins(message: str, involved: Sequence[Requested]) -> str:
    lines = [f"  {r.requirement}  ({r.origin})" for r in involved if r.origin]
    if not lines:
        return message
    return message + "\nthe requirement lines involved:\n" + "\n".join(lines)


def from_pip(output: str, requested: Sequence[Requested]) -> Conflict:
    """The conflict in pip's output (ResolutionImpossible, or no matching distribution, or the last ERROR)."""
    lines = output.splitlines()
    chain = tuple(m.group("line").strip() for m in map(_PIP_CAUSE.match, lines) if m)
    if chain:
        head = next((ln[len("ERROR: "):] for ln in lines if ln.startswith("ERROR: Cannot install")), "")
        sides = "; ".join(c.replace("The user requested", "requested") for c in chain)
        message = f"{head.split(' because ')[0] or 'cannot install the set'}: {sides}"
        involved = _involved(chain, requested)
        return Conflict(_with_origins(message, involved), chain, involved, tuple(r.key for r in involved))
    for ln in lines:
        m = _PIP_NOTFOUND.search(ln)
        if m:
            req = m.group("req") or m.group("req2")
            rest = (m.group("rest") or "").strip()
            message = f"no version of {req} can be found" + (f" {rest}" if rest else "")
            involved = _involved([req], requested)
            hint = _unreachable_hint(output)
            return Conflict(_with_origins(message + hint, involved), (ln.strip(),), involved,
                            tuple(r.key for r in involved))
    errors = [ln[len("ERROR: "):] for ln in lines if ln.startswith("ERROR: ")]
    # A failing subprocess (git clone, a source build) says why in its own lines: 'fatal:' or '× …'.
    causes = [ln.strip() for ln in lines if ln.strip().startswith(("fatal:", "×"))]
    errors += list(dict.fromkeys(causes))
    tail = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith(("note:", "│", "╰"))]
    message = " ".join(errors[-2:]) if errors else (tail[-1] if tail else "pip failed without a message")
    involved = _involved(errors, requested)
    return Conflict(_with_origins(message, involved), tuple(errors), involved, tuple(r.key for r in involved))


def from_uv(output: str, requested: Sequence[Requested]) -> Conflict:
    """The conflict in uv's output: the 'Because … we can conclude …' chain after 'No solution found'."""
    lines = [ln.rstrip() for ln in output.splitlines()]
    chain: list[str] = []
    capture = False
    for ln in lines:
        text = ln.strip().lstrip("╰─▶").strip()
        if "No solution found" in ln or ln.lstrip().startswith("cause:"):
            capture = True
            text = text.split("cause:", 1)[1].strip() if "cause:" in text else ""
        elif capture and ln.lstrip().startswith(("hint:", "help:")):
            break
        if capture and text:
            chain.append(text)
    if not chain:
        errors = [ln.strip() for ln in lines if ln.lstrip().startswith(("error:", "×", "Caused by:", "cause:"))]
        chain = errors or [ln.strip() for ln in lines if ln.strip()][-3:]
    message = " ".join(chain) if chain else "uv failed without a message"
    message = re.sub(r"\s+", " ", message) + _unreachable_hint(output)
    involved = _involved(chain, requested)
    return Conflict(_with_origins(message, involved), tuple(chain), involved, tuple(r.key for r in involved))


def _unreachable_hint(output: str) -> str:
    low = output.lower()
    for needle in ("connection refused", "failed to establish", "network is unreachable", "name resolution",
                   "timed out", "failed to fetch", "error sending request"):
        if needle in low:
            return " (the package index could not be reached)"
    return ""
