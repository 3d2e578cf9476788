"""The one definition of a matrix: frozen dataclasses that are the compiled form and, derived, the file format.

Each field says what it means and what the file must hold (`doc()`); each rule kind is a rule class plus its
field in `Matrix` or `GpuRules` (`section()`: how it is merged, named, shown and diffed). `schema.py` derives
the pydantic models from these classes for validation; the warm path loads the cache without pydantic.
To add a rule kind: a class here, its `section()` field, and a checker in `_check` (or a line saying which
command reads it instead).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from .._named import Named
from .gpu import Bf16Rule, CudaRule, DriverRule, GpuRules, MpsRule, WorkloadRule
from .record import FORMAT_VERSION, Record, doc, evidence, reason, section

__all__ = [
    "FORMAT_VERSION", "Bf16Rule", "CudaRule", "DriverRule", "GpuRules", "ImportRule", "InstallGroup", "KnownBadRule",
    "Matrix", "MatrixStatus", "ModelFeatureRule", "MpsRule", "NamedRule", "PackageRule", "PlatformRule", "ProbeRef",
    "PythonRule", "RenameKind", "RenameRule", "SymptomRule", "WorkloadRule",
]

MatrixStatus = Literal["current", "history", "broken", "fragment"]
RenameKind = Literal["rename", "moved", "removed", "default_changed"]
GpuKind = Literal["cuda", "mps", "none"]
# A config.json value a model feature compares with.
ConfigValue = str | int | float | bool | None

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def _matrix_name(value: str) -> None:
    if not _NAME.match(value):
        raise ValueError(f"matrix name {value!r} must be lower-case letters, digits, '.', '_' or '-'")


def _version_text(value: str) -> None:
    try:
        Version(value)
    except InvalidVersion as e:
        raise ValueError(f"invalid version {value!r}") from e


def _regex(value: str) -> None:
    try:
        re.compile(value)
    except re.error as e:
        raise ValueError(f"invalid regular expression {value!r}: {e}") from e


def _package_text(p: PackageRule) -> str:
    flags = [f"+{p.local}" if p.local else "", f"from {p.index_url}" if p.index_url else "",
             f"@ {p.source}" if p.source else "", "--no-deps" if p.no_deps else "", "optional" if p.optional else ""]
    return " ".join([str(p.specifier) or "any version", *[f for f in flags if f]])


def _known_bad_text(r: KnownBadRule) -> str:
    return f"{r.name}{r.specifier}" + (f" with {r.with_}" if r.with_ else "")


@dataclass(frozen=True, eq=False, repr=False)
class PythonRule(Record):
    """The Python versions the stack supports."""

    specifier: SpecifierSet = doc("Allowed Python versions, e.g. '>=3.11'.")
    reason: str = reason()
    evidence: tuple[str, ...] = evidence()


@dataclass(frozen=True, eq=False, repr=False)
class PlatformRule(Record):
    """A platform the stack runs on."""

    marker: Marker = doc("A PEP 508 marker the platform must satisfy, e.g. \"sys_platform == 'linux'\".")
    reason: str = reason()
    evidence: tuple[str, ...] = evidence()


@dataclass(frozen=True, eq=False, repr=False)
class InstallGroup(Record):
    """Packages installed together in one resolver run, before the groups of higher order."""

    name: str = doc("The group's name, used by packages' `group`.")
    order: int = doc("Groups install in ascending order.")
    index_url: str | None = doc("Install this group from this index only.", None)
    description: str = doc("What the group is for.", "")


@dataclass(frozen=True, eq=False, repr=False)
class PackageRule(Named, Record):
    """A package the stack needs, with its allowed versions and how to install it."""

    name: str = doc("The distribution name, e.g. 'transformers'.")
    reason: str = reason()
    specifier: SpecifierSet = doc("Allowed versions; empty means any version.", factory=SpecifierSet)
    evidence: tuple[str, ...] = evidence()
    group: str | None = doc("Install group (see [[install_groups]]).", None)
    index_url: str | None = doc("Index the build lives on (e.g. the torch cu118 index).", None)
    local: str | None = doc("Local version label of the build, e.g. 'cu118'.", None)
    no_deps: bool = doc("Install with --no-deps.", False)
    source: str | None = doc("Where to install from when not on the index (a VCS URL).", None)
    optional: bool = doc("A missing optional package is a warning, not a failure.", False)
    protected: bool = doc("`fix` never replaces it unless allowed.", False)
    hashes: tuple[str, ...] = doc("Hashes the installed artifact must have, e.g. ['sha256:<64 hex>']: with any "
                                  "hash in the target, fix installs in pip's hash-checking mode "
                                  "(--require-hashes), so every package then needs one.", factory=tuple)


    @property
    def requirement(self) -> str:
        """The requirement string an installer gets, e.g. 'transformers==4.46.3'."""
        return f"{self.name}{self.specifier}" if self.source is None else f"{self.name} @ {self.source}"


@dataclass(frozen=True, eq=False, repr=False)
class NamedRule(Named, Record):
    """A rule about one distribution by name (must be absent; protected from fix)."""

    name: str = doc("The distribution name.")
    reason: str = reason()
    evidence: tuple[str, ...] = evidence()



@dataclass(frozen=True, eq=False, repr=False)
class KnownBadRule(Named, Record):
    """Versions of a package known to break, alone or together with another requirement."""

    name: str = doc("The distribution name.")
    specifier: SpecifierSet = doc("The bad versions of `name`.")
    reason: str = reason()
    evidence: tuple[str, ...] = evidence()
    with_: Requirement | None = doc("Only bad together with this requirement, e.g. 'trl<0.9'.", None, alias="with")



def _rename_shape(r: Any) -> str | None:
    if r.kind in ("rename", "moved") and not r.new:
        return f"rename of {r.old!r} ({r.kind}) needs `new`"
    if r.kind == "moved" and not (r.target and r.via):
        return f"moved keyword {r.old!r} needs `target` and `via`"
    return None


@dataclass(frozen=True, eq=False, repr=False)
class RenameRule(Record):
    """A keyword of an API that was renamed, moved, removed or changed its default."""

    package: str = doc("The distribution that owns the API, e.g. 'transformers'.")
    callable: str = doc("Dotted path, e.g. 'transformers.TrainingArguments'.")
    old: str = doc("The keyword as older code writes it.")
    reason: str = reason()
    evidence: tuple[str, ...] = evidence()
    new: str | None = doc("The keyword's new name (rename, moved).", None)
    kind: RenameKind = doc("What happened to the keyword.", "rename")
    target: str | None = doc("For 'moved': the config object that now takes it.", None)
    via: str | None = doc("For 'moved': the keyword of `callable` that carries the target object, e.g. 'args'.", None)
    reversible: bool = doc("False when `new` meant something else before `added`: never translate new -> old.", True)
    added: Version | None = doc("First version that accepts `new`.", None)
    deprecated: Version | None = doc("First version that warns on `old`.", None)
    removed: Version | None = doc("First version that rejects `old`.", None)
    old_default: str | None = doc("For 'default_changed': the default before.", None)
    new_default: str | None = doc("For 'default_changed': the default after.", None)
    drop: bool = doc("For 'removed': `lint --fix` may delete the keyword, because the release that removed it "
                     "behaves as if it were always set, or it had no effect (the evidence must show which).", False)
    true_means: str | None = doc("For a removed boolean keyword: the `keyword=literal` that `old=True` means now, "
                                 "e.g. \"attn_implementation='flash_attention_2'\"; --fix writes it instead.", None)
    false_means: str | None = doc("With `true_means`: the `keyword=literal` that `old=False` means now (the same "
                                  "keyword); a value that is not a literal becomes `keyword=(T if value else F)`.", None)

    def means(self, flag: bool) -> tuple[str, str] | None:
        """(keyword, Python literal) that `old=flag` means now; the literal is only ever checked by `ast`, never run."""
        return RenameRule._split(self.true_means if flag else self.false_means)

    @staticmethod
    def _split(text: str | None) -> tuple[str, str] | None:
        keyword, eq, value = (text or "").partition("=")
        return (keyword.strip(), value.strip()) if eq else None

    @staticmethod
    def _means_shape(r: Any) -> str | None:
        import ast

        if r.true_means is None and r.false_means is None:
            return None
        if r.kind != "removed" or r.true_means is None or r.false_means is None:
            return f"{r.old!r}: `true_means` and `false_means` go together, on kind 'removed'"
        (k1, v1), (k2, v2) = RenameRule._split(r.true_means) or ("", ""), RenameRule._split(r.false_means) or ("", "")
        try:
            ast.literal_eval(v1), ast.literal_eval(v2)
        except (ValueError, SyntaxError):
            return f"{r.old!r}: `true_means`/`false_means` must be `keyword=<Python literal>`"
        return None if k1 == k2 and k1.isidentifier() else f"{r.old!r}: `true_means`/`false_means` name one keyword"

    invariants = (_rename_shape,
                  lambda r: f"`drop` on {r.old!r} needs kind 'removed'" if r.drop and r.kind != "removed" else None,
                  lambda r: RenameRule._means_shape(r))


def _import_shape(r: Any) -> str | None:
    if r.replacement and r.config_keyword:
        return f"removed import {r.name!r}: give `replacement` or `config_keyword`, not both"
    if bool(r.config_keyword) != bool(r.callable and r.via):
        return f"removed import {r.name!r}: `config_keyword` needs `callable` and `via` (and they need it)"
    return None


@dataclass(frozen=True, eq=False, repr=False)
class ImportRule(Record):
    """A name that a module no longer exports, and what replaces it (lint reports the import, --fix rewrites it)."""

    package: str = doc("The distribution that owns the module, e.g. 'peft'.")
    module: str = doc("The module older code imports it from, e.g. 'peft'; its submodules match too "
                      "('trl' covers `from trl.trainer.utils import ...`).")
    name: str = doc("The removed name, e.g. 'prepare_model_for_int8_training'.")
    removed: Version = doc("First version whose module no longer has it (ImportError).")
    instead: str = doc("What to use instead, in words: the message lint prints.", min_length=1)
    reason: str = reason()
    evidence: tuple[str, ...] = evidence()
    deprecated: Version | None = doc("First version that warns when it is used.", None)
    replacement: str | None = doc("A name of the same module that takes the same arguments: --fix renames the "
                                  "import and every use.", None)
    callable: str | None = doc("For a removed class whose instance was passed to a call: that callable, e.g. "
                               "'trl.SFTTrainer'.", None)
    via: str | None = doc("The keyword of `callable` the instance was passed as, e.g. 'data_collator'.", None)
    config_keyword: str | None = doc("The keyword of that call's `args=` config that replaces the instance, set to "
                                     "True by --fix, e.g. 'completion_only_loss'.", None)

    invariants = (_import_shape,)


@dataclass(frozen=True, eq=False, repr=False)
class SymptomRule(Record):
    """An error message, its cause, and the fix `envdoctor explain` suggests."""

    id: str = doc("A stable name for the symptom, e.g. 'torchvision-nms'.")
    pattern: str = doc("A regular expression searched in the error text.", check=_regex)
    cause: str = doc("What causes the error, in words.")
    fix: str = doc("What to do about it.")
    reason: str = reason()
    evidence: tuple[str, ...] = evidence()
    requires: Requirement | None = doc("The environment has the cause when this requirement is not met.", None)
    gpu: GpuKind | None = doc("The environment has the cause when the GPU is of this kind.", None)


def _feature_shape(r: Any) -> str | None:
    if r.requires is None and not r.bf16:
        return f"model feature {r.key!r} needs `requires` or `bf16 = true`"
    if r.equals is not None and r.contains is not None:
        return f"model feature {r.key!r}: give `equals` or `contains`, not both"
    return None


@dataclass(frozen=True, eq=False, repr=False)
class ModelFeatureRule(Record):
    """A feature a model's config.json uses, and the requirement (or GPU capability) it implies."""

    key: str = doc("Dotted key in config.json, e.g. 'rope_scaling.rope_type'; alternatives separated by '|' "
                   "('rope_scaling.rope_type|rope_scaling.type'). Also looked up under `text_config` (multimodal).")
    feature: str = doc("What the model uses, in words.")
    reason: str = reason()
    evidence: tuple[str, ...] = evidence()
    requires: Requirement | None = doc("The requirement the feature implies, e.g. 'transformers>=4.43.0'.", None)
    equals: ConfigValue = doc("The feature is used when the key has this value.", None)
    contains: str | None = doc("For list values such as 'architectures': the feature is used when the list has it.",
                               None)
    optional: bool = doc("A missing `requires` only costs speed or memory: a warning, not a failure.", False)
    bf16: bool = doc("The feature needs bf16 compute: checked against [gpu.bf16] and the GPU.", False)

    invariants = (_feature_shape,)


@dataclass(frozen=True, eq=False, repr=False)
class ProbeRef(Record):
    """A probe `envdoctor certify` runs, at its tier."""

    name: str = doc("The probe's registered name, e.g. 'tiny-qlora'.")
    tier: int = doc("0 metadata, 1 imports, 2 GPU kernels, 3 a tiny training run.", ge=0, le=3)
    params: dict[str, Any] = doc("Parameters passed to the probe.", factory=dict)


def _unique_packages(m: Any) -> str | None:
    seen: set[str] = set()
    for p in m.packages:
        key = canonicalize_name(p.name)
        if key in seen:
            return f"package {p.name!r} is listed twice"
        seen.add(key)
    return None


def _feature_needs(r: ModelFeatureRule) -> str:
    return str(r.requires) if r.requires is not None else "a GPU with bf16"


def _feature_key(r: ModelFeatureRule) -> str:
    return f"{r.key}={r.equals if r.contains is None else r.contains}->{_feature_needs(r)}"


def _feature_head(r: ModelFeatureRule) -> str:
    return f"{r.key} {'contains ' + r.contains if r.contains else '== ' + str(r.equals)} -> {_feature_needs(r)}"


@dataclass(frozen=True, eq=False, repr=False)
class Matrix(Record):
    """A versioned compatibility matrix, with its `extends` chain already merged in."""

    name: str = doc("The matrix name: lower-case letters, digits, '.', '_' or '-'.", check=_matrix_name)
    version: str = doc("The matrix version, e.g. '2026.11'.", check=_version_text)
    schema_version: Literal[1] = doc("The version of this file format.", 1, required=True)
    title: str = doc("One line that says what the stack is.", "")
    description: str = doc("What the stack is for, and what changed.", "")
    extends: str | tuple[str, ...] | None = doc(
        "The matrices this one builds on: a reference (name, name@version or a path) or a list of them, merged "
        "left to right, this file last. A history matrix pins each one (`drift@2026.11`).", None)
    remove: tuple[str, ...] = doc(
        "Inherited rules this matrix drops, as 'section:label' ('probes:llama31-rope', 'gpu.cuda', "
        "'gpu.workloads:qlora-8b'); `matrix show` lists the labels.", ())
    model_types: tuple[str, ...] = doc(
        "The config.json `model_type`s this matrix is for: `check --model` without --matrix picks it. Not inherited.",
        ())
    status: MatrixStatus = doc("current, history (kept for diffs), broken (kept as a warning) or fragment (shared "
                               "rules for `extends` only).", "current")
    status_reason: str | None = doc("Why the matrix has its status.", None)
    source: str = doc("The file the matrix was loaded from.", "", compiled=True)
    chain: tuple[str, ...] = doc("The extends chain, root first, as name@version.", (), compiled=True)
    python: PythonRule | None = section("The Python versions the stack supports.", label=lambda r: "python",
                                        show=lambda r: str(r.specifier), title="python", one=True)
    platform: tuple[PlatformRule, ...] = section(
        "Platforms the stack runs on.", key=("marker",), label=lambda r: str(r.marker), show=lambda r: str(r.marker))
    install_groups: tuple[InstallGroup, ...] = section(
        "Groups of packages installed in order.", key=("name",), label=lambda g: g.name,
        show=lambda g: f"order {g.order}" + (f" from {g.index_url}" if g.index_url else ""), listed="hidden")
    packages: tuple[PackageRule, ...] = section(
        "Packages the stack needs.", key=("name",), label=lambda p: p.key, show=_package_text, listed="hidden")
    absent: tuple[NamedRule, ...] = section(
        "Packages that must not be installed.", key=("name",), label=lambda r: r.key, show=lambda r: "must be absent",
        head=lambda r: r.name, title="must be absent")
    protected: tuple[NamedRule, ...] = section(
        "Packages `fix` never replaces.", key=("name",), label=lambda r: r.key, show=lambda r: "protected",
        head=lambda r: r.name, title="protected")
    known_bad: tuple[KnownBadRule, ...] = section(
        "Known-bad versions.", key=("name", "specifier", "with_"), label=_known_bad_text, show=_known_bad_text,
        head=_known_bad_text, title="known bad")
    gpu: GpuRules = doc("The GPU rules.", factory=GpuRules)
    model_features: tuple[ModelFeatureRule, ...] = section(
        "What a model's config.json implies.", key=("key", "equals", "contains", "requires", "bf16"),
        label=_feature_key, show=_feature_needs, head=_feature_head, title="model features")
    renames: tuple[RenameRule, ...] = section(
        "API renames (lint, compat, explain).", key=("callable", "old"), label=lambda r: f"{r.callable}({r.old})",
        show=lambda r: f"{r.kind} -> {r.new}" + (f" removed in {r.removed}" if r.removed else ""),
        title="API renames", listed="count")
    imports: tuple[ImportRule, ...] = section(
        "Removed imports and their replacements (lint).", key=("module", "name"),
        label=lambda r: f"{r.module}.{r.name}", show=lambda r: f"removed in {r.package} {r.removed}",
        title="removed imports", listed="count")
    symptoms: tuple[SymptomRule, ...] = section(
        "Error symptoms (explain).", key=("id",), label=lambda r: r.id, show=lambda r: r.cause,
        title="error symptoms", listed="count")
    probes: tuple[ProbeRef, ...] = section(
        "Probes `certify` runs.", key=("name",), label=lambda p: p.name,
        show=lambda p: f"tier {p.tier} {p.params or ''}".strip(), head=lambda p: f"{p.name} (tier {p.tier})",
        title="probes", listed="inline")

    invariants = (_unique_packages,)

    @property
    def ref(self) -> str:
        """The reference that names exactly this matrix: name@version."""
        return f"{self.name}@{self.version}"

    def package(self, name: str) -> PackageRule | None:
        """The package rule of that name (any spelling), or None."""
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
