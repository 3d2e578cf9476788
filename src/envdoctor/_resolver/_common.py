"""What the pip and uv backends share: the constraints and hashed requirement files, running the tool with a limit."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from ..errors import ResolutionError
from .model import Requested


def constraints_args(tmp: str, constraints: Sequence[str]) -> list[str]:
    """`-c FILE` for the constraint lines (written into `tmp`), or nothing."""
    if not constraints:
        return []
    path = os.path.join(tmp, "constraints.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(constraints) + "\n")
    return ["-c", path]


def requested_args(tmp: str, requested: Sequence[Requested]) -> list[str]:
    """The requirement lines as arguments; with hashes, a `-r` file of them and --require-hashes (pip and uv)."""
    if not any(r.hashes for r in requested):
        return [r.requirement for r in requested]
    path = os.path.join(tmp, "hashed-requirements.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(r.hashed + "\n" for r in requested))
    return ["--require-hashes", "-r", path]


def hashed_requirements(specs: Sequence[str], hashes: Mapping[NormalizedName, Sequence[str]]) -> str:
    """The text of a requirements file for one install step: each spec with the hashes of its name."""
    lines = []
    for spec in specs:
        key = canonicalize_name(Requirement(spec).name)
        lines.append(" ".join([spec, *(f"--hash={h}" for h in hashes.get(key, ()))]))
    return "\n".join(lines) + "\n"


def run_tool(tool: str, cmd: list[str], *, timeout: float, env: dict[str, str],
             stdin: str | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the resolver; a time-out or a tool that cannot start is a ResolutionError naming it."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        raise ResolutionError(f"{tool} did not finish resolving within {timeout:.0f} s") from e
    except OSError as e:
        raise ResolutionError(f"cannot run {tool} ({cmd[0]}): {e.strerror or e}") from e
    return proc, time.perf_counter() - start
