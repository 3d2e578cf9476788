"""One `envdoctor fix` per environment at a time: an exclusive lock that covers the installer it runs.

The lock itself is an flock on `fix.lock`, which the kernel releases when its holder dies (even by SIGKILL).
The installer (pip, uv) runs in its own process group and outlives a killed envdoctor, still writing into
site-packages; so the owner file records the installer's pid and start time, and a lock whose owner is dead
but whose installer still runs is not free.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from .._paths import private_write
from ..errors import LockedError


@dataclass(frozen=True)
class Owner:
    """Who holds (or last held) the lock: the fix's pid and the installer it started (0: none)."""

    pid: int
    installer: int = 0
    installer_start: str = ""


def start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat); '' when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def alive(pid: int, started: str = "") -> bool:
    """Whether `pid` runs and is the same process that was recorded (its start time, against pid reuse)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    state = ""
    with suppress(OSError, IndexError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    if state in ("Z", "X"):
        return False  # a zombie writes nothing
    return not started or start_time(pid) in ("", started)


def read_owner(folder: Path) -> Owner | None:
    """The owner file, validated (it is read back from disk); None when absent or malformed."""
    try:
        data = json.loads((folder / "fix.lock.owner").read_text(encoding="utf-8"))
        pid, installer, started = data["pid"], data.get("installer", 0), data.get("installer_start", "")
        if not (isinstance(pid, int) and isinstance(installer, int) and isinstance(started, str)):
            return None
        return Owner(pid, installer, started)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_owner(folder: Path, installer: int = 0) -> None:
    """Record this process as the owner, with the installer it just started (called by the step runner)."""
    data = {"pid": os.getpid(), "installer": installer, "installer_start": start_time(installer) if installer else ""}
    private_write(folder / "fix.lock.owner", json.dumps(data))  # 0600, a planted link is replaced, never followed


def orphaned_installer(folder: Path) -> int:
    """The pid of an installer a dead fix left running in this environment, or 0."""
    owner = read_owner(folder)
    if owner is None or not owner.installer or alive(owner.pid) and owner.pid != os.getpid():
        return 0
    return owner.installer if alive(owner.installer, owner.installer_start) else 0


@contextmanager
def fix_lock(folder: Path, prefix: str) -> Iterator[Path]:
    """Hold the environment's fix lock, or raise LockedError at once naming who holds it (or its installer)."""
    from filelock import FileLock, Timeout

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fix.lock"
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout as e:
        owner = read_owner(folder)
        who = f"pid {owner.pid}" if owner is not None else "another process"
        raise LockedError(
            f"another envdoctor fix is running on {prefix} ({who}); wait for it to finish "
            f"(lock file {path})"
        ) from e
    try:
        orphan = orphaned_installer(folder)
        if orphan:
            raise LockedError(
                f"an interrupted envdoctor fix left its installer running on {prefix} (pid {orphan}); wait for "
                f"it to end (or stop it: kill -TERM -{orphan}), then run: envdoctor fix --rollback")
        write_owner(folder)
        yield path
    finally:
        with suppress(OSError):
            if (owner := read_owner(folder)) is not None and owner.pid == os.getpid():
                (folder / "fix.lock.owner").unlink()
        lock.release()
