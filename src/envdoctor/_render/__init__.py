"""Renderers: one per format, each takes a result and returns a str; only the CLI prints."""

from __future__ import annotations

import json
from typing import Any


def versioned_json(schema_version: int, data: dict[str, Any], *, indent: int | None = 2) -> str:
    """A JSON report with its schema version, keys sorted, one trailing newline (indent=None: one line)."""
    return json.dumps({"schema_version": schema_version, **data}, indent=indent, sort_keys=True) + "\n"
