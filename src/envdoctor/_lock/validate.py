"""Validate a written pylock.toml with packaging's own PEP 751 reader before it reaches the disk."""

from __future__ import annotations

import sys

from ..errors import EnvDoctorError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def validate_pylock(text: str) -> None:
    """Raise EnvDoctorError when `text` is not a valid PEP 751 lock (packaging >= 25.0 has the reader)."""
    try:
        from packaging.pylock import Pylock, PylockValidationError
    except ImportError:  # an older packaging: TOML syntax is all that can be checked
        tomllib.loads(text)
        return
    try:
        Pylock.from_dict(tomllib.loads(text))
    except (PylockValidationError, tomllib.TOMLDecodeError) as e:
        raise EnvDoctorError(f"envdoctor wrote an invalid pylock.toml ({e}); please report it") from e
