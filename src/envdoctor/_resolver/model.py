"""The resolver's values: what is asked (`Requested`, `Sources`), and what it answers (`Resolution`, `Conflict`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from .._named import Named


@dataclass(frozen=True)
class Requested:
    """One requirement line handed to the resolver, and where it came from (shown in conflicts)."""

    requirement: str
    origin: str = ""
    hashes: tuple[str, ...] = ()  # 'sha256:<hex>' of the artifacts allowed (pip's --hash); any: hash-checking mode

    @property
    def key(self) -> NormalizedName:
        return canonicalize_name(Requirement(self.requirement).name)

    @property
    def hashed(self) -> str:
        """The line as a requirements file holds it, with its `--hash` options."""
        return " ".join([self.requirement, *(f"--hash={h}" for h in self.hashes)])


@dataclass(frozen=True)
class Install(Named):
    """One distribution the resolver would install (or keep, when `already_installed`)."""

    name: str
    version: Version
    url: str | None = None
    requested: bool = False
    requires: tuple[str, ...] = ()
    already_installed: bool = False



class ConflictKind(str, Enum):
    """Why a resolver refused: the set contradicts itself, a name has no such version, or the tool failed."""

    UNSATISFIABLE = "unsatisfiable"
    NOT_FOUND = "not-found"
    FAILED = "failed"


@dataclass(frozen=True)
class Side(Named):
    """One side of a conflict: a requested line (`dependent` None), or a distribution's dependency."""

    name: str  # as the resolver wrote it
    specifier: str  # normalised to packaging's spelling: '<0.21,>=0.20'
    dependent: str | None = None  # 'transformers' in 'transformers 4.46.3 depends on tokenizers<0.21'
    dependent_version: str | None = None  # None: uv's 'all versions of gamma depend on ...'
    line: Requested | None = None  # the requested line of this side's package, with its origin



@dataclass(frozen=True)
class Conflict:
    """Why a set cannot be installed, in the resolver's own words and as typed sides; consumers word it."""

    kind: ConflictKind
    summary: str  # the resolver's refusal in one line, nothing added
    chain: tuple[str, ...] = ()  # the resolver's derivation, line by line
    sides: tuple[Side, ...] = ()
    requested: tuple[Requested, ...] = ()  # the requested lines the refusal names, with their origins
    unreachable: bool = False  # the output says the package index could not be reached
    # Names the refusal says have no usable wheel while building was off (sdists only, or no wheel for the
    # target): the set was not evaluated for them, which is not the same as a conflict.
    unbuilt: tuple[NormalizedName, ...] = ()

    @property
    def packages(self) -> tuple[NormalizedName, ...]:
        return tuple(r.key for r in self.requested)


@dataclass(frozen=True)
class Resolution:
    """What the resolver answered. `ok=False` carries a `conflict`; `raw` is the installer's own output."""

    ok: bool
    backend: str
    installs: tuple[Install, ...] = ()
    removes: tuple[tuple[str, Version], ...] = ()
    conflict: Conflict | None = None
    seconds: float = 0.0
    raw: str = ""
    command: tuple[str, ...] = ()

    def get(self, name: str) -> Install | None:
        """The resolved install of that name (any spelling), or None."""
        key = canonicalize_name(name)
        return next((i for i in self.installs if i.key == key), None)


@dataclass(frozen=True)
class Sources:
    """Where packages come from. Empty means the installer's own configuration (pip.conf, uv.toml)."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    extra_args: tuple[str, ...] = field(default=())
