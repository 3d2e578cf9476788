"""Where envdoctor keeps its caches, certificates and state; overridable for tests and CI."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The user's cache directory for envdoctor (ENVDOCTOR_CACHE_DIR overrides it)."""
    override = os.environ.get("ENVDOCTOR_CACHE_DIR")
    if override:
        return Path(override)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("envdoctor", appauthor=False))


def user_matrix_dirs() -> list[Path]:
    """Extra folders searched for matrices by name: ENVDOCTOR_MATRIX_PATH (os.pathsep-separated)."""
    raw = os.environ.get("ENVDOCTOR_MATRIX_PATH", "")
    return [Path(p) for p in raw.split(os.pathsep) if p]


def bundled_matrix_dir() -> Path:
    """The matrices shipped inside the wheel."""
    return Path(__file__).resolve().parent / "matrices"


def atomic_write(path: Path, text: str) -> None:
    """Write a file so that a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
