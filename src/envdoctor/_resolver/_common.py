"""What the pip and uv backends share: the constraints and hashed requirement files, running the tool with a limit."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from .._status import Resolving, resolving, run_with_status
from ..errors import ResolutionError
from .model import Requested, Sources

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from .backend import Query


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


def index_args(sources: Sources) -> list[str]:
    """The source options pip and uv spell alike: --no-index, --index-url, --extra-index-url, --find-links."""
    args: list[str] = []
    if sources.no_index:
        args.append("--no-index")
    if sources.index_url:
        args += ["--index-url", sources.index_url]
    for url in sources.extra_index_urls:
        args += ["--extra-index-url", url]
    for link in sources.find_links:
        args += ["--find-links", link]
    return args


def install_args(cmd: list[str], specs: Sequence[str], *, no_deps: bool, constraints: str | None,
                 hashed: str | None) -> tuple[str, ...]:
    """An install command's shared tail (pip and uv): --no-deps, `-c FILE`, then the pins or a hashed `-r` file."""
    if no_deps:
        cmd = [*cmd, "--no-deps"]
    if constraints:
        cmd = [*cmd, "-c", constraints]
    return tuple(cmd + (["--require-hashes", "-r", hashed] if hashed else list(specs)))


def hashed_requirements(specs: Sequence[str], hashes: Mapping[NormalizedName, Sequence[str]]) -> str:
    """The text of a requirements file for one install step: each spec with the hashes of its name."""
    lines = []
    for spec in specs:
        key = canonicalize_name(Requirement(spec).name)
        lines.append(" ".join([spec, *(f"--hash={h}" for h in hashes.get(key, ()))]))
    return "\n".join(lines) + "\n"


def query_status(tool: str, query: Query) -> Resolving:
    """What the live status says about a resolution: its lines, and the Python and platform it is for."""
    python = query.python_version or (f"at {query.python}" if query.python else None)
    return resolving(tool, [r.requirement for r in query.requested], python, query.platform)


def run_tool(tool: str, cmd: list[str], *, timeout: float, env: dict[str, str],
             stdin: str | None = None, status: Resolving | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the resolver; a time-out or a tool that cannot start is a ResolutionError naming it. With `status`, the
    current reporter (envdoctor._status; silent unless the CLI installed one) hears it start, tick and end."""
    start = time.perf_counter()

    def call() -> subprocess.CompletedProcess[str]:
        return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout, env=env)

    try:
        proc = call() if status is None else run_with_status(status, call, ok=lambda p: p.returncode == 0)
    except subprocess.TimeoutExpired as e:
        raise ResolutionError(f"{tool} did not finish resolving within {timeout:.0f} s") from e
    except OSError as e:
        raise ResolutionError(f"cannot run {tool} ({cmd[0]}): {e.strerror or e}") from e
    return proc, time.perf_counter() - start
