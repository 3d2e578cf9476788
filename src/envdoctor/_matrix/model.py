"""The compiled matrix: frozen dataclasses built from a validated file, cheap to load without pydantic."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, ClassVar

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

# Field names whose values are packaging objects in memory and strings on disk.
_SPEC_FIELDS = {"specifier"}
_REQ_FIELDS = {"requires", "with_"}
_VERSION_FIELDS = {"added", "deprecated", "removed"}
_MARKER_FIELDS = {"marker"}


class _Record:
    """Mixin: build from a plain dict (the cache or pydantic's dump) and turn back into one."""

    _nested: ClassVar[dict[str, Any]] = {}  # field name -> the _Record class of its entries

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        kwargs: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            key = "with" if f.name == "with_" and "with" in data else f.name
            if key not in data:
                continue
            value = data[key]
            sub = cls._nested.get(f.name)
            if sub is not None:
                value = (
                    tuple(sub.from_dict(v) for v in value) if isinstance(value, list | tuple)
                    else (None if value is None else sub.from_dict(value))
                )
            elif value is None:
                pass
            elif f.name in _SPEC_FIELDS:
                value = SpecifierSet(value)
            elif f.name in _REQ_FIELDS:
                value = Requirement(value)
            elif f.name in _VERSION_FIELDS:
                value = Version(value)
            elif f.name in _MARKER_FIELDS:
                value = Marker(value)
            elif isinstance(value, list):
                value = tuple(value)
            kwargs[f.name] = value
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            out[f.name] = _plain(getattr(self, f.name))
        return out


def _plain(value: Any) -> Any:
    if is_dataclass(value) and isinstance(value, _Record):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, SpecifierSet | Requirement | Version | Marker):
        return str(value)
    return value


@dataclass(frozen=True)
class PythonRule(_Record):
    specifier: SpecifierSet
    reason: str
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlatformRule(_Record):
    marker: Marker
    reason: str
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class InstallGroup(_Record):
    name: str
    order: int
    index_url: str | None = None
    description: str = ""


@dataclass(frozen=True)
class PackageRule(_Record):
    name: str
    reason: str
    specifier: SpecifierSet = field(default_factory=SpecifierSet)
    evidence: tuple[str, ...] = ()
    group: str | None = None
    index_url: str | None = None
    local: str | None = None
    no_deps: bool = False
    source: str | None = None
    optional: bool = False
    protected: bool = False

    @property
    def key(self) -> NormalizedName:
        return canonicalize_name(self.name)

    @property
    def requirement(self) -> str:
        """The requirement string an installer gets, e.g. 'transformers==4.46.3'."""
        return f"{self.name}{self.specifier}" if self.source is None else f"{self.name} @ {self.source}"


@dataclass(frozen=True)
class NamedRule(_Record):
    name: str
    reason: str
    evidence: tuple[str, ...] = ()

    @property
    def key(self) -> NormalizedName:
        return canonicalize_name(self.name)


@dataclass(frozen=True)
class KnownBadRule(_Record):
    name: str
    specifier: SpecifierSet
    reason: str
    evidence: tuple[str, ...] = ()
    with_: Requirement | None = None

    @property
    def key(self) -> NormalizedName:
        return canonicalize_name(self.name)


@dataclass(frozen=True)
class CudaRule(_Record):
    reason: str
    evidence: tuple[str, ...] = ()
    required: bool = True
    packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Bf16Rule(_Record):
    reason: str
    evidence: tuple[str, ...] = ()
    min_compute_capability: float = 8.0
    fallback: str = "fp16"


@dataclass(frozen=True)
class MpsRule(_Record):
    reason: str
    evidence: tuple[str, ...] = ()
    supported: bool = False


@dataclass(frozen=True)
class WorkloadRule(_Record):
    name: str
    min_vram_gib: float
    reason: str
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class DriverRule(_Record):
    reason: str
    evidence: tuple[str, ...] = ()
    check: bool = True


@dataclass(frozen=True)
class GpuRules(_Record):
    cuda: CudaRule | None = None
    bf16: Bf16Rule | None = None
    mps: MpsRule | None = None
    driver: DriverRule | None = None
    workloads: tuple[WorkloadRule, ...] = ()
    _nested: ClassVar[dict[str, Any]] = {
        "cuda": CudaRule, "bf16": Bf16Rule, "mps": MpsRule, "driver": DriverRule, "workloads": WorkloadRule,
    }


@dataclass(frozen=True)
class RenameRule(_Record):
    package: str
    callable: str
    old: str
    reason: str
    evidence: tuple[str, ...] = ()
    new: str | None = None
    kind: str = "rename"
    target: str | None = None
    via: str | None = None
    reversible: bool = True
    added: Version | None = None
    deprecated: Version | None = None
    removed: Version | None = None
    old_default: str | None = None
    new_default: str | None = None


@dataclass(frozen=True)
class SymptomRule(_Record):
    id: str
    pattern: str
    cause: str
    fix: str
    reason: str
    evidence: tuple[str, ...] = ()
    requires: Requirement | None = None
    gpu: str | None = None


@dataclass(frozen=True)
class ModelFeatureRule(_Record):
    key: str
    requires: Requirement
    feature: str
    reason: str
    evidence: tuple[str, ...] = ()
    equals: Any = None
    contains: str | None = None


@dataclass(frozen=True)
class ProbeRef(_Record):
    name: str
    tier: int
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Matrix(_Record):
    """A loaded matrix with its `extends` chain already merged in."""

    name: str
    version: str
    schema_version: int = 1
    title: str = ""
    description: str = ""
    extends: str | None = None
    status: str = "current"
    status_reason: str | None = None
    source: str = ""
    chain: tuple[str, ...] = ()
    python: PythonRule | None = None
    platform: tuple[PlatformRule, ...] = ()
    install_groups: tuple[InstallGroup, ...] = ()
    packages: tuple[PackageRule, ...] = ()
    protected: tuple[NamedRule, ...] = ()
    absent: tuple[NamedRule, ...] = ()
    known_bad: tuple[KnownBadRule, ...] = ()
    gpu: GpuRules = field(default_factory=GpuRules)
    renames: tuple[RenameRule, ...] = ()
    symptoms: tuple[SymptomRule, ...] = ()
    model_features: tuple[ModelFeatureRule, ...] = ()
    probes: tuple[ProbeRef, ...] = ()
    _nested: ClassVar[dict[str, Any]] = {
        "python": PythonRule, "platform": PlatformRule, "install_groups": InstallGroup,
        "packages": PackageRule, "protected": NamedRule, "absent": NamedRule, "known_bad": KnownBadRule,
        "gpu": GpuRules, "renames": RenameRule, "symptoms": SymptomRule,
        "model_features": ModelFeatureRule, "probes": ProbeRef,
    }

    @property
    def ref(self) -> str:
        """The reference that names exactly this matrix: name@version."""
        return f"{self.name}@{self.version}"

    def package(self, name: str) -> PackageRule | None:
        key = canonicalize_name(name)
        return next((p for p in self.packages if p.key == key), None)

    def groups_in_order(self) -> list[tuple[InstallGroup | None, list[PackageRule]]]:
        """Packages by install group, groups in their declared order, ungrouped packages last."""
        by_name = {g.name: g for g in self.install_groups}
        ordered = sorted(self.install_groups, key=lambda g: g.order)
        out: list[tuple[InstallGroup | None, list[PackageRule]]] = [
            (g, [p for p in self.packages if p.group == g.name]) for g in ordered
        ]
        rest = [p for p in self.packages if p.group is None or p.group not in by_name]
        if rest:
            out.append((None, rest))
        return [(g, ps) for g, ps in out if ps]
