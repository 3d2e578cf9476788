"""Render a LintResult as SARIF 2.1.0 for GitHub code scanning: one result per finding, its rule, place and fix."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .._drift.rules import short
from .._lint.engine import Issue, LintResult
from .._version import __version__

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def rule_id(issue: Issue) -> str:
    """One rule per stale keyword and kind: 'removed/TrainingArguments.evaluation_strategy'."""
    return f"{issue.status}/{short(issue.callable)}.{issue.keyword}"


def _uri(path: str, root: Path) -> str:
    """The file relative to the checkout (%SRCROOT%), as code scanning maps results onto the repository."""
    p = Path(path).resolve()
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return p.as_uri()


def _fix(issue: Issue, uri: str) -> list[dict[str, object]]:
    """A plain rename in a script is a SARIF fix; a move into SFTConfig or a notebook cell is left to --fix."""
    if not issue.new or issue.target or issue.cell is not None:
        return []
    start = issue.col + 1
    return [{"description": {"text": f"rename {issue.keyword}= to {issue.new}= (envdoctor lint --fix)"},
             "artifactChanges": [{"artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"},
                                  "replacements": [{"deletedRegion": {"startLine": issue.line, "startColumn": start,
                                                                      "endColumn": start + len(issue.keyword)},
                                                    "insertedContent": {"text": issue.new}}]}]}]


def render_sarif(result: LintResult, root: str | os.PathLike[str] = ".") -> str:
    """SARIF 2.1.0 JSON (stable keys): rules with their reasons, results with location and fix, unreadable files as
    tool notifications."""
    base = Path(root).resolve()
    rules: dict[str, dict[str, object]] = {}
    results = []
    for issue in result.issues:
        rid = rule_id(issue)
        if rid not in rules:
            rules[rid] = {"id": rid, "name": f"{short(issue.callable)}.{issue.keyword}",
                          "shortDescription": {"text": f"{short(issue.callable)}({issue.keyword}=): {issue.status.replace('_', ' ')}"},
                          "fullDescription": {"text": issue.reason or issue.message},
                          "defaultConfiguration": {"level": LEVELS[issue.severity]},
                          "properties": {"callable": issue.callable, "status": issue.status}}
        uri = _uri(issue.path, base)
        region: dict[str, object] = {"startLine": issue.line, "startColumn": issue.col + 1}
        location: dict[str, object] = {"physicalLocation": {"artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"},
                                                            "region": region}}
        if issue.cell is not None:  # a notebook: the line counts within the cell
            location["logicalLocations"] = [{"name": f"cell {issue.cell}", "kind": "notebook cell"}]
        entry: dict[str, object] = {"ruleId": rid, "ruleIndex": list(rules).index(rid), "level": LEVELS[issue.severity],
                                    "message": {"text": issue.message}, "locations": [location]}
        fixes = _fix(issue, uri)
        if fixes:
            entry["fixes"] = fixes
        results.append(entry)
    notes = [{"level": "error", "message": {"text": e}} for e in result.errors]
    run = {"tool": {"driver": {"name": "envdoctor", "version": __version__, "semanticVersion": __version__,
                               "informationUri": "https://github.com/envdoctor/envdoctor",
                               "rules": list(rules.values())}},
           "invocations": [{"executionSuccessful": not result.errors, "toolExecutionNotifications": notes}],
           "originalUriBaseIds": {"%SRCROOT%": {"uri": base.as_uri() + "/"}},
           "results": results,
           "properties": {"matrix": result.matrix, "judgedAgainst": result.versions.describe()}}
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2, sort_keys=True) + "\n"
