"""When a matrix's Python rule rejects the interpreter: the matrix of the same family, or the Python, that would do."""

from __future__ import annotations

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from .._matrix.model import Matrix
from ..errors import EnvDoctorError


def admits(spec: SpecifierSet, version: Version | str) -> bool:
    """Whether a Python rule's specifier admits this interpreter version (pre-releases included, as check asks)."""
    return spec.contains(version, prereleases=True)


def newer_matrix(matrix: Matrix, python: Version) -> str | None:
    """The newest matrix of the same name, newer than `matrix`, whose Python rule admits `python` (its name@version)."""
    from .._matrix.loader import available, load_matrix

    try:
        own = Version(matrix.version)
    except InvalidVersion:
        return None
    found: list[tuple[Version, str]] = []
    for entry in available():
        try:
            newer = entry.name == matrix.name and Version(entry.version) > own
        except InvalidVersion:
            continue
        if not newer:
            continue
        try:
            other = load_matrix(entry.path)
        except (EnvDoctorError, OSError):  # a broken sibling is that matrix's problem, not this advice's
            continue
        if other.python is None or admits(other.python.specifier, python):
            found.append((Version(entry.version), entry.ref))
    return max(found)[1] if found else None


def newest_python(spec: SpecifierSet) -> str | None:
    """The newest CPython 3.x minor release the specifier admits ('3.12' for '>=3.9,<3.13'), or None."""
    for minor in range(40, 5, -1):
        if any(admits(spec, f"3.{minor}.{micro}") for micro in (0, 99)):
            return f"3.{minor}"
    return None


def alternative(matrix: Matrix, python: Version, *, colab: bool = False) -> str:
    """What to do when `matrix` cannot install on this Python: the newer matrix that admits it, else that Python."""
    rule = matrix.python
    spec = rule.specifier if rule is not None else SpecifierSet()
    newer = newer_matrix(matrix, python)
    if newer is not None:
        return (f"no version of {matrix.ref} can install on Python {python}; {newer} admits it: "
                f"envdoctor fix --matrix {newer}")
    want = newest_python(spec)
    where = f"a Python {want} interpreter" if want else f"a Python that satisfies {spec}"
    runtime = (f" (on Colab: Runtime > Change runtime type, a runtime version with Python {want})"
               if colab and want else "")
    return (f"no version of {matrix.ref} can install on Python {python} (it needs {spec}); "
            f"use {where}{runtime}, or a matrix whose Python rule admits {python}")
