"""`envdoctor lint` on real-shaped scripts and notebooks (tests/lint/corpus/): recall of the stale keywords written
down beforehand in expected.toml, and no false positive on the look-alikes that are still valid."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from envdoctor._cli import main

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CORPUS = Path(__file__).parent / "corpus"
EXPECTED: dict[str, dict[str, list[str]]] = tomllib.loads((CORPUS / "expected.toml").read_text(encoding="utf-8"))
ITEMS = sorted(p for p in CORPUS.iterdir() if p.suffix in (".py", ".ipynb"))
Key = tuple[str, int | None, int, str]


def _expected() -> set[Key]:
    out: set[Key] = set()
    for name, entry in EXPECTED.items():
        for item in entry["stale"]:
            *where, keyword = item.split(":")
            cell, line = (int(where[0]), int(where[1])) if len(where) == 2 else (None, int(where[0]))
            out.add((name, cell, line, keyword))
    return out


def test_every_item_cites_its_source_and_has_expectations() -> None:
    assert len(ITEMS) >= 20
    assert sorted(EXPECTED) == [p.name for p in ITEMS]
    for path in ITEMS:
        text = path.read_text(encoding="utf-8")
        assert "Source: " in text, f"{path.name} does not cite its public source"


def test_lint_finds_the_expected_stale_keywords_and_nothing_else(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["lint", "--format", "json", str(CORPUS)])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["files"] == len(ITEMS), data.get("errors")
    # removed imports (via == "import") are another rule kind, judged by their own tests
    found: set[Key] = {(Path(i["path"]).name, i["cell"], i["line"], i["keyword"]) for i in data["issues"]
                       if i["severity"] in ("error", "warning") and i["via"] != "import"}
    expected = _expected()
    hits, missed, false = found & expected, sorted(expected - found, key=str), sorted(found - expected, key=str)
    recall = len(hits) / len(expected)
    clean = [n for n, e in EXPECTED.items() if not e["stale"]]
    print(f"\nlint corpus: {len(ITEMS)} files ({len(clean)} with nothing stale), {len(expected)} expected stale "
          f"keywords, found {len(hits)} (recall {recall:.1%}), {len(false)} false positives")
    for m in missed:
        print("  missed:", m)
    for f in false:
        print("  false positive:", f)
    assert false == []
    assert recall >= 0.95, missed
