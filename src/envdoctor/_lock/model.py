"""The lock's values: what each installed distribution is locked to, and what could not be locked (a value too)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote

from packaging.version import Version

from .._named import Named


@dataclass(frozen=True)
class Artifact:
    """A file to install: a wheel or an archive, by URL, with its hashes (algorithm -> hex digest)."""

    url: str
    hashes: Mapping[str, str]
    size: int | None = None

    @property
    def filename(self) -> str:
        """The file name the URL ends with."""
        return unquote(self.url.rstrip("/").rsplit("/", 1)[-1].split("#", 1)[0])

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")


@dataclass(frozen=True)
class Directory:
    """A local source tree (PEP 610 dir_info), maybe installed editable."""

    path: str
    editable: bool = False


@dataclass(frozen=True)
class Vcs:
    """A version-control checkout (PEP 610 vcs_info), pinned to its commit."""

    type: str
    url: str
    commit_id: str
    requested_revision: str | None = None


Origin = Literal["index", "installer-record", "local-file"]


@dataclass(frozen=True)
class Locked(Named):
    """One distribution and exactly one source for it; `origin` says where its URL and hashes came from."""

    name: str
    version: Version
    source: Artifact | Directory | Vcs
    origin: Origin = "index"



@dataclass(frozen=True)
class Unlocked:
    """A distribution that is installed but could not be locked, and why (like pip-audit's skipped dependency)."""

    name: str
    version: str
    reason: str


@dataclass(frozen=True)
class CertificateInfo:
    """The valid certificate of the locked environment: its tier, device and GPU."""

    tier: int
    device: str
    gpu: str | None
    created: str


@dataclass(frozen=True)
class Lock:
    """An environment as a lock: its Python and platform, every distribution, the matrix and its certificate."""

    python_version: Version
    markers: Mapping[str, str]
    packages: tuple[Locked, ...]
    unlocked: tuple[Unlocked, ...] = ()
    matrix: str | None = None
    certificate: CertificateInfo | None = None
    skipped: tuple[str, ...] = field(default=())  # installers left out as `pip freeze` does, e.g. 'pip'

    @property
    def unhashable(self) -> tuple[Locked, ...]:
        """Source trees and checkouts: in a pylock, but a hashed requirements file cannot install them."""
        return tuple(p for p in self.packages if not isinstance(p.source, Artifact))

    @property
    def exit_code(self) -> int:
        """0 when every distribution is locked, 1 when some could not be (a finding, not bad input)."""
        return 1 if self.unlocked else 0
