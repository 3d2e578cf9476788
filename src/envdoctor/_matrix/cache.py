"""The compiled-matrix cache: one entry per extends chain, read on the warm path without pydantic."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .._paths import atomic_write, cache_dir
from .._version import __version__
from ..errors import MatrixError
from .model import Matrix
from .record import shape

Chain = list[tuple[Path, bytes, dict[str, Any]]]


def cache_key(chain: Chain) -> str:
    """The compiled matrix's cache key: the files' paths and bytes, the package version and the compiled format
    (FORMAT_VERSION and every matrix class's fields), so that an upgrade or a code change never loads a stale entry."""
    digest = hashlib.sha256(f"{__version__}\0{shape()}\0".encode())
    for p, raw, _ in chain:
        digest.update(str(p).encode() + b"\0" + raw + b"\0")
    return digest.hexdigest()[:32]


def _entry(chain: Chain) -> Path:
    return cache_dir() / "matrices" / f"{cache_key(chain)}.json"


def load(chain: Chain) -> Matrix | None:
    """The cached compiled matrix of `chain`, or None when there is none that loads."""
    try:
        return Matrix.from_dict(json.loads(_entry(chain).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError, MatrixError):
        return None  # a missing or unreadable cache entry is rebuilt by the caller


def store(chain: Chain, matrix: Matrix) -> None:
    """Keep the compiled `matrix` of `chain`; a cache that cannot be written only costs speed."""
    try:
        atomic_write(_entry(chain), json.dumps(matrix.to_dict()))
    except OSError:
        pass
