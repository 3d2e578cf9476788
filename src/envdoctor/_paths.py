"""Where envdoctor keeps its caches, certificates and state, and where it finds matrices; overridable for tests and CI.

The rules themselves live in `_fastpath` (stdlib only, for the guard); this module gives them as `Path`s.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import _fastpath


def cache_dir() -> Path:
    """The user's cache directory for envdoctor (ENVDOCTOR_CACHE_DIR overrides it)."""
    return Path(_fastpath.cache_folder())


def user_matrix_dirs() -> list[Path]:
    """Extra folders searched for matrices by name: ENVDOCTOR_MATRIX_PATH (os.pathsep-separated)."""
    return [Path(p) for p in _fastpath.user_matrix_folders()]


def bundled_matrix_dir() -> Path:
    """The matrices shipped inside the wheel."""
    return Path(_fastpath.BUNDLED_MATRICES)


def atomic_write(path: Path, text: str) -> None:
    """Write a file so that a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
