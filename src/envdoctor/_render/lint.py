"""Render a LintResult as text or JSON (strings only; the CLI prints them)."""

from __future__ import annotations

from .._drift.rules import short
from .._lint.engine import Issue, LintResult
from .._lint.imports import FIX_NOTE, is_import_issue
from . import versioned_json

SCHEMA_VERSION = 1


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _fixed_line(i: Issue) -> str:
    if i.via == FIX_NOTE:
        return f"note     {i.where}: {i.message}"
    new = f"{i.via}={short(i.target)}({i.new}=)" if i.target else i.new
    return f"fixed    {i.where}: {i.keyword} -> {new}" if new else f"fixed    {i.where}: {i.keyword} (removed)"


def render_text(result: LintResult) -> str:
    """One line per issue (file:line:col severity message), then what --fix did, then a summary."""
    lines = [f"{i.where}: {i.severity}: {i.message}" for i in result.issues]
    lines += [f"envdoctor lint: {e}" for e in result.errors]
    if result.fixed or result.unfixed:
        lines.append("")
        lines += [_fixed_line(i) for i in result.fixed]
        lines += [f"NOT FIXED {i.where}: {i.keyword}: {why}" for i, why in result.unfixed]
    stale = [i for i in result.stale if not is_import_issue(i)]
    gone = len(result.stale) - len(stale)
    files = _plural(result.files, "file")
    found = [_plural(len(stale), "stale keyword")] if stale else []
    found += [_plural(gone, "removed import")] if gone else []
    summary = f"{' and '.join(found)} in {files}" if found else f"no stale keywords in {files}"
    if result.errors:
        summary += f"; {len(result.errors)} could not be read or parsed"
    if result.fixed or result.unfixed:
        summary += f"; fixed {sum(i.via != FIX_NOTE for i in result.fixed)}, left {len(result.unfixed)}"
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
