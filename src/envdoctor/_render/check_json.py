"""The check report as JSON: a schema version, stable keys, a `findings` list, nothing else."""

from __future__ import annotations

import json

from .._check.findings import Report


def render(report: Report) -> str:
    """The report as JSON, keys sorted so that two runs compare line by line."""
    return json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n"
