"""What a symptom's judge sees and says: the environment's own cause of an error, beyond the symptom's data.

A symptom's pattern, cause and fix are data (`[[symptoms]]`); for a few symptoms the cause depends on facts the
data cannot hold (which CUDA libraries the installed bitsandbytes ships, which torch a flash-attn wheel was built
for, which pair a pip refusal names). Their judges (`bnb`, `flash`, `conflict`, `removed_import`) read those
facts from the installed metadata and the GPU probe, never by importing torch or bitsandbytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .._env.environment import Environment
    from .._matrix.model import Matrix, SymptomRule

NOT_INSPECTED = "the environment was not inspected"


@dataclass(frozen=True)
class Context:
    """One recognised symptom: its rule, the named groups of its match, the whole text, and this environment."""

    rule: SymptomRule
    groups: Mapping[str, str]
    text: str
    matrix: Matrix
    env: Environment | None


@dataclass(frozen=True)
class Judgement:
    """Whether this environment has the cause and why; a cause or fix that replaces the symptom's own words."""

    has_cause: bool | None
    why: str
    cause: str | None = None
    fix: str | None = None
    evidence: tuple[str, ...] = ()  # the evidence behind this cause (e.g. the import rule's), instead of the symptom's
    facts: dict[str, Any] = field(default_factory=dict)  # the JSON's "facts"


Judge = Callable[[Context], "Judgement | None"]  # None: nothing to add to the symptom's data
