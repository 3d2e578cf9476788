"""The resolver interface: ask a real installer (pip or uv) what a requirement set resolves to, changing nothing.

`resolve()` never raises for an unsatisfiable set: it returns a `Resolution` with `ok=False` and a
`Conflict` naming both sides and the exact requirement lines (with their origin, e.g. a matrix rule or
`requirements.txt:3`). It raises `ResolutionError` only when the installer itself cannot be run.

    >>> res = resolve(["transformers==4.46.3", "tokenizers==0.21.0"], python_version="3.12",
    ...               platform="linux", against_installed=False)
    >>> res.ok, res.conflict.message        # doctest: +SKIP
    (False, 'transformers 4.46.3 depends on tokenizers<0.21,>=0.20, but tokenizers==0.21.0 is requested')
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from ..errors import ResolutionError, UsageError

Backend = Literal["auto", "pip", "uv"]
BACKENDS: tuple[str, ...] = ("auto", "pip", "uv")


@dataclass(frozen=True)
class Requested:
    """One requirement line handed to the resolver, and where it came from (shown in conflicts)."""

    requirement: str
    origin: str = ""

    @property
    def key(self) -> NormalizedName:
        return canonicalize_name(Requirement(self.requirement).name)


@dataclass(frozen=True)
class Install:
    """One distribution the resolver would install (or keep, when `already_installed`)."""

    name: str
    version: Version
    url: str | None = None
    requested: bool = False
    requires: tuple[str, ...] = ()
    already_installed: bool = False

    @property
    def key(self) -> NormalizedName:
        return canonicalize_name(self.name)


@dataclass(frozen=True)
class Conflict:
    """Why a set cannot be installed: one readable message, the resolver's chain, and the lines involved."""

    message: str
    chain: tuple[str, ...] = ()
    requested: tuple[Requested, ...] = ()
    packages: tuple[NormalizedName, ...] = ()


@dataclass(frozen=True)
class Resolution:
    """What the resolver answered. `ok=False` carries a `conflict`; `raw` is the installer's own output."""

    ok: bool
    backend: str
    installs: tuple[Install, ...] = ()
    removes: tuple[tuple[str, Version], ...] = ()
    conflict: Conflict | None = None
    seconds: float = 0.0
    raw: str = ""
    command: tuple[str, ...] = ()

    def get(self, name: str) -> Install | None:
        """The resolved install of that name (any spelling), or None."""
        key = canonicalize_name(name)
        return next((i for i in self.installs if i.key == key), None)


@dataclass(frozen=True)
class Sources:
    """Where packages come from. Empty means the installer's own configuration (pip.conf, uv.toml)."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    extra_args: tuple[str, ...] = field(default=())


def as_requested(requirements: Iterable[str | Requested]) -> tuple[Requested, ...]:
    """Normalise plain strings to `Requested`; a bad line raises UsageError naming it and its origin."""
    out: list[Requested] = []
    for r in requirements:
        req = r if isinstance(r, Requested) else Requested(str(r))
        try:
            Requirement(req.requirement)
        except InvalidRequirement as e:
            where = f" ({req.origin})" if req.origin else ""
            raise UsageError(f"invalid requirement {req.requirement!r}{where}: {e}") from e
        out.append(req)
    return tuple(out)


def find_uv() -> str | None:
    """The uv executable: ENVDOCTOR_UV, the `uv` Python package, next to this interpreter, or on PATH."""
    import shutil
    import sys

    override = os.environ.get("ENVDOCTOR_UV")
    if override:
        return override if os.path.exists(override) else shutil.which(override)
    try:
        import uv  # type: ignore[import-not-found]

        path = uv.find_uv_bin()
        if path and os.path.exists(path):
            return str(path)
    except (ImportError, FileNotFoundError):
        pass
    here = os.path.join(os.path.dirname(sys.executable), "uv")
    if os.path.exists(here):
        return here
    return shutil.which("uv")


def pick_backend(backend: str = "auto") -> str:
    """'pip' or 'uv': auto picks uv when it is available (several times faster), pip otherwise."""
    if backend not in BACKENDS:
        raise UsageError(f"--backend {backend}: choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        return "uv" if find_uv() else "pip"
    if backend == "uv" and not find_uv():
        raise UsageError("--backend uv: uv is not installed (pip install uv, or set ENVDOCTOR_UV)")
    return backend


def resolve(
    requirements: Sequence[str | Requested],
    *,
    python: str | os.PathLike[str] | None = None,
    python_version: str | None = None,
    platform: str | None = None,
    backend: str = "auto",
    against_installed: bool = True,
    sources: Sources | None = None,
    constraints: Sequence[str] = (),
    no_deps: bool = False,
    timeout: float = 600.0,
) -> Resolution:
    """Resolve `requirements` with a real resolver and return what it would install; never installs.

    python: the interpreter whose environment is resolved against (default: this one).
    python_version / platform: resolve for a declared target instead ('3.12', 'linux' | 'macos' |
      'windows' | a pip platform tag like 'manylinux2014_x86_64'); implies against_installed=False.
    against_installed: keep what is installed when it satisfies the set (pip/uv `install --dry-run`);
      False resolves from scratch (pip `--ignore-installed`, uv `pip compile`).
    """
    reqs = as_requested(requirements)
    if python_version is not None or platform is not None:
        against_installed = False
    chosen = pick_backend(backend)
    if chosen == "uv":
        from ._uv import resolve_uv as run
    else:
        from ._pip import resolve_pip as run
    return run(
        reqs, python=None if python is None else os.fspath(python), python_version=python_version,
        platform=platform, against_installed=against_installed, sources=sources or Sources(),
        constraints=tuple(constraints), no_deps=no_deps, timeout=timeout,
    )


__all__ = [
    "BACKENDS",
    "Conflict",
    "Install",
    "Requested",
    "Resolution",
    "ResolutionError",
    "Sources",
    "as_requested",
    "find_uv",
    "pick_backend",
    "resolve",
]
