"""Read pip's and uv's refusal texts into one typed `Conflict`: the resolver's words, both sides, the lines involved.

Nothing is added to the resolver's words here; the consumers (fix's plan, `matrix validate`) word the sides
and the origins of the lines for their readers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from .model import Conflict, ConflictKind, Requested, Side

# pip: "    transformers 4.46.3 depends on tokenizers<0.21 and >=0.20" / "    The user requested tokenizers==0.21.0"
_PIP_CAUSE = re.compile(r"^\s+(?P<line>(The user requested|\S+ \S+ depends on|The user requested \(constraint\)) .+)$")
_PIP_NOTFOUND = re.compile(
    r"(Could not find a version that satisfies the requirement (?P<req>\S+)(?P<rest>.*)|"
    r"No matching distribution found for (?P<req2>\S+))"
)
_PIP_PREPARING = re.compile(r"^\s*(?:Collecting|Processing) (\S+)")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# pip's hash-checking refusals: "THESE PACKAGES DO NOT MATCH THE HASHES ..." then "    beta==1.0 from file:///...
# (from -r req.txt (line 2)):", "Expected sha256 ...", "Got ..."; or "Hashes are required in --require-hashes
# mode, but they are missing from some requirements" then "    alpha==1.0 --hash=sha256:..."
_PIP_HASH_HEADS = ("DO NOT MATCH THE HASHES", "Hashes are required in --require-hashes mode",
                   "all requirements must have their versions pinned")
_PIP_HASH_ITEM = re.compile(r"^\s+(?P<req>[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?(==|===)?\S*)( from | --hash=|$)")
_SPEC = r"(?P<spec>(?:\s*(?:and\s+|,\s*)?[<>=!~]=?[^\s,]+)+)"
_PKG = r"(?P<b>[A-Za-z0-9][A-Za-z0-9._-]*?)"
# "transformers==4.46.3 depends on tokenizers>=0.20,<0.21" (uv), "all versions of gamma depend on beta==1.0"
# (uv 0.5+), "transformers 4.46.3 depends on tokenizers<0.21 and >=0.20" (pip)
_DEPENDS = re.compile(r"(?<!\S)(?:all versions of )?(?P<a>[A-Za-z0-9][A-Za-z0-9._-]*?)(?:==| )?(?P<av>[0-9][^\s,]*?)?"
                      r" depends? on " + _PKG + _SPEC)
# "you require tokenizers==0.21.0" (uv; not "we can conclude that you require ...", which is derived),
# "The user requested tokenizers==0.21.0" / "The user requested (constraint) x==1" (pip)
_REQUIRES = re.compile(r"(?:(?<!conclude that )you require |The user requested (?:\(constraint\) )?)" + _PKG + _SPEC)
# uv with --no-build / --only-binary: "Because all versions of pathtools have no usable wheels", "deepspeed==0.8.0
# has no usable wheels", and the hint "Wheels are required for `pathtools` because building from source is disabled"
_NO_WHEEL = re.compile(r"(?:all versions of )?`?(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*?)`?(?:(?:==|<=|>=|!=|~=|<|>)[^\s,]+)?"
                       r" ha(?:s|ve) no usable wheels")
_WHEELS_REQUIRED = re.compile(r"Wheels are required for `(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)` because building")
_UNREACHABLE = ("connection refused", "failed to establish", "network is unreachable", "name resolution",
                "timed out", "failed to fetch", "error sending request")


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


def _specifier(text: str) -> str | None:
    """'<0.21 and >=0.20' or '>=0.20,<0.21.' (end of a sentence) in packaging's spelling, '<0.21,>=0.20'."""
    raw = re.sub(r"\s*(and\s+|,\s*)", ",", text.strip()).strip(",").rstrip(".")
    try:
        return str(SpecifierSet(raw))
    except InvalidSpecifier:
        return None


def sides_of(chain: Sequence[str], requested: Sequence[Requested]) -> tuple[Side, ...]:
    """The sides a refusal names: each dependency ('A v depends on B spec') and each requested line ('you require')."""
    text = re.sub(r"\s+", " ", " ".join(chain))
    by_key = {r.key: r for r in requested}
    found: list[tuple[int, Side]] = []
    for m in _DEPENDS.finditer(text):
        spec = _specifier(m.group("spec"))
        if spec is not None:
            side = Side(m.group("b"), spec, m.group("a"), m.group("av"), by_key.get(canonicalize_name(m.group("b"))))
            found.append((m.start(), side))
    for m in _REQUIRES.finditer(text):
        spec = _specifier(m.group("spec"))
        if spec is not None:
            found.append((m.start(), Side(m.group("b"), spec, line=by_key.get(canonicalize_name(m.group("b"))))))
    return tuple(dict.fromkeys(side for _, side in sorted(found, key=lambda f: f[0])))


def _conflict(kind: ConflictKind, summary: str, chain: Sequence[str], requested: Sequence[Requested],
              output: str, named_in: Sequence[str] | None = None,
              unbuilt: Sequence[NormalizedName] = ()) -> Conflict:
    return Conflict(kind, summary, tuple(chain), sides_of(chain, requested),
                    _involved(chain if named_in is None else named_in, requested), unreachable(output), tuple(unbuilt))


def uv_unbuilt(output: str) -> tuple[NormalizedName, ...]:
    """The names uv's refusal says have no usable wheels (building disabled), in the order it names them."""
    text = re.sub(r"\s+", " ", output)
    found = [canonicalize_name(m.group("name")) for rx in (_NO_WHEEL, _WHEELS_REQUIRED) for m in rx.finditer(text)]
    return tuple(dict.fromkeys(found))


def from_pip(output: str, requested: Sequence[Requested]) -> Conflict:
    """The conflict in pip's output (ResolutionImpossible, or no matching distribution, or the last ERROR)."""
    lines = output.splitlines()
    chain = tuple(m.group("line").strip() for m in map(_PIP_CAUSE.match, lines) if m)
    if chain:
        head = next((ln[len("ERROR: "):] for ln in lines if ln.startswith("ERROR: Cannot install")), "")
        said = "; ".join(c.replace("The user requested", "requested") for c in chain)
        summary = f"{head.split(' because ')[0] or 'cannot install the set'}: {said}"
        return _conflict(ConflictKind.UNSATISFIABLE, summary, chain, requested, output)
    hashes = _pip_hash_refusal(lines)
    if hashes is not None:
        summary, items = hashes
        return _conflict(ConflictKind.FAILED, summary, items, requested, output)
    for ln in lines:
        m = _PIP_NOTFOUND.search(ln)
        if m:
            req = m.group("req") or m.group("req2")
            rest = (m.group("rest") or "").strip()
            summary = f"no version of {req} can be found" + (f" {rest}" if rest else "")
            return _conflict(ConflictKind.NOT_FOUND, summary, (ln.strip(),), requested, output, [req])
    errors = [ln[len("ERROR: "):] for ln in lines if ln.startswith("ERROR: ")]
    # A failing subprocess (git clone, a source build) says why in its own lines: 'fatal:' or '× …'.
    causes = [ln.strip() for ln in lines if ln.strip().startswith(("fatal:", "×"))]
    errors += list(dict.fromkeys(causes))
    tail = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith(("note:", "│", "╰"))]
    summary = " ".join(errors[-2:]) if errors else (tail[-1] if tail else "pip failed without a message")
    # a failed build's own lines do not name the package ("× Getting requirements to build wheel did not run
    # successfully."); pip's last "Collecting x" / "Processing ./x-1.0.tar.gz" before them does
    preparing = [m.group(1) for m in map(_PIP_PREPARING.match, lines) if m]
    if causes and preparing:
        summary += f" (while preparing {preparing[-1]})"
    return _conflict(ConflictKind.FAILED, summary, errors, requested, output)


def pip_not_found(output: str) -> str | None:
    """The requirement of pip's 'Could not find a version that satisfies the requirement X' (direct or not)."""
    for ln in output.splitlines():
        m = _PIP_NOTFOUND.search(ln)
        if m:
            return m.group("req") or m.group("req2")
    return None


def _pip_hash_refusal(lines: Sequence[str]) -> tuple[str, tuple[str, ...]] | None:
    """pip's hash-checking refusal: its first sentence and the requirements it lists, or None."""
    for i, ln in enumerate(lines):
        if ln.startswith("ERROR: ") and any(h in ln for h in _PIP_HASH_HEADS):
            items = []
            for item in lines[i + 1:]:
                if not item.startswith(" "):
                    break
                m = _PIP_HASH_ITEM.match(item)
                if m and not item.strip().startswith(("Expected", "Got")):
                    items.append(m.group("req"))
            head = ln[len("ERROR: "):].split(". ")[0].rstrip(".")
            return f"{head}: {', '.join(items)}" if items else head, tuple(items)
    return None


def from_uv(output: str, requested: Sequence[Requested]) -> Conflict:
    """The conflict in uv's output: the 'Because … we can conclude …' chain after 'No solution found'."""
    lines = [ln.rstrip() for ln in output.splitlines()]
    chain: list[str] = []
    capture = False
    # uv words a failed build with 'cause:' lines too ("error: Failed to build `x==1.0`" / "cause: The build
    # backend returned an error"): only a resolver's refusal, "No solution found", is a chain of reasons
    refused = "No solution found" in output
    for ln in lines:
        text = ln.strip().lstrip("╰─▶").strip()
        if "No solution found" in ln or (refused and ln.lstrip().startswith("cause:")):
            capture = True
            text = text.split("cause:", 1)[1].strip() if "cause:" in text else ""
        elif capture and ln.lstrip().startswith(("hint:", "help:")):
            break
        if capture and text:
            chain.append(text)
    kind = ConflictKind.UNSATISFIABLE
    if not chain:
        kind = ConflictKind.FAILED
        errors = [ln.strip() for ln in lines if ln.lstrip().startswith(("error:", "×", "Caused by:", "cause:"))]
        chain = errors or [ln.strip() for ln in lines if ln.strip()][-3:]
    elif "there is no version of" in " ".join(chain) or "not found in the" in " ".join(chain):
        kind = ConflictKind.NOT_FOUND
    summary = re.sub(r"\s+", " ", " ".join(chain)) if chain else "uv failed without a message"
    return _conflict(kind, summary, chain, requested, output, unbuilt=uv_unbuilt(output))


def unreachable(output: str) -> bool:
    """Whether the installer's output says the package index could not be reached."""
    low = output.lower()
    return any(needle in low for needle in _UNREACHABLE)
