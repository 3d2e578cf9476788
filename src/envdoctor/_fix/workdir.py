"""Where a fix keeps its lock, constraints, snapshot, logs and resume state for one environment."""

from __future__ import annotations

import hashlib
import os
import sys
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


JOURNAL = "fix-state.json"  # the journal of a fix in progress, in the work folder


def prefix_of(executable: str) -> str | None:
    """A venv's prefix from its interpreter's path without running it (pyvenv.cfg beside bin/), else None."""
    root = Path(executable).parent.parent
    return str(root) if (root / "pyvenv.cfg").is_file() else None


def journal_may_exist(executable: str | None = None) -> bool:
    """One stat, stdlib only: False when the environment of `executable` surely has no fix journal (the common
    case, so that `check` imports none of the fix machinery); True when it has one or cannot tell."""
    exe = executable or sys.executable
    # Not realpath: a venv's python is a symlink to the same base interpreter as envdoctor's own.
    prefix = prefix_of(exe) or (sys.prefix if os.path.abspath(exe) == os.path.abspath(sys.executable) else None)
    return prefix is None or (workdir_for(prefix) / JOURNAL).exists()
