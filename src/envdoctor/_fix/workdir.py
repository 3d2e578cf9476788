"""Where a fix keeps its lock, constraints, snapshot, logs and resume state for one environment."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .._paths import cache_dir


def workdir_for(prefix: str) -> Path:
    """`<prefix>/.envdoctor` when writable (same filesystem as site-packages, so backups can be hard links),
    else a folder in envdoctor's cache keyed by the prefix."""
    base = Path(prefix) if prefix else None
    if base is not None and base.is_dir() and os.access(base, os.W_OK):
        return base / ".envdoctor"
    digest = hashlib.sha256(os.path.realpath(prefix or "").encode()).hexdigest()[:16]
    return cache_dir() / "fix" / digest
