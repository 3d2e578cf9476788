"""Where a fix keeps its lock, constraints, snapshot, logs and resume state for one environment.

`journal_may_exist`, the fence of the fast paths (`check`, `guard()`), lives in `_fastpath` (stdlib only) with
the rule it shares with `workdir_for`: the work folder is in the prefix when the prefix is writable.
"""

from __future__ import annotations

import os

from .._fastpath import workdir_in_prefix

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path


def workdir_for(prefix: str) -> Path:
    """`<prefix>/.envdoctor` when writable (same filesystem as site-packages, so backups can be hard links),
    else a folder in envdoctor's cache keyed by the prefix."""
    from pathlib import Path

    if workdir_in_prefix(prefix):
        return Path(prefix) / ".envdoctor"
    import hashlib

    from .._paths import cache_dir

    digest = hashlib.sha256(os.path.realpath(prefix or "").encode()).hexdigest()[:16]
    return cache_dir() / "fix" / digest
