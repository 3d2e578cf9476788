"""Render an Explanation as text or JSON (strings only; the CLI prints them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import versioned_json

if TYPE_CHECKING:  # pragma: no cover
    from .._drift.explain import Explanation

SCHEMA_VERSION = 1
_HAS = {True: "yes", False: "no", None: "cannot tell"}


def render_text(explanation: Explanation) -> str:
    """A short block per recognised symptom: cause, fix, exact edit, and whether this environment has the cause."""
    if not explanation.recognised:
        return ("envdoctor: no known symptom in this text. `envdoctor check` inspects the environment; "
                "`envdoctor lint FILE.py` finds stale keywords.\n")
    lines = []
    for d in explanation.diagnoses:
        lines += [
            f"envdoctor explain [{d.id}]",
            f"  error:     {d.matched}",
            f"  cause:     {d.cause}",
            f"  fix:       {d.fix}",
        ]
        if d.edit:
            lines.append(f"  edit:      {d.edit}")
        if d.model_type is not None:
            lines.append(f"  model:     {_model_line(d.model_type)}")
        lines.append(f"  here?      {_HAS[d.has_cause]}: {d.why}")
        if d.evidence:
            lines.append(f"  evidence:  {'; '.join(d.evidence)}")
        lines.append("")
    return "\n".join(lines)


def _model_line(facts: dict[str, Any]) -> str:
    floor = facts.get("floor")
    need = (f"needs transformers>={floor}" + ("" if facts.get("floor_exact") else " (a lower bound)")
            if floor else f"registered by no release read ({facts.get('releases_read')})")
    installed = facts.get("installed")
    return f"{facts.get('name')} {need}; installed: {f'transformers {installed}' if installed else 'not known'}"


def render_json(explanation: Explanation) -> str:
    """Stable JSON: schema_version, matrix, recognised, diagnoses, skipped (unsafe patterns not run)."""
    return versioned_json(SCHEMA_VERSION, {
        "matrix": explanation.matrix,
        "recognised": explanation.recognised,
        "diagnoses": [d.to_dict() for d in explanation.diagnoses],
        "skipped": list(explanation.skipped),
    })
