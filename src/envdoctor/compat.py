"""Runtime shims: call transformers/TRL with keywords of any era, translated for the installed versions.

    from envdoctor import compat
    args = compat.training_arguments(output_dir="out", evaluation_strategy="no")   # any transformers
    cfg = compat.sft_config(output_dir="out", max_length=2048)                      # max_seq_length on old TRL
    trainer = compat.sft_trainer(model=m, args=cfg, train_dataset=ds, max_seq_length=2048)

Old names on a new library become the new ones, new names on an old library become the old ones, and a
keyword that moved (SFTTrainer(max_seq_length=) -> SFTConfig(max_length=)) is put where it now belongs.
Each translation warns once (CompatWarning, naming old -> new and the version); a keyword with no
equivalent raises CompatError. The rules are the drift matrix's [[renames]]; nothing here imports torch
until a shim is called.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import sys
import warnings
from collections.abc import Callable, Mapping
from functools import lru_cache
from types import FrameType
from typing import Any

from packaging.version import Version

from ._drift import rules
from ._drift.versions import installed
from ._matrix.loader import load_matrix
from ._matrix.model import Matrix
from .errors import CompatError

__all__ = ["CompatWarning", "call", "sft_config", "sft_trainer", "trainer", "training_arguments"]

_warned: set[tuple[str, str, str]] = set()


class CompatWarning(UserWarning):
    """A keyword was translated for the installed library version."""


@lru_cache(maxsize=1)
def _matrix() -> Matrix:
    return load_matrix("drift")


def _paths(obj: Any) -> tuple[str, list[str]]:
    """The rule name of a class (or of X.from_pretrained) and of its transformers/trl base classes."""
    owner = getattr(obj, "__self__", None)
    if owner is not None and getattr(obj, "__name__", "") == "from_pretrained":
        cls = owner if isinstance(owner, type) else type(owner)
        return f"{cls.__module__.split('.')[0]}.{cls.__name__}.from_pretrained", []
    if not isinstance(obj, type):
        raise CompatError(f"compat.call needs a class or X.from_pretrained, got {obj!r}")
    names = [f"{c.__module__.split('.')[0]}.{c.__name__}" for c in obj.__mro__
             if c.__module__.split(".")[0] in ("transformers", "trl")]
    own = f"{obj.__module__.split('.')[0]}.{obj.__name__}"
    return own, [n for n in names if n != own]


def _warn_once(callable_: str, t: rules.Translation, new_desc: str) -> None:
    key = (callable_, t.keyword, new_desc)
    if key in _warned:
        return
    _warned.add(key)
    why = rules.VERB[t.status]
    warnings.warn(
        f"envdoctor.compat: {rules.short(callable_)}({t.keyword}=...) -> {new_desc}: `{t.keyword}` {why} "
        f"{t.rule.package} {t.version}", CompatWarning, stacklevel=_caller_level(),
    )


def _caller_level() -> int:
    """The stacklevel of the first frame outside this module, so the warning points at the user's line."""
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    return level


def _accepted(fn: Callable[..., Any]) -> tuple[set[str], bool]:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return set(), True
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    return {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}, var_kw


def translate_kwargs(obj: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keywords translated for `obj` (a class or X.from_pretrained) and the installed versions."""
    matrix = _matrix()
    own, bases = _paths(obj)
    versions = installed(rules.packages_of(matrix))
    out: dict[str, Any] = {}
    moved: dict[tuple[str, str], dict[str, tuple[rules.Translation, Any]]] = {}
    for key, value in kwargs.items():
        t = rules.translate(matrix, own, key, versions, bases)
        if t is None:
            _put(out, own, key, value)
        elif t.new is None:
            instead = _instead(own, t, value)
            if instead is None:
                raise CompatError(f"{rules.short(own)}({key}=...) has no equivalent in {t.rule.package} {t.version}: "
                                  f"{t.rule.reason}")
            if instead is not _DROPPED:
                _put(out, own, *instead)
        elif t.target is None:
            _warn_once(own, t, f"{rules.short(own)}({t.new}=...)")
            _put(out, own, t.new, value)
        else:
            moved.setdefault((t.target, t.via or ""), {})[key] = (t, value)
    for (target, via), items in moved.items():
        _move(own, out, target, via, items, versions)
    _check_known(obj, own, out)
    return out


_DROPPED = ("", None)


def _instead(own: str, t: rules.Translation, value: Any) -> tuple[str, Any] | None:
    """What a removed keyword becomes, as `lint --fix` rewrites it: nothing (`drop`: the release that removed it
    behaves as if it were set), the `keyword=literal` a boolean meant (`true_means`/`false_means`; the literal
    read with `ast.literal_eval`, never run), or None: no equivalent."""
    if t.rule.drop:
        _warn_once(own, t, "dropped (the release that removed it behaves the same without it)")
        return _DROPPED
    means = t.rule.means(value) if isinstance(value, bool) else None
    if means is None:
        return None
    import ast

    keyword, literal = means
    _warn_once(own, t, f"{rules.short(own)}({keyword}={literal})")
    return keyword, ast.literal_eval(literal)


def _put(out: dict[str, Any], own: str, key: str, value: Any) -> None:
    if key in out:
        raise CompatError(f"{rules.short(own)}: `{key}` is given twice (once under an old name); keep one")
    out[key] = value


def _resolve(target: str) -> type:
    import importlib

    module, _, name = target.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _move(own: str, out: dict[str, Any], target: str, via: str, items: dict[str, tuple[rules.Translation, Any]],
          versions: Mapping[str, Version | None]) -> None:
    """Put moved keywords into the object passed as `via`: the given one, or a new one."""
    target_cls = _resolve(target)
    values: dict[str, Any] = {}
    for key, (t, value) in items.items():
        name = rules.final_name(_matrix(), target, t.new or key, versions) or (t.new or key)
        _warn_once(own, t, f"{rules.short(target)}({name}=...) passed as {via}=")
        values[name] = value
    holder = out.get(via)
    if holder is None:
        extra: dict[str, Any] = {}
        if "output_dir" in _accepted(target_cls)[0] and "model" in out:
            extra["output_dir"] = _default_output_dir(out["model"])  # what SFTTrainer itself would choose
        out[via] = call(target_cls, **extra, **values)
    elif isinstance(holder, target_cls):
        for name, value in values.items():
            current = getattr(holder, name, None)
            default = _field_default(target_cls, name)
            if current not in (None, default, value):
                raise CompatError(f"{rules.short(own)}: {name}={value!r} conflicts with {via}.{name}={current!r}")
            setattr(holder, name, value)
    elif dataclasses.is_dataclass(holder) and issubclass(target_cls, type(holder)):
        # TrainingArguments given where SFTConfig is needed: convert it the way SFTTrainer itself does
        # (trl 0.12 and 1.x: SFTConfig(**args.to_dict()) with the redacted *_token values put back). The
        # fields are the installed library's own names, so they are not translated: re-translating them
        # turned deprecated aliases that to_dict() also lists (per_gpu_*, gradient_checkpointing) into
        # "given twice" errors.
        init = holder.to_dict() if hasattr(holder, "to_dict") else {
            f.name: getattr(holder, f.name) for f in dataclasses.fields(holder) if f.init}
        init.update({k: getattr(holder, k) for k in init if k.endswith("_token") and hasattr(holder, k)})
        accepted, var_kw = _accepted(target_cls)
        if not var_kw and accepted:
            init = {k: v for k, v in init.items() if k in accepted}
        make: Any = target_cls  # mypy narrows it to a dataclass type after issubclass()
        out[via] = make(**{**init, **values})
    else:
        raise CompatError(f"{rules.short(own)}: cannot put {sorted(values)} into {via}={type(holder).__name__}; "
                          f"pass {via}={rules.short(target)}(...) with them")


def _field_default(cls: type, name: str) -> Any:
    for f in dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ():
        if f.name == name and f.default is not dataclasses.MISSING:
            return f.default
    return None


def _default_output_dir(model: Any) -> str:
    name = model if isinstance(model, str) else getattr(getattr(model, "config", None), "_name_or_path", "") or "model"
    return f"{str(name).rstrip('/').split('/')[-1]}-SFT"


def _check_known(obj: Any, own: str, out: dict[str, Any]) -> None:
    names, var_kw = _accepted(obj)
    if var_kw or not names:
        return
    for key in out:
        if key not in names:
            hint = difflib.get_close_matches(key, sorted(names), n=1)
            did = f"; did you mean `{hint[0]}`?" if hint else ""
            raise CompatError(f"{rules.short(own)} does not take `{key}` and envdoctor knows no equivalent{did}")


def call(obj: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a transformers/TRL class (or X.from_pretrained) with keywords translated for the installed versions."""
    return obj(*args, **translate_kwargs(obj, kwargs))


def training_arguments(**kwargs: Any) -> Any:
    """transformers.TrainingArguments(**kwargs), keywords translated for the installed transformers."""
    from transformers import TrainingArguments

    return call(TrainingArguments, **kwargs)


def trainer(**kwargs: Any) -> Any:
    """transformers.Trainer(**kwargs), keywords translated (tokenizer <-> processing_class)."""
    from transformers import Trainer

    return call(Trainer, **kwargs)


def sft_config(**kwargs: Any) -> Any:
    """trl.SFTConfig(**kwargs), keywords translated (max_seq_length <-> max_length, TrainingArguments renames)."""
    from trl import SFTConfig

    return call(SFTConfig, **kwargs)


def sft_trainer(**kwargs: Any) -> Any:
    """trl.SFTTrainer(**kwargs); keywords that moved into SFTConfig are put into `args`."""
    from trl import SFTTrainer

    return call(SFTTrainer, **kwargs)
