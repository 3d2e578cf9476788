"""Explain an error: match a message, traceback or log against the matrix's symptoms and the rename data."""

from __future__ import annotations

import re
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from packaging.version import Version

from .._matrix.model import Matrix, SymptomRule
from . import bnb, conflict, flash, model_type, removed_import, rules, tolerant
from .excepthook import install_excepthook as install_excepthook  # envdoctor.install_excepthook is found here
from .judge import Context, Judge
from .patterns import bounded_text, pattern_problem

if TYPE_CHECKING:  # pragma: no cover
    from .._env.environment import Environment

_GROUP = re.compile(r"\{(\w+)\}")
GENERIC = "unexpected-keyword"
# Symptoms whose cause depends on facts the data cannot hold: each judge reads them from this environment.
JUDGES: dict[str, Judge] = {
    "bnb-no-gpu-build": bnb.no_gpu_build, "bnb-cpu-library": bnb.cpu_library,
    "bitsandbytes-cuda-setup": bnb.cuda_setup, "bnb-cuda-version-override": bnb.override,
    "flash-attn-undefined-symbol": flash.judge, "resolution-impossible": conflict.judge,
    "removed-import": removed_import.judge, "cannot-import-transformers-name": removed_import.by_rule_only,
}


@dataclass(frozen=True)
class Diagnosis:
    """One recognised symptom: what it means, how to fix it, and whether this environment has the cause."""

    id: str
    matched: str
    cause: str
    fix: str
    has_cause: bool | None  # None: cannot tell from this environment
    why: str  # the fact behind has_cause, e.g. "transformers 4.41.0 is installed; the fix needs >=4.43.0"
    reason: str
    evidence: tuple[str, ...] = ()
    edit: str | None = None  # an exact edit from the rename data, e.g. "evaluation_strategy= -> eval_strategy="
    model_type: dict[str, Any] | None = None  # unknown-model-type only: name, floor, floor_exact, installed, ...
    facts: dict[str, Any] | None = None  # what a judge read here (bitsandbytes, flash-attn, pip, imports)

    def to_dict(self) -> dict[str, Any]:
        """The diagnosis as JSON-ready values."""
        return {"id": self.id, "matched": self.matched, "cause": self.cause, "fix": self.fix, "edit": self.edit,
                "has_cause": self.has_cause, "why": self.why, "reason": self.reason,
                "evidence": list(self.evidence), "model_type": self.model_type, "facts": self.facts}


@dataclass(frozen=True)
class Explanation:
    """Everything recognised in one error text; empty when nothing was."""

    diagnoses: tuple[Diagnosis, ...]
    matrix: str
    skipped: tuple[str, ...] = ()  # symptoms whose pattern is unsafe to run, each with why (a warning)

    @property
    def recognised(self) -> bool:
        """Whether any symptom was found."""
        return bool(self.diagnoses)

    @property
    def exit_code(self) -> int:
        """0 when something was recognised, 1 when nothing was."""
        return 0 if self.diagnoses else 1

    def __str__(self) -> str:
        from .._render.explain import render_text

        return render_text(self)


def _text_of(error: BaseException | str) -> str:
    if isinstance(error, BaseException):
        return "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return str(error)


def _fill(template: str, groups: dict[str, str]) -> str:
    return _GROUP.sub(lambda m: groups.get(m.group(1), m.group(0)) if m.group(1) in groups else m.group(0), template)


def _line_of(text: str, start: int, end: int) -> str:
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    return text[line_start: line_end if line_end != -1 else len(text)].strip()[:500]


def unsafe_symptoms(matrix: Matrix) -> dict[str, str]:
    """The symptoms whose pattern could backtrack without end, by id, with why: explain skips them."""
    return {r.id: f"{matrix.ref} symptoms.{r.id}: pattern skipped: {problem}"
            for r in matrix.symptoms
            if (problem := pattern_problem(r.pattern) or pattern_problem(tolerant.unmarked_pattern(r.pattern)))}


@dataclass(frozen=True)
class Hit:
    """Where a symptom's pattern occurs in the pasted text, and its named groups (as the library wrote them)."""

    rule: SymptomRule
    start: int  # offsets in the pasted text
    end: int
    groups: dict[str, str]
    view: str  # "pasted", "unwrapped" or "unmarked": how tolerant the match had to be


def _known_names(matrix: Matrix) -> list[str]:
    """The names a markdown-damaged capture is read back through: keywords and imports the matrix knows."""
    names = {r.old for r in matrix.renames} | {r.new for r in matrix.renames if r.new}
    names |= {r.name for r in matrix.imports}
    return sorted(names, key=len, reverse=True)


def match(matrix: Matrix, text: str) -> list[Hit]:
    """Every symptom whose pattern occurs in text, in matrix order; the generic keyword rule only as a fallback.

    Each pattern is tried on the pasted text, then unwrapped, then without markdown's marks (`tolerant`). A
    pattern that `pattern_problem` rejects is never run, and the text is bounded (`bounded_text`), so a shared
    matrix cannot make explain hang (issue 15, finding 5).
    """
    found: list[Hit] = []
    unsafe = unsafe_symptoms(matrix)
    seen = tolerant.Views(bounded_text(text))
    known: list[str] | None = None
    for rule in matrix.symptoms:
        if rule.id in unsafe:  # the pattern, or its markdown-tolerant form, could backtrack without end
            continue
        got = tolerant.first_match(rule.pattern, seen)
        if got is None:
            continue
        view, m = got
        groups = {k: v for k, v in m.groupdict().items() if v is not None}
        if view.name == "unmarked":
            known = known if known is not None else _known_names(matrix)
            groups = {k: tolerant.restore(v, known) for k, v in groups.items()}
        start, end = view.span(m.start(), m.end())
        found.append(Hit(rule, start, end, groups, view.name))
    specific = [h for h in found if h.rule.id != GENERIC]
    generic = [h for h in found if h.rule.id == GENERIC]
    for g in generic:  # keep it only when no specific symptom explains the same line
        if not any(s.start <= g.end and g.start <= s.end for s in specific):
            specific.append(g)
    return specific


def _has_cause(rule: SymptomRule, env: Environment | None) -> tuple[bool | None, str]:
    if env is None:
        return None, "the environment was not inspected"
    if rule.requires is not None:
        req = rule.requires
        have = env.version_of(req.name)
        if have is None:
            return None, f"{req.name} is not installed here, so this environment cannot have raised it"
        if req.specifier.contains(have, prereleases=True):
            return False, (f"{req.name} {have} is installed here, inside {req.name}{req.specifier} where this "
                           f"does not happen: the error came from another environment (kernel, venv, old copy)")
        return True, f"{req.name} {have} is installed here, outside {req.name}{req.specifier}: this environment raises it"
    if rule.gpu is not None:
        kind = env.gpu.kind if env.gpu.available else "none"
        if kind == rule.gpu:
            return True, f"this machine's GPU is {kind} ({env.gpu.name or env.gpu.reason})"
        return False, f"this machine's GPU is {kind}, not {rule.gpu}"
    return None, "it depends on the code or the runtime, not on installed versions"


@dataclass(frozen=True)
class _Edit:
    """The exact keyword edit the rename data gives, and whether the installed version rejects the keyword."""

    text: str | None = None  # e.g. "TrainingArguments(evaluation_strategy=...) -> TrainingArguments(eval_strategy=...)"
    rejected: bool | None = None  # None: the versions are not known here
    why: str = ""  # the fact behind `rejected`


_NO_EDIT = _Edit()


def _edit(matrix: Matrix, groups: dict[str, str], env: Environment | None) -> _Edit:
    """The exact keyword edit from the rename data, for messages naming a class and a keyword."""
    cls, keyword = (groups.get("callable") or "").split(".")[-1], groups.get("keyword")
    if not keyword or not cls:
        return _NO_EDIT
    versions = {p: env.version_of(p) for p in rules.packages_of(matrix)} if env is not None else {}
    paths = sorted({r.callable for r in matrix.renames if rules.short(r.callable) == cls}
                   | {k for k in rules.INHERITS if rules.short(k) == cls})
    if not paths:
        # from_pretrained hands keywords it does not know to the model's __init__, so a removed
        # from_pretrained keyword surfaces as "LlamaForCausalLM.__init__() got an unexpected keyword argument"
        paths = sorted({r.callable.replace("*", cls) for r in matrix.renames if ".*." in r.callable})
    for path in paths:
        t = rules.translate(matrix, path, keyword, versions)
        if t is not None:
            return _edit_for(matrix, t, cls, path, versions)
    return _edit_from_data(matrix, paths, cls, keyword)


def _edit_for(matrix: Matrix, t: rules.Translation, cls: str, path: str,
              versions: Mapping[str, Version | None]) -> _Edit:
    """The edit for the installed version, and whether that version rejects the keyword."""
    keyword = t.keyword
    shown = f"{cls}.from_pretrained" if path.endswith(".from_pretrained") else cls
    rejected = t.status in (rules.REMOVED, rules.NO_EQUIVALENT)
    why = (f"{t.rule.package} {t.version} is installed here and "
           f"{'rejects' if rejected else 'still accepts'} `{keyword}`")
    if t.new is not None and t.target:
        final = rules.final_name(matrix, t.target, t.new, versions) or t.new
        return _Edit(f"{shown}({keyword}=...) -> {shown}(..., {t.via}={rules.short(t.target)}(..., {final}=...))",
                     rejected, why)
    if t.new is not None:
        return _Edit(f"{shown}({keyword}=...) -> {shown}({t.new}=...)", rejected, why)
    return _Edit(f"delete {keyword}=...: {t.rule.reason}", rejected, why)


def _edit_from_data(matrix: Matrix, paths: list[str], cls: str, keyword: str) -> _Edit:
    """Versions unknown (or fine as written): say what the rename data says."""
    for path in paths:
        for rule in rules.rules_for(matrix, path):
            if rule.old == keyword and rule.kind in ("rename", "moved"):
                where = f"{rules.short(rule.target)}({rule.new}=...) passed as {rule.via}=" if rule.target \
                    else f"{rule.new}="
                return _Edit(f"{cls}({keyword}=...) -> {where} ({rule.reason})")
            if rule.old == keyword and rule.kind == "removed":
                return _Edit(f"delete {keyword}=...: {rule.reason}")
    return _NO_EDIT


def explain(
    error: BaseException | str, *, matrix: str | Matrix | None = None, environment: Environment | None = None,
    inspect: bool = True,
) -> Explanation:
    """Explain an exception or an error text (a message, a traceback or a whole log)."""
    from .._matrix.loader import DEFAULT_MATRIX, load_matrix

    m = matrix if isinstance(matrix, Matrix) else load_matrix(matrix or DEFAULT_MATRIX)
    text = bounded_text(_text_of(error))
    found = match(m, text)
    types = _model_types(text)
    env = environment
    if (found or types) and env is None and inspect:
        from .._env.environment import inspect_environment

        env = inspect_environment()
    out = [_diagnose(m, hit, text, env) for hit in found]
    out += _model_type_diagnoses(text, types, env)
    return Explanation(tuple(out), m.ref, tuple(unsafe_symptoms(m).values()))


def _diagnose(matrix: Matrix, hit: Hit, text: str, env: Environment | None) -> Diagnosis:
    """One recognised symptom: the data's cause and fix, the rename edit, and this environment's facts."""
    rule, groups = hit.rule, hit.groups
    has, why = _has_cause(rule, env)
    edit = _edit(matrix, groups, env)
    if has is None and edit.rejected is not None:
        has, why = edit.rejected, edit.why
    cause, fix, evidence, facts = _fill(rule.cause, groups), _fill(rule.fix, groups), rule.evidence, None
    judge = JUDGES.get(rule.id)
    if judge is not None:
        j = judge(Context(rule, groups, tolerant.normalise(text), matrix, env))
        if j is not None:
            has, why, facts = j.has_cause, j.why, j.facts or None
            cause, fix = j.cause or cause, j.fix or fix
            evidence = j.evidence or evidence
    return Diagnosis(id=rule.id, matched=_line_of(text, hit.start, hit.end), cause=cause, fix=fix, has_cause=has,
                     why=why, reason=rule.reason, evidence=evidence, edit=edit.text, facts=facts)


def _model_types(text: str) -> list[model_type.ModelTypeHit]:
    """The model types an unknown-model-type error names; the floors table is read only when one may be named."""
    if not model_type.may_name(text):
        return []
    from .._check.model import floors

    return model_type.find(text, frozenset(floors().get("model_types", {})))


def _model_type_diagnoses(text: str, hits: list[model_type.ModelTypeHit], env: Environment | None) -> list[Diagnosis]:
    if not hits:
        return []
    from .._check.model import floors

    out = []
    for hit in hits:
        v = model_type.judge(hit.name, floors(), env)
        out.append(Diagnosis(id=model_type.ID, matched=_line_of(text, hit.start, hit.end), cause=v.cause, fix=v.fix,
                             has_cause=v.has_cause, why=v.why, reason=v.reason, evidence=v.evidence,
                             model_type=v.facts))
    return out
