"""What the pip and uv backends share: the constraints file and running the tool with a time limit."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence

from ..errors import ResolutionError


def constraints_args(tmp: str, constraints: Sequence[str]) -> list[str]:
    """`-c FILE` for the constraint lines (written into `tmp`), or nothing."""
    if not constraints:
        return []
    path = os.path.join(tmp, "constraints.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(constraints) + "\n")
    return ["-c", path]


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
