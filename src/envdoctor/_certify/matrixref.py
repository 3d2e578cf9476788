"""Matrix references resolved to files without importing the loader (which costs ~50 ms): the guard's fast path.

The rules are those of `_matrix.loader.resolve_ref` (tests compare the two); whatever this cannot decide
cheaply goes to the loader, which also words the errors.
"""

from __future__ import annotations

import os

from ._record import sha256

_HERE = os.path.dirname(os.path.realpath(__file__))
BUNDLED_MATRICES = os.path.join(os.path.dirname(_HERE), "matrices")


def _looks_like_path(ref: str) -> bool:  # the same rule as _matrix.loader._looks_like_path
    return ref.endswith(".toml") or "/" in ref or "\\" in ref or ref.startswith(".")


def _search_dirs() -> list[str]:
    raw = os.environ.get("ENVDOCTOR_MATRIX_PATH", "")
    return [BUNDLED_MATRICES] + [p for p in raw.split(os.pathsep) if p]


def _release(version: str) -> tuple[int, ...] | None:
    parts = version.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else None


def resolve_light(ref: str) -> str | None:
    """The matrix file a reference names, as _matrix.loader.resolve_ref finds it, or None when that needs the slow path.

    None means: not found, or versions that are not plain release numbers; the caller then asks the loader,
    which also gives the error message.
    """
    if _looks_like_path(ref):
        path = os.path.realpath(os.path.expanduser(ref))
        return path if os.path.isfile(path) else None
    name, _, version = ref.partition("@")
    found: dict[str, str] = {}
    for d in _search_dirs():
        folder = os.path.join(d, name)
        try:
            files = os.listdir(folder)
        except OSError:
            continue
        for f in files:
            if f.endswith(".toml"):
                found.setdefault(f[:-5], os.path.join(folder, f))  # the first on the search path wins
    if version:
        return found.get(version)
    keyed = [(_release(v), p) for v, p in found.items()]
    if not keyed or any(k is None for k, _ in keyed):
        return None
    return max(keyed, key=lambda kp: kp[0] or ())[1]


def resolve(ref: str) -> str:
    """The matrix file of a reference; falls back to the loader (which raises MatrixError) when needed."""
    light = resolve_light(ref)
    if light is not None:
        return light
    from .._matrix.loader import resolve_ref

    return str(resolve_ref(ref))


def file_sha256(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return sha256(f.read()).hexdigest()
    except OSError:
        return None
