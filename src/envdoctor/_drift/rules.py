"""Interpret the drift matrix's rename rules for given package versions: what one keyword should become."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from packaging.utils import canonicalize_name
from packaging.version import Version

from .._matrix.model import Matrix, RenameRule

# Subclasses whose keywords are their base's: trl.SFTConfig is a transformers.TrainingArguments, so every
# TrainingArguments rule applies to it, and TRL's trainers are transformers.Trainer subclasses. A class's own rule
# for a keyword shadows its bases' (DPOTrainer(tokenizer=) follows TRL's releases, not transformers'). compat reads
# this from the class's MRO at runtime; lint, which never imports the libraries, reads it here.
_TA, _TR = ("transformers.TrainingArguments",), ("transformers.Trainer",)
_TRL = ("SFT", "DPO", "ORPO", "KTO", "Reward", "GRPO", "CPO", "BCO", "GKD", "OnlineDPO", "PRM", "RLOO", "XPO",
        "NashMD")
# peft's AutoPeftModel*.from_pretrained hands its other keywords to the base model's from_pretrained.
_PEFT_AUTO = ("AutoPeftModel", "AutoPeftModelForCausalLM", "AutoPeftModelForSeq2SeqLM",
              "AutoPeftModelForSequenceClassification", "AutoPeftModelForTokenClassification",
              "AutoPeftModelForQuestionAnswering", "AutoPeftModelForFeatureExtraction")
INHERITS: dict[str, tuple[str, ...]] = {
    "transformers.Seq2SeqTrainingArguments": _TA,
    "transformers.Seq2SeqTrainer": _TR,
    **{f"trl.{p}Config": _TA for p in _TRL},  # PPOConfig is left out: before TRL 0.12 it was no TrainingArguments
    **{f"trl.{p}Trainer": _TR for p in _TRL},
    **{f"peft.{c}.from_pretrained": ("transformers.*.from_pretrained",) for c in _PEFT_AUTO},
}
# Methods judged whatever the receiver (`model.push_to_hub(...)` on a model built at runtime), in a file that
# imports the package: only methods whose stale keywords no other library's method of that name takes.
ANY_RECEIVER: dict[str, str] = {"push_to_hub": "transformers.*.push_to_hub"}

# What a keyword is for the given versions. "removed": the installed version rejects it. "deprecated": it still
# works but warns. "too_new": it is newer than the installed version. "no_equivalent": nothing replaces it.
Status = Literal["removed", "deprecated", "too_new", "no_equivalent"]
REMOVED: Final = "removed"
DEPRECATED: Final = "deprecated"
TOO_NEW: Final = "too_new"
NO_EQUIVALENT: Final = "no_equivalent"
# How lint, compat and explain say it: "`max_seq_length` is rejected by trl 1.16.0".
VERB: dict[Status, str] = {REMOVED: "is rejected by", DEPRECATED: "is deprecated in", TOO_NEW: "is not known to",
                           NO_EQUIVALENT: "has no equivalent in"}


@dataclass(frozen=True)
class Translation:
    """What one keyword of one callable becomes for the given versions."""

    callable: str
    keyword: str
    status: Status
    rule: RenameRule
    version: Version
    new: str | None = None  # the keyword to use instead (in `target` when target is set)
    target: str | None = None  # a moved keyword goes into this object...
    via: str | None = None  # ...passed as this keyword of `callable`


@dataclass(frozen=True)
class DefaultChange:
    """A keyword left out whose default changed silently in the given version."""

    callable: str
    keyword: str
    rule: RenameRule
    version: Version

    def describe(self) -> str:
        """One sentence: the keyword, its new default since which version, and the old one."""
        return (f"`{self.keyword}` is not set: it defaults to {self.rule.new_default} since {self.rule.package} "
                f"{self.rule.added} (here {self.version}); it was {self.rule.old_default}")


def short(path: str | None) -> str:
    """'trl.SFTConfig' -> 'SFTConfig'."""
    return (path or "").rsplit(".", 1)[-1]


def normalize(dotted: str) -> str:
    """A resolved dotted path as the rules name it: package + class (+ from_pretrained)."""
    parts = dotted.split(".")
    if len(parts) >= 3 and parts[-1] == "from_pretrained":
        return f"{parts[0]}.{parts[-2]}.from_pretrained"
    return f"{parts[0]}.{parts[-1]}" if len(parts) >= 2 else dotted


def matches(rule_callable: str, callable_: str) -> bool:
    """Whether a rule's callable names this one: exactly, or through a `pkg.*.from_pretrained` wildcard."""
    if rule_callable == callable_:
        return True
    pkg, _, rest = rule_callable.partition(".")
    if rest.startswith("*."):
        cpkg, _, crest = callable_.partition(".")
        return cpkg == pkg and crest.endswith("." + rest[2:]) and crest.count(".") == rest.count(".")
    return False


def rules_for(matrix: Matrix, callable_: str, bases: Iterable[str] = ()) -> list[RenameRule]:
    """Every rule of the callable, its declared bases and the static INHERITS table, own rules first."""
    names = [callable_, *bases, *INHERITS.get(callable_, ())]
    out: list[RenameRule] = []
    for i, name in enumerate(names):
        mine = [r for r in matrix.renames if matches(r.callable, name) and r not in out]
        if i:  # a closer class's rule for the same keyword (and kind of rule) shadows this one
            closer = {(r.old, r.kind == "default_changed") for r in out}
            mine = [r for r in mine if (r.old, r.kind == "default_changed") not in closer]
        out.extend(mine)
    return out


def known_callables(matrix: Matrix) -> set[str]:
    """The callables any rule names (with wildcards), plus those that inherit rules."""
    return {r.callable for r in matrix.renames} | set(INHERITS)


def _accepts_new(rule: RenameRule, v: Version) -> bool:
    return rule.added is None or v >= rule.added


def _accepts_old(rule: RenameRule, v: Version) -> bool:
    return rule.removed is None or v < rule.removed


def translate(
    matrix: Matrix, callable_: str, keyword: str, versions: Mapping[str, Version | None],
    bases: Iterable[str] = (),
) -> Translation | None:
    """What `keyword` of `callable_` should become for these versions; None when it is fine as written."""
    rules = [r for r in rules_for(matrix, callable_, bases) if r.kind != "default_changed"]
    for rule in rules:
        v = versions.get(canonicalize_name(rule.package))
        if v is None or rule.old != keyword:
            continue
        t = _forward(rule, callable_, keyword, v)
        if t is not None:
            return t
    for rule in rules:
        v = versions.get(canonicalize_name(rule.package))
        if v is None or rule.kind != "rename" or rule.new != keyword or not rule.reversible:
            continue
        if not _accepts_new(rule, v) and _accepts_old(rule, v):
            return Translation(callable_, keyword, TOO_NEW, rule, v, new=rule.old)
    return None


def _forward(rule: RenameRule, callable_: str, keyword: str, v: Version) -> Translation | None:
    old_ok = _accepts_old(rule, v)
    status: Status = DEPRECATED if old_ok else REMOVED
    if rule.kind == "removed":
        if not old_ok:
            return Translation(callable_, keyword, NO_EQUIVALENT, rule, v)
        if rule.deprecated is not None and v >= rule.deprecated:
            return Translation(callable_, keyword, DEPRECATED, rule, v)
        return None
    if _accepts_new(rule, v):
        if rule.kind == "moved":
            return Translation(callable_, keyword, status, rule, v, new=rule.new, target=rule.target, via=rule.via)
        return Translation(callable_, keyword, status, rule, v, new=rule.new)
    if old_ok:
        return None  # the old spelling is the right one for this version
    return Translation(callable_, keyword, NO_EQUIVALENT, rule, v)


def final_name(
    matrix: Matrix, target: str, keyword: str, versions: Mapping[str, Version | None]
) -> str | None:
    """The keyword a moved value takes in its target (following the target's own renames)."""
    t = translate(matrix, target, keyword, versions)
    if t is None:
        return keyword
    return t.new if t.target is None else None


def default_changes(
    matrix: Matrix, callable_: str, given: Iterable[str], versions: Mapping[str, Version | None],
    bases: Iterable[str] = (),
) -> list[DefaultChange]:
    """Keywords left out whose default changed silently in the version in use."""
    given = set(given)
    out = []
    all_rules = rules_for(matrix, callable_, bases)
    for rule in all_rules:
        if rule.kind != "default_changed" or rule.added is None:
            continue
        v = versions.get(canonicalize_name(rule.package))
        if v is None or v < rule.added:
            continue
        aliases = {rule.old} | {r.old for r in all_rules if r.new == rule.old}
        if not aliases & given:
            out.append(DefaultChange(callable_, rule.old, rule, v))
    return out


def packages_of(matrix: Matrix) -> set[str]:
    """The packages the rename rules are about, canonicalized."""
    return {canonicalize_name(r.package) for r in matrix.renames} | {c.split(".")[0] for c in INHERITS}
