"""docs/contributing-matrices.md describes every field of the format: its reference is the generated one."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("schema_doc", ROOT / "tools" / "schema_doc.py")
assert _spec is not None and _spec.loader is not None
schema_doc = importlib.util.module_from_spec(_spec)
sys.modules["schema_doc"] = schema_doc
_spec.loader.exec_module(schema_doc)


def test_the_guide_holds_the_generated_field_reference() -> None:
    text = (ROOT / "docs" / "contributing-matrices.md").read_text(encoding="utf-8")
    assert schema_doc.reference() in text, "run: python tools/schema_doc.py --write"


def test_every_property_is_a_row_with_a_meaning() -> None:
    from envdoctor._matrix.schema import json_schema

    schema = json_schema()
    tables = [schema, *schema["$defs"].values()]
    rows = [line for line in schema_doc.reference().splitlines() if line.startswith("| `")]
    assert len(rows) == sum(len(t["properties"]) for t in tables)
    meanings = [re.split(r"(?<!\\)\|", line)[-2].strip() for line in rows]
    assert all(meanings), "a field without a description"
