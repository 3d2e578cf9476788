"""The resolver: ask a real installer (pip or uv) what a requirement set resolves to, changing nothing.

`resolve()` never raises for an unsatisfiable set: it returns a `Resolution` with `ok=False` and a typed
`Conflict` (the resolver's words, both sides, and the requested lines involved with their origin, e.g. a
matrix rule or `requirements.txt:3`). It raises `ResolutionError` only when the installer itself cannot run.
A backend is chosen once (`select_backend`) and used for resolving and for the fix's commands.

    >>> res = resolve(["transformers==4.46.3", "tokenizers==0.21.0"], python_version="3.12",
    ...               platform="linux", against_installed=False)
    >>> res.ok, [(s.name, s.specifier, s.dependent) for s in res.conflict.sides]   # doctest: +SKIP
    (False, [('tokenizers', '<0.21,>=0.20', 'transformers'), ('tokenizers', '==0.21.0', None)])
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from packaging.requirements import InvalidRequirement, Requirement

from ..errors import ResolutionError, UsageError
from ._common import hashed_requirements
from ._uv import find_uv
from .backend import BACKENDS, Backend, BackendName, Query, backend_environment, select_backend
from .model import Conflict, ConflictKind, Install, Requested, Resolution, Side, Sources


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


def resolve(
    requirements: Sequence[str | Requested],
    *,
    python: str | os.PathLike[str] | None = None,
    python_version: str | None = None,
    platform: str | None = None,
    backend: str | Backend = "auto",
    against_installed: bool = True,
    sources: Sources | None = None,
    constraints: Sequence[str] = (),
    no_deps: bool = False,
    timeout: float = 600.0,
    only_binary: bool = False,
) -> Resolution:
    """Resolve `requirements` with a real resolver and return what it would install; never installs.

    python: the interpreter whose environment is resolved against (default: this one).
    python_version / platform: resolve for a declared target instead ('3.12', 'linux' | 'macos' |
      'windows' | a pip platform tag like 'manylinux2014_x86_64'); implies against_installed=False.
    backend: 'auto' | 'pip' | 'uv', or a backend already chosen with `select_backend`.
    against_installed: keep what is installed when it satisfies the set (pip/uv `install --dry-run`);
      False resolves from scratch (pip `--ignore-installed`, uv `pip compile`).
    only_binary: wheels only, never a build backend (pip --only-binary :all:, uv --no-build); a preview of
      sources the user has not trusted resolves this way.
    A line with `hashes` switches on hash-checking mode (--require-hashes) for the whole set.
    """
    reqs = as_requested(requirements)
    if python_version is not None or platform is not None:
        against_installed = False
    chosen = select_backend(backend) if isinstance(backend, str) else backend
    return chosen.resolve(Query(
        reqs, python=None if python is None else os.fspath(python), python_version=python_version,
        platform=platform, against_installed=against_installed, sources=sources or Sources(),
        constraints=tuple(constraints), no_deps=no_deps, timeout=timeout, only_binary=only_binary,
    ))


__all__ = [
    "BACKENDS",
    "Backend",
    "BackendName",
    "Conflict",
    "ConflictKind",
    "Install",
    "Query",
    "Requested",
    "Resolution",
    "ResolutionError",
    "Side",
    "Sources",
    "as_requested",
    "backend_environment",
    "find_uv",
    "hashed_requirements",
    "resolve",
    "select_backend",
]
