"""One `envdoctor fix` per environment at a time: an exclusive lock file in the environment's work folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from ..errors import LockedError


@contextmanager
def fix_lock(folder: Path, prefix: str) -> Iterator[Path]:
    """Hold the environment's fix lock, or raise LockedError at once naming who holds it."""
    from filelock import FileLock, Timeout

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fix.lock"
    owner = folder / "fix.lock.owner"
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout as e:
        who = owner.read_text(encoding="utf-8").strip() if owner.exists() else "another process"
        raise LockedError(
            f"another envdoctor fix is running on {prefix} ({who}); wait for it to finish "
            f"(lock file {path})"
        ) from e
    try:
        owner.write_text(f"pid {os.getpid()}", encoding="utf-8")
        yield path
    finally:
        with suppress(OSError):
            owner.unlink()
        lock.release()
