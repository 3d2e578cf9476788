"""The matrix file format: pydantic v2 models with extra="forbid", used only when a matrix is (re)validated."""

from __future__ import annotations

import re
from typing import Any, Literal

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = 1
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _specifier(value: str) -> str:
    try:
        SpecifierSet(value)
    except InvalidSpecifier as e:
        raise ValueError(f"invalid version specifier {value!r}") from e
    return value


def _requirement(value: str) -> str:
    try:
        Requirement(value)
    except InvalidRequirement as e:
        raise ValueError(f"invalid requirement {value!r}: {e}") from e
    return value


def _version(value: str) -> str:
    try:
        Version(value)
    except InvalidVersion as e:
        raise ValueError(f"invalid version {value!r}") from e
    return value


class Rule(_Strict):
    """Every rule says why it exists and where that is written down."""

    reason: str = Field(min_length=1, description="Why the rule exists, in one or two sentences.")
    evidence: list[str] = Field(
        default_factory=list,
        description="Where the reason is written down: a release note, a METADATA line, an issue link.",
    )


class PythonRule(Rule):
    specifier: str = Field(description="Allowed Python versions, e.g. '>=3.11'.")
    _v = field_validator("specifier")(_specifier)


class PlatformRule(Rule):
    marker: str = Field(description="A PEP 508 marker the platform must satisfy, e.g. \"sys_platform == 'linux'\".")

    @field_validator("marker")
    @classmethod
    def _marker(cls, value: str) -> str:
        try:
            Marker(value)
        except InvalidMarker as e:
            raise ValueError(f"invalid marker {value!r}: {e}") from e
        return value


class InstallGroup(_Strict):
    name: str
    order: int = Field(description="Groups install in ascending order.")
    index_url: str | None = Field(default=None, description="Install this group from this index only.")
    description: str = ""


class PackageRule(Rule):
    name: str
    specifier: str = Field(default="", description="Allowed versions; empty means any version.")
    group: str | None = Field(default=None, description="Install group (see [[install_groups]]).")
    index_url: str | None = Field(default=None, description="Index the build lives on (e.g. the torch cu118 index).")
    local: str | None = Field(default=None, description="Local version label of the build, e.g. 'cu118'.")
    no_deps: bool = Field(default=False, description="Install with --no-deps.")
    source: str | None = Field(default=None, description="Where to install from when not on the index (a VCS URL).")
    optional: bool = Field(default=False, description="A missing optional package is a warning, not a failure.")
    protected: bool = Field(default=False, description="`fix` never replaces it unless allowed.")
    _v = field_validator("specifier")(_specifier)


class NamedRule(Rule):
    name: str


class KnownBadRule(Rule):
    name: str
    specifier: str = Field(description="The bad versions of `name`.")
    with_: str | None = Field(
        default=None, alias="with", description="Only bad together with this requirement, e.g. 'trl<0.9'."
    )
    _v = field_validator("specifier")(_specifier)

    @field_validator("with_")
    @classmethod
    def _with(cls, value: str | None) -> str | None:
        return None if value is None else _requirement(value)


class CudaRule(Rule):
    required: bool = True
    packages: list[str] = Field(default_factory=list, description="The packages that need CUDA.")


class Bf16Rule(Rule):
    min_compute_capability: float = 8.0
    fallback: Literal["fp16", "fp32"] = "fp16"


class MpsRule(Rule):
    supported: bool = False


class WorkloadRule(Rule):
    name: str
    min_vram_gib: float = Field(gt=0)


class DriverRule(Rule):
    check: bool = Field(default=True, description="torch's CUDA build must not be newer than the driver's CUDA.")


class GpuRules(_Strict):
    cuda: CudaRule | None = None
    bf16: Bf16Rule | None = None
    mps: MpsRule | None = None
    driver: DriverRule | None = None
    workloads: list[WorkloadRule] = Field(default_factory=list)


class RenameRule(Rule):
    package: str
    callable: str = Field(description="Dotted path, e.g. 'transformers.TrainingArguments'.")
    old: str
    new: str | None = None
    kind: Literal["rename", "moved", "removed", "default_changed"] = "rename"
    target: str | None = Field(default=None, description="For 'moved': the config object that now takes it.")
    via: str | None = Field(
        default=None, description="For 'moved': the keyword of `callable` that carries the target object, e.g. 'args'."
    )
    added: str | None = Field(default=None, description="First version that accepts `new`.")
    reversible: bool = Field(
        default=True, description="False when `new` meant something else before `added`: never translate new -> old."
    )
    deprecated: str | None = Field(default=None, description="First version that warns on `old`.")
    removed: str | None = Field(default=None, description="First version that rejects `old`.")
    old_default: str | None = None
    new_default: str | None = None

    @field_validator("added", "deprecated", "removed")
    @classmethod
    def _versions(cls, value: str | None) -> str | None:
        return None if value is None else _version(value)

    @model_validator(mode="after")
    def _shape(self) -> RenameRule:
        if self.kind in ("rename", "moved") and not self.new:
            raise ValueError(f"rename of {self.old!r} ({self.kind}) needs `new`")
        if self.kind == "moved" and not (self.target and self.via):
            raise ValueError(f"moved keyword {self.old!r} needs `target` and `via`")
        return self


class SymptomRule(Rule):
    id: str
    pattern: str = Field(description="A regular expression searched in the error text.")
    cause: str
    fix: str
    requires: str | None = Field(
        default=None, description="The environment has the cause when this requirement is not met."
    )
    gpu: Literal["cuda", "mps", "none"] | None = Field(
        default=None, description="The environment has the cause when the GPU is of this kind."
    )

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as e:
            raise ValueError(f"invalid regular expression {value!r}: {e}") from e
        return value

    @field_validator("requires")
    @classmethod
    def _req(cls, value: str | None) -> str | None:
        return None if value is None else _requirement(value)


class ModelFeatureRule(Rule):
    key: str = Field(description="Dotted key in config.json, e.g. 'rope_scaling.rope_type'.")
    equals: str | int | float | bool | None = None
    contains: str | None = Field(default=None, description="For list values such as 'architectures'.")
    requires: str
    feature: str = Field(description="What the model uses, in words.")
    _r = field_validator("requires")(_requirement)


class ProbeRef(_Strict):
    name: str
    tier: int = Field(ge=0, le=3)
    params: dict[str, Any] = Field(default_factory=dict)


class Matrix(_Strict):
    """A versioned compatibility matrix."""

    schema_version: Literal[1]
    name: str
    version: str
    title: str = ""
    description: str = ""
    extends: str | None = Field(default=None, description="A matrix reference: name, name@version or a path.")
    status: Literal["current", "history", "broken"] = "current"
    status_reason: str | None = None
    python: PythonRule | None = None
    platform: list[PlatformRule] = Field(default_factory=list)
    install_groups: list[InstallGroup] = Field(default_factory=list)
    packages: list[PackageRule] = Field(default_factory=list)
    protected: list[NamedRule] = Field(default_factory=list)
    absent: list[NamedRule] = Field(default_factory=list)
    known_bad: list[KnownBadRule] = Field(default_factory=list)
    gpu: GpuRules | None = None
    renames: list[RenameRule] = Field(default_factory=list)
    symptoms: list[SymptomRule] = Field(default_factory=list)
    model_features: list[ModelFeatureRule] = Field(default_factory=list)
    probes: list[ProbeRef] = Field(default_factory=list)

    _ver = field_validator("version")(_version)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"matrix name {value!r} must be lower-case letters, digits, '.', '_' or '-'")
        return value

    @model_validator(mode="after")
    def _unique(self) -> Matrix:
        seen: set[str] = set()
        for p in self.packages:
            key = canonicalize_name(p.name)
            if key in seen:
                raise ValueError(f"package {p.name!r} is listed twice")
            seen.add(key)
        return self


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the matrix format, for editors."""
    return Matrix.model_json_schema(by_alias=True)
