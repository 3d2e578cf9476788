"""The resume state of a fix: the plan, the snapshot and how far it got, kept across a kernel restart."""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from .._paths import atomic_write
from ..errors import UsageError
from .plan import Change, Plan, Step, StepKind
from .snapshot import Snapshot
from .targets import TargetKind

STATE_VERSION = 1


class Phase(str, Enum):
    """Where an unfinished fix stopped: between its steps, or at a kernel restart (only the verify is left)."""

    STEPS = "steps"
    RESTART = "restart"


@dataclass(frozen=True)
class FixState:
    """Where a fix stands: interrupted at `next_step`, or waiting for the verify after a restart."""

    plan: Plan
    snapshot_folder: str
    next_step: int
    phase: Phase


def _path(work: Path) -> Path:
    return work / "fix-state.json"


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """A plan as plain JSON data (the resolver's raw answers are left out)."""
    data = {k: v for k, v in asdict(plan).items() if k != "resolutions"}
    return data


def plan_from_dict(data: dict[str, Any]) -> Plan:
    """The inverse of plan_to_dict."""
    d = dict(data)
    d["kind"] = TargetKind(d["kind"])
    d["steps"] = tuple(Step(**{**s, "kind": StepKind(s["kind"]), "packages": tuple(s["packages"]),
                               "command": tuple(s["command"])})
                       for s in d["steps"])
    d["changes"] = tuple(Change(**c) for c in d["changes"])
    for key in ("constraints", "problems", "warnings", "protected"):
        d[key] = tuple(d.get(key, ()))
    return Plan(**d)


def save_state(work: Path, plan: Plan, snapshot: Snapshot, *, next_step: int, phase: Phase) -> None:
    """Record progress so that `envdoctor fix --resume` can continue in a new process."""
    data = {"state_version": STATE_VERSION, "plan": plan_to_dict(plan), "snapshot": snapshot.folder,
            "next_step": next_step, "phase": phase.value}
    atomic_write(_path(work), json.dumps(data, indent=1))


def load_state(work: Path) -> FixState | None:
    """The saved state of this environment's last fix, or None when there is nothing to resume."""
    path = _path(work)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("state_version") != STATE_VERSION:
            raise ValueError(f"state_version {data.get('state_version')!r}")
        return FixState(plan_from_dict(data["plan"]), data["snapshot"], int(data["next_step"]),
                        Phase(data["phase"]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"{path}: unreadable fix state ({e}); delete it to start over") from e


def clear_state(work: Path) -> None:
    """Forget the resume state (the fix finished, or was rolled back)."""
    with contextlib.suppress(FileNotFoundError):
        _path(work).unlink()


def load_snapshot(folder: str) -> Snapshot:
    """The snapshot a state points to."""
    path = Path(folder) / "snapshot.json"
    try:
        return Snapshot.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"{path}: unreadable snapshot ({e})") from e
