"""The Pythons and platforms `matrix validate` resolves for: read from a matrix's rules, from this machine, or
from `--python-version` / `--platform`."""

from __future__ import annotations

import re
import sys

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from ..errors import UsageError
from .model import Matrix
from .validation import PLATFORM_MARKERS, PLATFORMS, PYTHONS


def target_pythons(spec: SpecifierSet | None) -> list[str]:
    """The lowest and highest CPython minor versions a Python rule allows (both ends catch different breakage)."""
    allowed = [v for v in PYTHONS if spec is None or spec.contains(Version(f"{v}.0"), prereleases=True)
               or spec.contains(Version(f"{v}.99"), prereleases=True)]
    if not allowed:
        return []
    return sorted({allowed[0], allowed[-1]}, key=lambda v: Version(v))


def target_platform(matrix: Matrix | None) -> str:
    """The first of linux, windows, macos that every platform rule of the matrix allows."""
    rules = matrix.platform if matrix is not None else ()
    for name, values in PLATFORM_MARKERS.items():
        if all(r.marker.evaluate(dict(values)) for r in rules):
            return name
    return "linux"


def running_platform() -> str | None:
    """This machine as one of PLATFORMS ('linux' for Linux on x86_64), or None for one envdoctor has no name for."""
    import platform as _platform

    machine = _platform.machine().lower()
    arm = machine in ("arm64", "aarch64")
    if sys.platform.startswith("linux"):
        return "linux-aarch64" if arm else "linux" if machine in ("x86_64", "amd64") else None
    if sys.platform == "darwin":
        return "macos" if arm else "macos-x86_64"
    if sys.platform == "win32" and machine in ("amd64", "x86_64"):
        return "windows"
    return None


def parse_platform(value: str) -> str:
    """'linux' from --platform; raises UsageError naming the choices (and the likely one) on anything else."""
    import difflib

    name = value.strip().lower()
    if name in PLATFORMS:
        return name
    hint = difflib.get_close_matches(name, PLATFORMS, n=1)
    did = f" (did you mean {hint[0]!r}?)" if hint else ""
    raise UsageError(f"--platform {value!r}: not a platform envdoctor resolves for{did}; use one of {', '.join(PLATFORMS)}")


def parse_python_version(value: str) -> str:
    """'3.12' from --python-version; raises UsageError on anything else."""
    if not re.fullmatch(r"3\.\d{1,2}", value.strip()):
        raise UsageError(f"--python-version {value!r}: give a CPython minor version such as 3.12")
    return value.strip()
