"""`lint --format sarif`: SARIF 2.1.0 that validates, one result per finding with its rule, place and fix.

The OASIS schema is not vendored (it cannot be fetched offline here and is not ours to copy): SUBSET below is
the part of sarif-schema-2.1.0.json that this output uses, written down from the standard with its required
properties, enums and closed objects (`additionalProperties: false`, as the full schema has them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from envdoctor._cli import main

Lint = Any  # the `lint` fixture of conftest.py


def _closed(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": properties, "required": list(required)}


MESSAGE = _closed({"text": {"type": "string"}, "id": {"type": "string"}}, ("text",))
LEVEL = {"enum": ["none", "note", "warning", "error"]}
BAG = {"type": "object"}
ARTIFACT_LOCATION = _closed({"uri": {"type": "string", "format": "uri-reference"}, "uriBaseId": {"type": "string"},
                             "index": {"type": "integer", "minimum": -1}})
REGION = _closed({"startLine": {"type": "integer", "minimum": 1}, "startColumn": {"type": "integer", "minimum": 1},
                  "endLine": {"type": "integer", "minimum": 1}, "endColumn": {"type": "integer", "minimum": 1}})
LOCATION = _closed({"physicalLocation": _closed({"artifactLocation": ARTIFACT_LOCATION, "region": REGION}),
                    "logicalLocations": {"type": "array", "items": _closed({"name": {"type": "string"},
                                                                            "kind": {"type": "string"}})}})
FIX = _closed({"description": MESSAGE, "artifactChanges": {"type": "array", "minItems": 1, "items": _closed({
    "artifactLocation": ARTIFACT_LOCATION,
    "replacements": {"type": "array", "minItems": 1, "items": _closed({
        "deletedRegion": REGION, "insertedContent": _closed({"text": {"type": "string"}})}, ("deletedRegion",))},
}, ("artifactLocation", "replacements"))}}, ("artifactChanges",))
RESULT = _closed({"ruleId": {"type": "string"}, "ruleIndex": {"type": "integer", "minimum": -1}, "level": LEVEL,
                  "message": MESSAGE, "locations": {"type": "array", "items": LOCATION},
                  "fixes": {"type": "array", "items": FIX}}, ("message",))
DESCRIPTOR = _closed({"id": {"type": "string"}, "name": {"type": "string"}, "shortDescription": MESSAGE,
                      "fullDescription": MESSAGE, "defaultConfiguration": _closed({"level": LEVEL}),
                      "properties": BAG}, ("id",))
RUN = _closed({
    "tool": _closed({"driver": _closed({"name": {"type": "string"}, "version": {"type": "string"},
                                        "semanticVersion": {"type": "string"},
                                        "informationUri": {"type": "string", "format": "uri"},
                                        "rules": {"type": "array", "items": DESCRIPTOR}}, ("name",))}, ("driver",)),
    "invocations": {"type": "array", "items": _closed({
        "executionSuccessful": {"type": "boolean"},
        "toolExecutionNotifications": {"type": "array", "items": _closed({"level": LEVEL, "message": MESSAGE},
                                                                         ("message",))}}, ("executionSuccessful",))},
    "originalUriBaseIds": {"type": "object", "additionalProperties": _closed({"uri": {"type": "string"}})},
    "results": {"type": "array", "items": RESULT},
    "properties": BAG,
}, ("tool",))
SUBSET = _closed({"$schema": {"type": "string", "format": "uri"}, "version": {"enum": ["2.1.0"]},
                  "runs": {"type": "array", "items": RUN}}, ("version", "runs"))


def _sarif(lint: Lint, *paths: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = lint("--format", "sarif", *paths)
    data = json.loads(out)
    jsonschema.validate(data, SUBSET)
    return code, data


def test_every_finding_is_a_result_with_its_rule_and_place(stale_script: Path, lint: Lint,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(stale_script.parent)
    code, data = _sarif(lint, stale_script.name)
    _, out, _ = lint("--format", "json", stale_script.name)
    issues = json.loads(out)["issues"]
    run = data["runs"][0]
    assert code == 1 and len(run["results"]) == len(issues)
    rules = run["tool"]["driver"]["rules"]
    for result, issue in zip(run["results"], issues, strict=True):
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["ruleId"].startswith(f"{issue['status']}/") and result["ruleId"].endswith(f".{issue['keyword']}")
        where = result["locations"][0]["physicalLocation"]
        assert where["artifactLocation"] == {"uri": "train.py", "uriBaseId": "%SRCROOT%"}
        assert where["region"] == {"startLine": issue["line"], "startColumn": issue["col"]}
    assert {r["level"] for r in run["results"]} == {"error", "note"}


def test_a_rename_carries_a_fix_that_edits_the_keyword(stale_script: Path, lint: Lint) -> None:
    _, data = _sarif(lint, str(stale_script))
    lines = stale_script.read_text(encoding="utf-8").splitlines()
    fixed = [r for r in data["runs"][0]["results"] if "fixes" in r]
    assert fixed, "the evaluation_strategy rename has a fix"
    for result in fixed:
        change = result["fixes"][0]["artifactChanges"][0]["replacements"][0]
        region = change["deletedRegion"]
        line = lines[region["startLine"] - 1]
        old = line[region["startColumn"] - 1:region["endColumn"] - 1]
        assert result["ruleId"].endswith(f".{old}") and change["insertedContent"]["text"] != old


def test_a_clean_file_is_an_empty_run(tmp_path: Path, lint: Lint) -> None:
    (tmp_path / "ok.py").write_text("print('nothing to see')\n", encoding="utf-8")
    code, data = _sarif(lint, str(tmp_path / "ok.py"))
    assert code == 0 and data["runs"][0]["results"] == [] and data["version"] == "2.1.0"


def test_an_unparsable_file_is_a_tool_notification(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.py").write_text("def (:\n", encoding="utf-8")
    assert main(["lint", "--format", "sarif", str(tmp_path / "bad.py")]) == 2
    data = json.loads(capsys.readouterr().out)
    jsonschema.validate(data, SUBSET)
    invocation = data["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False and invocation["toolExecutionNotifications"]
