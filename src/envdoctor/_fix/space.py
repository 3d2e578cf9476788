"""Disk space: what a plan will download and unpack, refused up front when the disk cannot hold it.

Sizes come from what is known without a download: a wheel that the resolver found on disk (a
--find-links folder, a file:// index), else the installed size of the version being replaced (from its
RECORD), as a new version of a package is about as large as the old one. Unknown sizes count as 0, so
the estimate is a floor; a full disk midway is still caught (ENOSPC) and rolled back.
"""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.utils import NormalizedName

from .._env.environment import Environment
from .._lock.records import file_path
from .._resolver import Install
from ..errors import FixError

MARGIN = 64 * 2**20  # logs, the journal, pip's own temporary files
UNPACK_FACTOR = 3  # an unpacked wheel is about three times its compressed size (torch: 0.9 GB -> 2.6 GB)


def _installed_size(env: Environment, key: str) -> int:
    dist = env.get(key)
    if dist is None or not dist.path.endswith(".dist-info"):
        return 0
    try:
        rows = csv.reader((Path(dist.path) / "RECORD").read_text(encoding="utf-8").splitlines())
        return sum(int(r[2]) for r in rows if len(r) >= 3 and r[2].isdigit())
    except OSError:
        return 0


def _file_size(url: str | None) -> int:
    local = file_path(url) if url else None
    if local is None:
        return 0
    try:
        return os.path.getsize(local)
    except OSError:
        return 0


def estimate(env: Environment, installs: Mapping[NormalizedName, Install], changed: Iterable[str]) -> int:
    """Bytes the changed installs need while the fix runs: the download plus the unpacked files."""
    total = 0
    for key in changed:
        inst = installs.get(key)  # type: ignore[call-overload]
        if inst is None:
            continue
        wheel = _file_size(inst.url)
        total += wheel * (1 + UNPACK_FACTOR) if wheel else _installed_size(env, key) * 4 // 3
    return total


def free_bytes(path: str) -> int:
    """Free bytes on the filesystem that holds `path` (or its nearest existing parent)."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def _mb(n: int) -> str:
    return f"{n / 2**20:.0f} MB"


def refuse_if_no_space(plan_prefix: str, needed: int) -> None:
    """FixError (nothing changed) when the environment's disk cannot hold what the plan needs."""
    free = free_bytes(plan_prefix)
    if needed and free < needed + MARGIN:
        raise FixError(f"disk full: the plan needs about {_mb(needed + MARGIN)} on {plan_prefix} and {_mb(free)} "
                       f"are free; free some space (pip cache purge, old checkpoints); nothing was changed")


def disk_full(where: str) -> str:
    """A full disk midway, in one line."""
    try:
        free = f"{_mb(free_bytes(where))} free"
    except OSError:
        free = "no space left"
    return f"disk full ({free} on {where})"
