"""Find matrices by reference (name, name@version or path), merge `extends`, and cache the validated result."""

from __future__ import annotations

import re
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


def command_ref(matrix: Matrix) -> str:
    """How a command line names this matrix again: `name@version` when the search path finds this very file under
    that reference, else the file it was loaded from (a path the user gave stays a path; issue 14)."""
    if not matrix.source:
        return matrix.ref
    source = Path(matrix.source)
    for _name, _version, path, _bundled in _fastpath.matrix_files(matrix.name):
        if _name == matrix.name and _version == matrix.version:
            try:
                return matrix.ref if source.samefile(path) else matrix.source
            except OSError:
                return matrix.source
    return matrix.source


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
    # only this name's folders: the warm path resolves each `extends` here, and lists no other matrix
    same = sorted((MatrixEntry(n, v, Path(p), b) for n, v, p, b in _fastpath.matrix_files(name)),
                  key=_sort_key) if name else []
    if not same:
        import difflib  # only on the error path: check's warm path never pays for it

        names = sorted({e.name for e in available()})
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


def _bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise MatrixError(f"{path}: cannot read: {e.strerror or e}") from e


def _read(path: Path) -> tuple[bytes, dict[str, Any]]:
    raw = _bytes(path)
    return raw, _parse(path, raw)


def _parse(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise MatrixError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except tomllib.TOMLDecodeError as e:
        raise MatrixError(f"{path}: malformed TOML: {e}") from e
    except RecursionError as e:  # tomllib recurses per nested inline table or array (issue 15, finding 6)
        raise MatrixError(f"{path}: malformed TOML: tables or arrays nested too deeply") from e
    return data


def parents(data: dict[str, Any], path: Path) -> list[str]:
    """The references a matrix file's `extends` names, in order (a string is a list of one)."""
    parent = data.get("extends")
    if parent is None:
        return []
    if isinstance(parent, str):
        return [parent]
    if isinstance(parent, list) and all(isinstance(p, str) for p in parent):
        return list(parent)
    raise MatrixError(f"{path}: 'extends' must be a matrix reference or a list of them")


_EXTENDS = re.compile(rb"^[ \t]*extends[ \t]*=", re.MULTILINE)


def _chain(path: Path, *, parse: bool = True) -> list[tuple[Path, bytes, dict[str, Any]]]:
    """The file and its `extends` ancestors in merge order: each parent before its children, the parents of a
    list left to right, each file once (where it is first needed), the leaf last; detects cycles.

    With parse=False (the warm path: the cache key needs only the bytes) a file without an `extends` line is
    not parsed and comes with an empty dict; compile_chain needs the parsed chain (parse=True).
    """
    out: dict[Path, tuple[Path, bytes, dict[str, Any]]] = {}

    def visit(current: Path, trail: list[Path]) -> None:
        if current in trail:
            cycle = " -> ".join(str(p) for p in [*trail, current])
            raise MatrixError(f"cyclic 'extends': {cycle}")
        if current in out:
            return
        if parse:
            raw, data = _read(current)
        else:
            raw = _bytes(current)
            data = _parse(current, raw) if _EXTENDS.search(raw) else {}
        for parent in parents(data, current):
            try:
                found = resolve_ref(parent, relative_to=current.parent)
            except MatrixError as e:
                raise MatrixError(f"{current}: extends {parent!r}: {e}") from e
            visit(found, [*trail, current])
        out[current] = (current, raw, data)

    visit(path, [])
    return list(out.values())


def matrix_for_model(model_types: list[str]) -> str | None:
    """The newest current matrix whose own `model_types` names one of these (the first type winning), or None;
    a bundled matrix claims a type before a user's (ENVDOCTOR_MATRIX_PATH), then by name.

    Reads only each name's newest file (a family matrix is small), not its chain, so `check --model` stays fast.
    """
    newest: dict[str, MatrixEntry] = {}
    for entry in available():
        newest[entry.name] = entry  # sorted by version: the last one wins
    claims: dict[str, str] = {}
    for entry in sorted(newest.values(), key=lambda e: (not e.bundled, e.name)):  # a bundled family claims first
        try:
            if b"model_types" not in entry.path.read_bytes():
                continue  # most matrices name no model type: not worth parsing
            _, data = _read(entry.path)
        except (OSError, MatrixError):
            continue  # a broken matrix is reported when it is asked for, not here
        if data.get("status", "current") != "current":
            continue
        for t in data.get("model_types", ()):
            if isinstance(t, str):
                claims.setdefault(t, entry.name)
    return next((claims[t] for t in model_types if t in claims), None)


def load_matrix(ref: str | Path = DEFAULT_MATRIX, *, use_cache: bool = True) -> Matrix:
    """Load a matrix by name, name@version or path, with its `extends` chain merged in."""
    path = resolve_ref(str(ref))
    if use_cache:
        hit = cache.load(_chain(path, parse=False))
        if hit is not None:
            return hit
    from .validate import compile_chain

    chain = _chain(path)
    matrix = compile_chain(chain)
    if use_cache:
        cache.store(chain, matrix)
    return matrix


def matrix_key(name: str) -> str:
    """Canonical form of a package name used as a merge key."""
    return canonicalize_name(name)
