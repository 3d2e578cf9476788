"""The resolver backend interface: one class per installer (`_pip.PipBackend`, `_uv.UvBackend`), chosen once.

A backend answers a `Query` without installing anything, and spells the install and uninstall commands a
fix runs, with the subprocess environment those commands need. A new installer is one more module with a
class that has these four members, and one more entry in `select_backend`.
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from ..errors import UsageError
from .model import Requested, Resolution, Sources

BackendName = Literal["pip", "uv"]
BACKENDS: tuple[str, ...] = ("auto", "pip", "uv")


@dataclass(frozen=True)
class Query:
    """One resolution to run: the lines, the environment or declared target, and the sources."""

    requested: tuple[Requested, ...]
    python: str | None = None  # the interpreter whose environment is resolved against (None: this one)
    python_version: str | None = None
    platform: str | None = None
    against_installed: bool = True
    sources: Sources = Sources()
    constraints: tuple[str, ...] = ()
    no_deps: bool = False
    timeout: float = 600.0
    # Wheels only: a preview of sources the user has not trusted never runs a build backend (issue 15).
    only_binary: bool = False

    @property
    def require_hashes(self) -> bool:
        """pip's hash-checking mode: one hashed line makes every line need a hash (as in a requirements file)."""
        return any(r.hashes for r in self.requested)


class Backend(Protocol):
    """What fix and validate need from an installer."""

    @property
    def name(self) -> BackendName: ...

    def resolve(self, query: Query) -> Resolution:
        """What the installer would install for `query`; a refusal is `ok=False`, a tool that cannot run raises."""
        ...

    def install_command(self, python: str, specs: Sequence[str], *, sources: Sources, index_url: str | None = None,
                        no_deps: bool = False, constraints: str | None = None,
                        hashed: str | None = None) -> tuple[str, ...]:
        """One install step: exact pins, an optional index for this group only, --no-deps, a constraints file.

        hashed: a requirements file holding `specs` with their `--hash` options (`hashed_requirements`); the
        step then reads it with --require-hashes instead of taking the specs as arguments.
        """
        ...

    def uninstall_command(self, python: str, names: Sequence[str]) -> tuple[str, ...]:
        """One removal step."""
        ...

    def environment(self) -> dict[str, str]:
        """The environment for this installer's subprocesses (no prompts, no colour, no progress bars)."""
        ...


def select_backend(name: str = "auto") -> Backend:
    """The backend for `--backend NAME`: auto picks uv when it is available (several times faster), else pip."""
    from ._pip import PipBackend
    from ._uv import UvBackend, find_uv

    if name not in BACKENDS:
        raise UsageError(f"--backend {name}: choose one of {', '.join(BACKENDS)}")
    if name == "pip":
        return PipBackend()
    uv = find_uv()
    if uv is not None and _runs(uv):
        return UvBackend(uv)
    if name == "uv":
        raise UsageError("--backend uv: uv is not installed (pip install uv, or set ENVDOCTOR_UV)")
    return PipBackend()


@functools.lru_cache(maxsize=8)
def _runs(uv: str) -> bool:
    """uv is there and starts (a wheel for another platform, a noexec mount or a broken file does not): else the
    auto backend falls back to pip instead of failing every resolution."""
    try:
        return subprocess.run([uv, "--version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def backend_environment(name: str) -> dict[str, str]:
    """The subprocess environment of the installer a plan names (a plan records its backend by name)."""
    from ._pip import pip_env
    from ._uv import uv_env

    return uv_env() if name == "uv" else pip_env()
