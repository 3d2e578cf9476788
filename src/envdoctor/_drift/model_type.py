"""Unknown model type errors: find the model type in the text, and judge it against the floors table.

The table is `data/model_types.json`, read through `_check.model.floors` (one loader) and only when a text
names a model type, so `import envdoctor` and `check` never read it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from packaging.version import InvalidVersion, Version

from . import tolerant

if TYPE_CHECKING:  # pragma: no cover
    from .._env.environment import Environment

ID = "unknown-model-type"
_Q = "[`'\"]?"  # backticks and quotes are optional: GitHub markdown eats backticks
_TYPE = r"(?P<type>[A-Za-z0-9][\w.\-]*)"
# 4.37.0 .. today: transformers==4.37.0:transformers/models/auto/configuration_auto.py:L1120 (AutoConfig)
_VALUE = re.compile(rf"has\s+model\s+type\s+{_Q}{_TYPE}{_Q}\s+but\s+Transformers\s+does\s+not\s+recognize", re.I)
# 4.36.x: AutoConfig indexes CONFIG_MAPPING bare, so the traceback ends in `KeyError: 'qwen2'`
# (transformers==4.36.0:transformers/models/auto/configuration_auto.py:L1098 -> L795 `raise KeyError(key)`)
_KEY = re.compile(rf"KeyError:\s*['\"]{_TYPE}['\"]")
_CONTEXT = re.compile(r"CONFIG_?MAPPING|configuration_?auto")  # underscores may be eaten by markdown


@dataclass(frozen=True)
class ModelTypeHit:
    """A model type named by an error text, and the text's span where it was named."""

    name: str
    start: int
    end: int


normalise = tolerant.normalise  # curly quotes as straight ones, same length and offsets


def find(text: str, known: frozenset[str] | None = None) -> list[ModelTypeHit]:
    """Every model type an unknown-model-type error names, once each, in the order they appear.

    A bare `KeyError: 'x'` counts only where the text also shows AutoConfig's lookup (CONFIG_MAPPING,
    configuration_auto) or where `x` is a model type some release registers (`known`).
    """
    text = normalise(text)
    hits = [ModelTypeHit(m["type"], m.start(), m.end()) for m in _VALUE.finditer(text)]
    context = _CONTEXT.search(text) is not None
    for m in _KEY.finditer(text):
        if context or (known is not None and m["type"] in known):
            hits.append(ModelTypeHit(m["type"], m.start(), m.end()))
    seen: set[str] = set()
    out = []
    for h in sorted(hits, key=lambda h: h.start):
        if h.name not in seen:
            seen.add(h.name)
            out.append(h)
    return out


@dataclass(frozen=True)
class Verdict:
    """What the floors table and this environment say about one model type."""

    cause: str
    fix: str
    has_cause: bool | None
    why: str
    reason: str
    evidence: tuple[str, ...]
    facts: dict[str, Any]  # model_type, floor, floor_exact, installed, releases_read (the JSON's "model_type")


def _releases(table: dict[str, Any]) -> str:
    read = table.get("releases_read", [])
    return f"{len(read)} releases, {read[0]} .. {read[-1]}" if read else "no releases"


def judge(name: str, table: dict[str, Any], env: Environment | None) -> Verdict:
    """The cause, fix and whether this environment has it, for a model type transformers did not recognise."""
    entry = table.get("model_types", {}).get(name)
    installed = env.version_of("transformers") if env is not None else None
    facts: dict[str, Any] = {"name": name, "installed": str(installed) if installed is not None else None,
                             "floor": None, "floor_exact": None, "releases_read": _releases(table)}
    reason = "tools/model_support.py reads CONFIG_MAPPING_NAMES of every transformers release it lists"
    if entry is None:
        return Verdict(
            cause=f"no transformers release read ({_releases(table)}) registers model type `{name}`: the model "
                  "ships its own code, it is newer than every release read, or config.json's model_type is wrong",
            fix="check config.json's model_type; if the model ships its own modelling code, load it with "
                "trust_remote_code=True; otherwise `pip install -U transformers` or install it from source",
            has_cause=None, why=f"no release read registers `{name}`, so no installed version fixes it",
            reason=reason, evidence=(), facts=facts)
    first, exact = Version(entry["first"]), bool(entry.get("exact"))
    facts.update(floor=str(first), floor_exact=exact)
    since = (f"it first appears in {first}" if exact
             else f"it is registered in {first}, the oldest release read (it may be older)")
    below = _below(installed, first)
    have = f"transformers {installed}" if below and exact else "the transformers that raised this"
    cause = f"{have} does not know model type `{name}`; {since} (evidence {entry['evidence']})"
    fix = f"pip install -U 'transformers>={first}' (or `envdoctor fix` with a matrix that pins it)"
    evidence = (entry["evidence"],)
    if env is None:
        return Verdict(cause, fix, None, "the environment was not inspected", reason, evidence, facts)
    if installed is None:
        return Verdict(cause, fix, None, "transformers is not installed here, so this environment cannot have "
                       "raised it", reason, evidence, facts)
    if not below:
        return Verdict(cause, fix, False, f"transformers {installed} is installed here and knows `{name}` (since "
                       f"{first}): the error came from another environment (kernel, venv, old copy)",
                       reason, evidence, facts)
    if not exact:
        return Verdict(cause, fix, None, f"transformers {installed} is installed here, older than {first}, the "
                       f"oldest release read: whether it knows `{name}` is not known", reason, evidence, facts)
    return Verdict(cause, fix, True, f"transformers {installed} is installed here, below {first}: this "
                   "environment raises it", reason, evidence, facts)


def _below(installed: Version | None, first: Version) -> bool:
    if installed is None:
        return False
    try:
        return Version(str(installed)) < first
    except InvalidVersion:
        return True


def may_name(text: str) -> bool:
    """A cheap test that the text could name a model type, before the floors table is read."""
    return "KeyError" in text or re.search(r"does\s+not\s+recognize", text) is not None
