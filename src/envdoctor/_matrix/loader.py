"""Find matrices by reference (name, name@version or path), merge `extends`, and cache the validated result."""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from .. import _fastpath
from ..errors import MatrixError
from . import cache
from .model import Matrix

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_MATRIX = "llama31"


@dataclass(frozen=True)
class MatrixEntry:
    """A matrix file found on the search path, known by its name and version before it is parsed."""

    name: str
    version: str
    path: Path
    bundled: bool

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


def _sort_key(entry: MatrixEntry) -> tuple[str, Version]:
    try:
        return entry.name, Version(entry.version)
    except InvalidVersion:
        return entry.name, Version("0")


def available() -> list[MatrixEntry]:
    """Every matrix on the search path (bundled, then ENVDOCTOR_MATRIX_PATH), sorted by name and version."""
    return sorted((MatrixEntry(n, v, Path(p), b) for n, v, p, b in _fastpath.matrix_files()), key=_sort_key)


def resolve_ref(ref: str, relative_to: Path | None = None) -> Path:
    """The file a matrix reference names; raises MatrixError listing what is available."""
    if _fastpath.looks_like_path(ref):
        path = Path(ref).expanduser()
        if relative_to is not None and not path.is_absolute():
            path = relative_to / path
        if not path.is_file():
            shown = ref if relative_to is None else str(path)
            raise MatrixError(f"matrix file not found: {shown}")
        return path.resolve()
    name, _, version = ref.partition("@")
    entries = available()
    same = [e for e in entries if e.name == name]
    if not same:
        names = sorted({e.name for e in entries})
        hint = difflib.get_close_matches(name, names, n=1)
        did = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise MatrixError(f"unknown matrix {name!r}{did}; available: {', '.join(names)}")
    if not version:
        return same[-1].path
    for e in same:
        if e.version == version:
            return e.path
    versions = ", ".join(e.version for e in same)
    raise MatrixError(f"matrix {name!r} has no version {version!r}; available: {versions}")


def _read(path: Path) -> tuple[bytes, dict[str, Any]]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise MatrixError(f"{path}: cannot read: {e.strerror or e}") from e
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise MatrixError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except tomllib.TOMLDecodeError as e:
        raise MatrixError(f"{path}: malformed TOML: {e}") from e
    except RecursionError as e:  # tomllib recurses per nested inline table or array (issue 15, finding 6)
        raise MatrixError(f"{path}: malformed TOML: tables or arrays nested too deeply") from e
    return raw, data


def _chain(path: Path) -> list[tuple[Path, bytes, dict[str, Any]]]:
    """The file and its `extends` ancestors, root ancestor first; detects cycles."""
    chain: list[tuple[Path, bytes, dict[str, Any]]] = []
    seen: list[Path] = []
    current: Path | None = path
    while current is not None:
        if current in seen:
            cycle = " -> ".join(str(p) for p in [*seen, current])
            raise MatrixError(f"cyclic 'extends': {cycle}")
        seen.append(current)
        raw, data = _read(current)
        chain.append((current, raw, data))
        parent = data.get("extends")
        if parent is None:
            current = None
        elif not isinstance(parent, str):
            raise MatrixError(f"{current}: 'extends' must be a matrix reference string")
        else:
            try:
                current = resolve_ref(parent, relative_to=current.parent)
            except MatrixError as e:
                raise MatrixError(f"{current}: extends {parent!r}: {e}") from e
    return list(reversed(chain))


def load_matrix(ref: str | Path = DEFAULT_MATRIX, *, use_cache: bool = True) -> Matrix:
    """Load a matrix by name, name@version or path, with its `extends` chain merged in."""
    path = resolve_ref(str(ref))
    chain = _chain(path)
    if use_cache:
        hit = cache.load(chain)
        if hit is not None:
            return hit
    from .validate import compile_chain

    matrix = compile_chain(chain)
    if use_cache:
        cache.store(chain, matrix)
    return matrix


def matrix_key(name: str) -> str:
    """Canonical form of a package name used as a merge key."""
    return canonicalize_name(name)
