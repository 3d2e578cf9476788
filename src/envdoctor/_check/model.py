"""What a model's config.json needs: the transformers release that knows its model types, and its features.

The floors come from `data/model_types.json` (written by `tools/model_support.py` from the real wheels), read
only when a config is given; the features are the matrix's [[model_features]] rules (rope variants,
quantization methods, attention kernels, bf16 weights). Loading and judging a config lives here so that
`check --model` is one module.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from .._env.environment import Environment
from .._matrix.model import Matrix, ModelFeatureRule
from ..errors import InspectionError
from .findings import Finding, Kind, ModelSummary, Status
from .registry import Context, checks
from .rules import met

FLOORS = Path(__file__).resolve().parent.parent / "data" / "model_types.json"
# Where a composite config keeps the configs of its parts (Gemma-3's text_config, Llama-4's vision_config).
NESTED = ("text_config", "vision_config", "audio_config")


@dataclass(frozen=True)
class ModelType:
    """One model type of a config.json, where it was found ('model_type', 'text_config.model_type')."""

    name: str
    where: str


def load_model_config(model: str | os.PathLike[str]) -> dict[str, Any]:
    """config.json of a model (a file, or a folder that holds one); it must be a JSON object with a `model_type`."""
    path = Path(model)
    if path.is_dir():
        path = path / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InspectionError(f"--model {model}: cannot read {path}: {e.strerror or e}") from e
    except ValueError as e:
        raise InspectionError(f"--model {model}: {path} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise InspectionError(f"--model {model}: {path} is not a JSON object")
    if not isinstance(data.get("model_type"), str) or not data["model_type"]:
        raise InspectionError(f"--model {model}: {path} has no 'model_type': it is not a transformers model config")
    return data


def model_types(config: dict[str, Any]) -> list[ModelType]:
    """The config's model type, then those of its nested configs (text, vision, audio), each once."""
    out = [ModelType(config["model_type"], "model_type")]
    for part in NESTED:
        sub = config.get(part)
        if (isinstance(sub, dict) and isinstance(sub.get("model_type"), str) and sub["model_type"]
                and all(t.name != sub["model_type"] for t in out)):
            out.append(ModelType(sub["model_type"], f"{part}.model_type"))
    return out


def summary(config: dict[str, Any]) -> ModelSummary:
    """The model types and architectures a report shows for a config."""
    archs = config.get("architectures")
    names = tuple(a for a in archs if isinstance(a, str)) if isinstance(archs, list) else ()
    return ModelSummary(tuple(t.name for t in model_types(config)), names)


@cache
def floors() -> dict[str, Any]:
    """The floors table: model type -> first transformers release that registers it, with its wheel line."""
    try:
        data: dict[str, Any] = json.loads(FLOORS.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InspectionError(f"the model floors table {FLOORS} cannot be read: {e}; reinstall envdoctor") from e
    return data


def _releases_read(table: dict[str, Any]) -> str:
    read = table.get("releases_read", [])
    return f"{len(read)} releases {read[0]} .. {read[-1]}" if read else "no releases"


def _type_finding(t: ModelType, table: dict[str, Any], env: Environment, archs: str) -> Finding:
    entry = table["model_types"].get(t.name)
    found = env.version_of("transformers")
    what = f"model type {t.name!r}" + (f" ({t.where})" if t.where != "model_type" else "") + archs
    if entry is None:
        return Finding(Kind.MODEL, Status.WARN, "transformers",
                       f"{what} is registered by no transformers release read ({_releases_read(table)}): "
                       "a newer release, or the model's own code (trust_remote_code)",
                       reason="tools/model_support.py reads CONFIG_MAPPING_NAMES of every release it lists",
                       found=str(found) if found is not None else None)
    first = Version(entry["first"])
    since = f"transformers {first}" if entry.get("exact") else f"transformers {first} (the oldest release read)"
    reason = (f"{entry['config_class']} is registered from {entry['first']}"
              + (f"; {entry['absent_in']} does not have it" if entry.get("absent_in") else f"; {entry.get('note', '')}"))
    common: dict[str, Any] = dict(reason=reason, evidence=(entry["evidence"],), expected=f">={first}")
    if found is None:
        return Finding(Kind.MODEL, Status.FAIL, "transformers", f"{what} needs {since}; transformers is not installed",
                       fix=f"pip install 'transformers>={first}'", **common)
    try:
        ok = Version(str(found)) >= first
    except InvalidVersion:
        ok = False
    if ok:
        return Finding(Kind.MODEL, Status.OK, "transformers", f"transformers {found} knows {what} (since {first})",
                       found=str(found), **common)
    fix = f"pip install 'transformers>={first}'"
    if not entry.get("exact"):  # the floor is a lower bound only: releases before the oldest one read were not read
        return Finding(Kind.MODEL, Status.WARN, "transformers",
                       f"transformers {found} is older than {first}, the oldest release read, which knows {what}: "
                       "whether it knows it is not known", found=str(found), fix=fix, **common)
    return Finding(Kind.MODEL, Status.FAIL, "transformers",
                   f"transformers {found} does not know {what}: it needs {since} "
                   f"(older releases fail with KeyError: {t.name!r} or 'does not recognize this architecture')",
                   found=str(found), fix=fix, **common)


def _own_floor(entry: dict[str, Any] | None, parent: dict[str, Any]) -> bool:
    """Whether a nested config's type needs its own finding: it is registered, and no later than its parent.

    A nested type need not be registered at all (Llama-4's `llama4_vision_model` is built by Llama4Config from
    4.51.0 but registered only in 5.6.0), so a later or missing registration is not a floor of its own.
    """
    return entry is not None and Version(entry["first"]) <= Version(parent["first"])


def _lookup(config: dict[str, Any], dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def feature_value(config: dict[str, Any], key: str) -> Any:
    """The first of a rule's alternative keys ('a.b|c') the config has, at its top or under `text_config`."""
    scopes = [config] + [config[p] for p in NESTED[:1] if isinstance(config.get(p), dict)]
    for scope in scopes:
        for alternative in key.split("|"):
            value = _lookup(scope, alternative.strip())
            if value is not None:
                return value
    return None


def uses(rule: ModelFeatureRule, config: dict[str, Any]) -> bool:
    """Whether the config uses the rule's feature."""
    value = feature_value(config, rule.key)
    if value is None:
        return False
    if rule.contains is not None:
        return isinstance(value, list) and rule.contains in value
    return rule.equals is None or value == rule.equals


_FALLBACK = {"fp16": "load with dtype=torch.float16 and train with TrainingArguments(fp16=True), or use a GPU with bf16",
             "fp32": "load with dtype=torch.float32 (no bf16=True / fp16=True), or use a GPU with bf16"}


def _bf16(rule: ModelFeatureRule, matrix: Matrix, env: Environment) -> Iterator[Finding]:
    gpu = env.gpu
    if not (gpu.available and gpu.kind == "cuda" and gpu.cc is not None):
        return
    floor = matrix.gpu.bf16.min_compute_capability if matrix.gpu.bf16 is not None else 8.0
    fallback = matrix.gpu.bf16.fallback if matrix.gpu.bf16 is not None else "fp16"
    ok = gpu.cc >= floor
    yield Finding(Kind.MODEL, Status.OK if ok else Status.WARN, "bf16",
                  f"the model uses {rule.feature}: {gpu.name} (compute capability {gpu.cc:.1f}) "
                  + ("has bf16" if ok else f"has no bf16 compute (< {floor:.1f}): load and train in {fallback}"),
                  reason=rule.reason, evidence=rule.evidence, expected=f">= {floor}", found=f"{gpu.cc:.1f}",
                  fix=None if ok else _FALLBACK[fallback])


def _requires(rule: ModelFeatureRule, env: Environment) -> Finding:
    req = rule.requires
    assert req is not None  # the rule's invariant: requires or bf16
    found = env.version_of(req.name)
    ok = found is not None and met(req, env)
    status = Status.OK if ok else Status.WARN if rule.optional else Status.FAIL
    return Finding(Kind.MODEL, status, req.name,
                   f"the model uses {rule.feature}: needs {req}"
                   + (f", found {found}" if found is not None else ", not installed"),
                   reason=rule.reason, evidence=rule.evidence, expected=str(req.specifier) or "installed",
                   found=str(found) if found is not None else None, fix=None if ok else f"pip install '{req}'")


@checks("model_features")
def model(ctx: Context) -> Iterator[Finding]:
    """The config's model types against the floors table, then each [[model_features]] rule the config uses."""
    config, env = ctx.model_config, ctx.env
    if config is None:
        return
    archs = config.get("architectures")
    shown = f" [{', '.join(a for a in archs if isinstance(a, str))}]" if isinstance(archs, list) and archs else ""
    table = floors()
    top, *nested = model_types(config)
    yield _type_finding(top, table, env, shown)
    parent = table["model_types"].get(top.name)
    for t in nested:
        if parent is not None and not _own_floor(table["model_types"].get(t.name), parent):
            continue  # the parent's config class builds it: the parent's floor is its floor
        yield _type_finding(t, table, env, "")
    for rule in ctx.matrix.model_features:
        if not uses(rule, config):
            continue
        if rule.requires is not None:
            yield _requires(rule, env)
        if rule.bf16:
            yield from _bf16(rule, ctx.matrix, env)
