"""The fix journal: the plan, the snapshot and how far a fix got, written before the first change.

The journal is what lets a fix survive its own death. It is written (atomically) before the snapshot is
taken, moved on before every step, the verify and a rollback, and removed when the fix ends. A journal that
is still there when no fix holds the lock is an interrupted fix: `check` and `fix` report it, `fix
--rollback` restores the snapshot, `fix --resume` continues. A journal is data read back from disk, so it
is validated here and its commands are re-derived from the plan (`derive.py`), never executed as written.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass, fields
from enum import Enum
from pathlib import Path
from typing import Any

from .._fastpath import FIX_JOURNAL
from .._paths import private_write
from .._resolver import Sources
from ..errors import UsageError
from .plan import Change, Plan, Step, StepKind
from .snapshot import Snapshot
from .targets import TargetKind

STATE_VERSION = 2


class Phase(str, Enum):
    """Where a fix stands. Only RESTART is a finished fix (the steps ran; the verify waits for a new kernel)."""

    SNAPSHOT = "snapshot"  # taking the snapshot: nothing has been changed yet
    STEPS = "steps"  # running step `next_step`: the environment may be half-changed
    VERIFY = "verify"  # every step ran; checking the target
    ROLLBACK = "rollback"  # restoring the snapshot
    RESTART = "restart"  # done; the kernel is being restarted, `fix --resume` verifies afterwards

    @property
    def half_changed(self) -> bool:
        """Whether a fix stopped here may have left the environment neither before nor after."""
        return self in (Phase.STEPS, Phase.VERIFY, Phase.ROLLBACK)


@dataclass(frozen=True)
class FixState:
    """One journal: the plan, its snapshot folder, the step it was at, the phase, and the fix's process."""

    plan: Plan
    snapshot_folder: str
    next_step: int
    phase: Phase
    pid: int = 0
    updated: float = 0.0


def journal_path(work: Path) -> Path:
    """The journal file of an environment's work folder."""
    return work / FIX_JOURNAL


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """A plan as plain JSON data (the resolver's raw answers are left out)."""
    return {k: v for k, v in asdict(plan).items() if k != "resolutions"}


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} is not a list of strings")
    return tuple(value)


def _text(value: Any, what: str, optional: bool = False) -> Any:
    if (value is None and optional) or isinstance(value, str):
        return value
    raise ValueError(f"{what} is not a string")


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{what} is not true or false")
    return value


def _sources(d: Any) -> Sources:
    if not isinstance(d, dict) or set(d) - {"index_url", "extra_index_urls", "find_links", "no_index", "extra_args"}:
        raise ValueError("sources: unexpected keys")
    if d.get("extra_args"):
        raise ValueError("sources: extra installer arguments are never read back from a journal")
    return Sources(_text(d.get("index_url"), "sources.index_url", True),
                   _strings(d.get("extra_index_urls", []), "sources.extra_index_urls"),
                   _strings(d.get("find_links", []), "sources.find_links"), _flag(d.get("no_index", False), "no_index"))


def _field(value: Any, kind: str, what: str) -> Any:
    """One field of a read-back dataclass, checked against its annotation (the few kinds a Step has)."""
    if kind == "StepKind":
        return StepKind(value)
    if kind == "tuple[str, ...]":
        return _strings(value, what)
    if kind == "bool":
        return _flag(value, what)
    if kind in ("str", "str | None"):
        return _text(value, what, optional=kind != "str")
    raise ValueError(f"{what}: a field of kind {kind} is not read back")


def _step(s: Any) -> Step:
    kinds = {f.name: str(f.type) for f in fields(Step)}
    if not isinstance(s, dict) or set(s) - set(kinds):
        raise ValueError(f"a step has unexpected keys {sorted(set(s) - set(kinds)) if isinstance(s, dict) else s!r}")
    return Step(**{k: _field(v, kinds[k], f"step {k}") for k, v in s.items()})


def plan_from_dict(data: Any) -> Plan:
    """The inverse of plan_to_dict, checking every field's type (a journal may have been edited by hand)."""
    if not isinstance(data, dict):
        raise ValueError("the plan is not a table")
    d = dict(data)
    changes = d.get("changes", [])
    if not isinstance(changes, list) or not all(isinstance(c, dict) and set(c) == {"name", "before", "after"}
                                                for c in changes):
        raise ValueError("plan changes are malformed")
    steps = d.get("steps", [])
    if not isinstance(steps, list):
        raise ValueError("plan steps are not a list")
    seconds = d.get("seconds", 0.0)
    if not isinstance(seconds, (int, float)):
        raise ValueError("plan seconds is not a number")
    return Plan(
        target=_text(d["target"], "target"), kind=TargetKind(d["kind"]), python=_text(d["python"], "python"),
        prefix=_text(d["prefix"], "prefix"), backend=_text(d["backend"], "backend"),
        steps=tuple(_step(s) for s in steps),
        changes=tuple(Change(_text(c["name"], "change name"), _text(c["before"], "before", True),
                             _text(c["after"], "after", True)) for c in changes),
        constraints=_strings(d.get("constraints", []), "constraints"),
        constraints_file=_text(d.get("constraints_file", ""), "constraints_file"),
        problems=_strings(d.get("problems", []), "problems"), warnings=_strings(d.get("warnings", []), "warnings"),
        protected=_strings(d.get("protected", []), "protected"), seconds=float(seconds),
        source=_text(d.get("source", ""), "source"), sources=_sources(d.get("sources", {})),
        disk_bytes=int(d.get("disk_bytes", 0)),
    )


def save_state(work: Path, plan: Plan, snapshot: Snapshot | str, *, next_step: int, phase: Phase) -> None:
    """Write the journal (atomically: a reader sees the old record or the new one, never half of one)."""
    folder = snapshot if isinstance(snapshot, str) else snapshot.folder
    data = {"state_version": STATE_VERSION, "plan": plan_to_dict(plan), "snapshot": folder,
            "next_step": next_step, "phase": phase.value, "pid": os.getpid(), "updated": time.time()}
    private_write(journal_path(work), json.dumps(data, indent=1))  # 0600, a planted link is replaced, never followed


def load_state(work: Path) -> FixState | None:
    """The journal of this environment's last unfinished fix, or None; a malformed one is a UsageError."""
    path = journal_path(work)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("state_version") != STATE_VERSION:
            raise ValueError(f"state_version {data.get('state_version') if isinstance(data, dict) else None!r}")
        step, pid = data["next_step"], data.get("pid", 0)
        if not isinstance(step, int) or not isinstance(pid, int) or isinstance(step, bool):
            raise ValueError("next_step and pid must be integers")
        return FixState(plan_from_dict(data["plan"]), _text(data["snapshot"], "snapshot"), step,
                        Phase(data["phase"]), pid, float(data.get("updated", 0.0)))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"{path}: unreadable fix journal ({e}); envdoctor runs nothing from it. If no fix is "
                         f"running, move it away and check the environment with: envdoctor check") from e


def clear_state(work: Path) -> None:
    """Forget the journal (the fix finished, or was rolled back)."""
    with contextlib.suppress(FileNotFoundError):
        journal_path(work).unlink()


def load_snapshot(folder: str) -> Snapshot:
    """The snapshot a journal points to (validated against the environment by `derive.checked_snapshot`)."""
    path = Path(folder) / "snapshot.json"
    try:
        return Snapshot.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise UsageError(f"{path}: unreadable snapshot ({e})") from e
