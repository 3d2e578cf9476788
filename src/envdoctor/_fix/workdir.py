"""Where a fix keeps its lock, constraints, snapshot, logs and resume state for one environment.

`journal_may_exist` is the fence of the fast paths (`check`, `guard()`): it uses `os` and `sys` only (no
pathlib, hashlib or envdoctor modules) unless the environment's prefix is not writable.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

JOURNAL = "fix-state.json"  # the journal of a fix in progress, in the work folder


def _in_prefix(prefix: str) -> bool:
    """Whether the work folder lives in the prefix (same filesystem as site-packages: backups can be hard links)."""
    return bool(prefix) and os.path.isdir(prefix) and os.access(prefix, os.W_OK)


def workdir_for(prefix: str) -> Path:
    """`<prefix>/.envdoctor` when writable (same filesystem as site-packages, so backups can be hard links),
    else a folder in envdoctor's cache keyed by the prefix."""
    from pathlib import Path

    if _in_prefix(prefix):
        return Path(prefix) / ".envdoctor"
    import hashlib

    from .._paths import cache_dir

    digest = hashlib.sha256(os.path.realpath(prefix or "").encode()).hexdigest()[:16]
    return cache_dir() / "fix" / digest


def prefix_of(executable: str) -> str | None:
    """A venv's prefix from its interpreter's path without running it (pyvenv.cfg beside bin/), else None."""
    root = os.path.dirname(os.path.dirname(executable))
    return root if os.path.isfile(os.path.join(root, "pyvenv.cfg")) else None


def journal_may_exist(executable: str | None = None) -> bool:
    """A few stats, stdlib only: False when the environment of `executable` surely has no fix journal (the common
    case, so that `check` and `guard()` import none of the fix machinery); True when it has one or cannot tell."""
    exe = executable or sys.executable
    # Not realpath: a venv's python is a symlink to the same base interpreter as envdoctor's own.
    prefix = prefix_of(exe) or (sys.prefix if os.path.abspath(exe) == os.path.abspath(sys.executable) else None)
    if prefix is None:
        return True
    if _in_prefix(prefix):
        return os.path.exists(os.path.join(prefix, ".envdoctor", JOURNAL))
    return (workdir_for(prefix) / JOURNAL).exists()
