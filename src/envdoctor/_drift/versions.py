"""The package versions a lint or shim judges against: the installed ones, or the ones a matrix pins."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from .._matrix.model import Matrix


@dataclass(frozen=True)
class Versions:
    """Package -> version used for judging, and where each came from ('installed', 'matrix NAME@V')."""

    versions: dict[str, Version | None]
    sources: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        """'transformers 5.1.0 (installed), trl 0.12.2 (matrix m@1)'."""
        parts = [f"{k} {v} ({self.sources.get(k, 'installed')})" for k, v in sorted(self.versions.items()) if v]
        return ", ".join(parts) or "no package versions known"


def installed(names: Iterable[str]) -> dict[str, Version | None]:
    """Installed versions through importlib.metadata, without importing the packages."""
    out: dict[str, Version | None] = {}
    for name in names:
        key = canonicalize_name(name)
        try:
            out[key] = Version(metadata.version(key))
        except (metadata.PackageNotFoundError, InvalidVersion):
            out[key] = None
    return out


def for_matrix(matrix: Matrix, names: Iterable[str], *, use_pins: bool) -> Versions:
    """Installed versions, or with use_pins the matrix's pinned versions (installed when it pins nothing usable)."""
    names = {canonicalize_name(n) for n in names}
    have = installed(names)
    if not use_pins:
        return Versions(have, {k: "installed" for k in have})
    versions: dict[str, Version | None] = {}
    sources: dict[str, str] = {}
    notes: list[str] = []
    for name in sorted(names):
        rule = matrix.package(name)
        pinned = _pinned(rule.specifier) if rule is not None else None
        if pinned is not None:
            versions[name], sources[name] = pinned, f"matrix {matrix.ref}"
        elif rule is not None and rule.specifier and (v := have[name]) is not None \
                and not rule.specifier.contains(v, prereleases=True):
            versions[name], sources[name] = None, f"matrix {matrix.ref}"
            notes.append(f"{name}: the matrix allows {rule.specifier} and pins no single version, and the "
                         f"installed {have[name]} is outside it; its keywords are not judged")
        else:
            versions[name], sources[name] = have[name], "installed"
    return Versions(versions, sources, tuple(notes))


def _pinned(spec: SpecifierSet) -> Version | None:
    for s in spec:
        if s.operator in ("==", "===") and "*" not in s.version:
            try:
                return Version(s.version)
            except InvalidVersion:
                return None
    return None
