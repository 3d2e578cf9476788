"""Render a LintResult as text or JSON (strings only; the CLI prints them)."""

from __future__ import annotations

from .._drift.rules import short
from .._lint.engine import LintResult
from . import versioned_json

SCHEMA_VERSION = 1


def render_text(result: LintResult) -> str:
    """One line per issue (file:line:col severity message), then what --fix did, then a summary."""
    lines = [f"{i.where}: {i.severity}: {i.message}" for i in result.issues]
    lines += [f"envdoctor lint: {e}" for e in result.errors]
    if result.fixed or result.unfixed:
        lines.append("")
        lines += [f"fixed    {i.where}: {i.keyword} -> {f'{i.via}={short(i.target)}({i.new}=)' if i.target else i.new}"
                  for i in result.fixed]
        lines += [f"NOT FIXED {i.where}: {i.keyword}: {why}" for i, why in result.unfixed]
    stale = len(result.stale)
    summary = (f"{stale} stale keyword{'s' if stale != 1 else ''} in {result.files} file"
               f"{'s' if result.files != 1 else ''}" if stale else f"no stale keywords in {result.files} file"
               f"{'s' if result.files != 1 else ''}")
    if result.errors:
        summary += f"; {len(result.errors)} could not be read or parsed"
    if result.fixed or result.unfixed:
        summary += f"; fixed {len(result.fixed)}, left {len(result.unfixed)}"
    lines.append(f"{summary} (judged against {result.versions.describe()})")
    lines += [f"note: {n}" for n in result.versions.notes]
    return "\n".join(lines).lstrip("\n") + "\n"


def render_json(result: LintResult) -> str:
    """Stable JSON with a schema version."""
    return versioned_json(SCHEMA_VERSION, {
        "matrix": result.matrix,
        "versions": {k: (str(v) if v else None) for k, v in sorted(result.versions.versions.items())},
        "version_sources": dict(sorted(result.versions.sources.items())),
        "files": result.files,
        "issues": [i.to_dict() for i in result.issues],
        "errors": list(result.errors),
        "fixed": [i.to_dict() for i in result.fixed],
        "unfixed": [{**i.to_dict(), "why": why} for i, why in result.unfixed],
        "changed_files": list(result.changed_files),
        "exit_code": result.exit_code,
    })
