"""The trainer's run configuration: a TOML file validated by pydantic, every key overridable by a flag."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import ConfigError
from .kinds import DtypeChoice, FastChoice, ParallelChoice, TrainMethod
from .memory import ALL_LINEAR

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SCHEMA_VERSION = 1
ATTN = ["q_proj", "k_proj", "v_proj", "o_proj"]
MLP = ["gate_proj", "up_proj", "down_proj"]


class TrainConfig(BaseModel):
    """One training run. Defaults are seed 000's QLoRA configuration and seed 002's T4-safe GaLore."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = Field(SCHEMA_VERSION, description="config format version")
    method: TrainMethod = Field("qlora", description="qlora (NF4 base + LoRA) or galore (GaLoreAdamW8bit)")
    model: str = Field("", description="model folder or hub id")
    dataset: str = Field("", description="JSONL: instruction/input/output, text, or messages per line")
    output: str = Field("", description="output folder (checkpoints, adapters, logs)")
    matrix: str = Field("llama31", description="compatibility matrix the certification guard checks")
    gpu: str | None = Field(None, description="plan for a declared GPU (t4, a100-40gb, ...) instead of the detected one")
    max_memory_gib: float | None = Field(None, gt=0, description="plan within this many GiB per GPU (default: the card)")
    parallel: ParallelChoice = Field("auto", description="under torchrun: ddp (a whole model per GPU), fsdp (weights "
                                     "sharded), auto = ddp unless the model does not fit one GPU")
    max_steps: int = Field(0, ge=0, description="optimizer steps; 0 = one pass over the data (epochs)")
    epochs: float = Field(1.0, gt=0, description="passes over the data when max_steps is 0")
    effective_batch: int = Field(4, ge=1, description="sequences per optimizer step (batch x accumulation)")
    batch_size: int | None = Field(None, ge=1, description="sequences per forward pass; unset = chosen by the plan")
    seq_len: int = Field(2048, ge=8, description="maximum tokens per sequence")
    gradient_checkpointing: bool | None = Field(None, description="unset = chosen by the plan")
    dtype: DtypeChoice = Field("auto", description="auto: bf16 on cc>=8.0, fp16 on a T4, fp32 on CPU")
    fast: FastChoice = Field("auto", description="fused loss + kernels + selective checkpointing")
    packing: bool = Field(True, description="pack several examples into one sequence (position ids reset)")
    train_on_prompt: bool = Field(False, description="loss on every token; default: only responses / assistant turns")
    eval_dataset: str | None = Field(None, description="JSONL to evaluate on (same formats as the dataset)")
    eval_split: float = Field(0.0, ge=0, lt=0.5, description="hold out this fraction of the dataset for eval (0.05)")
    eval_steps: int = Field(0, ge=0, description="evaluate every N optimizer steps; 0 = only at the end")
    lr: float = Field(2e-4, gt=0, description="learning rate")
    weight_decay: float = Field(0.0, ge=0)
    warmup_steps: int = Field(0, ge=0)
    max_grad_norm: float = Field(1.0, ge=0, description="0 = no clipping")
    lora_r: int = Field(64, ge=1)
    lora_alpha: int = Field(16, ge=1)
    lora_dropout: float = Field(0.1, ge=0, lt=1)
    lora_targets: list[str] = Field(default_factory=lambda: list(ATTN),
                                    description=f"module names, or {ALL_LINEAR} (every linear layer but the head)")
    galore_rank: int = Field(128, ge=1)
    galore_update_proj_gap: int = Field(200, ge=1)
    galore_scale: float = Field(0.25, gt=0)
    galore_targets: list[str] = Field(default_factory=lambda: ATTN + MLP)
    save_steps: int = Field(50, ge=0, description="checkpoint every N optimizer steps; 0 = only at the end")
    logging_steps: int = Field(1, ge=1)
    resume: bool = Field(True, description="continue from the last checkpoint in the output folder")
    seed: int = 0

    @field_validator("lora_targets", "galore_targets", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        return [x.strip() for x in v.split(",") if x.strip()] if isinstance(v, str) else v

    @field_validator("lora_targets")
    @classmethod
    def _all_linear_alone(cls, v: list[str]) -> list[str]:
        if ALL_LINEAR in v and len(v) > 1:
            raise ValueError(f"{ALL_LINEAR} already names every linear layer: give it alone")
        return v


FIELDS = TrainConfig.model_fields


def _problems(e: ValidationError, source: str) -> list[str]:
    out = []
    for err in e.errors():
        key = ".".join(str(x) for x in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            hint = difflib.get_close_matches(key, list(FIELDS), n=1)
            out.append(f"{source}: unknown key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        else:
            out.append(f"{source}: {key}: {err['msg']}")
    return out


def load_config(path: str | None, overrides: dict[str, Any]) -> TrainConfig:
    """The TOML at `path` (if any) with `overrides` (flags) on top; every problem in one ConfigError."""
    data: dict[str, Any] = {}
    source = "flags"
    if path:
        p = Path(path)
        source = str(p)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigError(f"{p}: cannot read the config ({e.strerror or e})") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{p}: not valid TOML ({e})") from e
        data = data.get("train", data)  # a [train] table or top-level keys
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        cfg = TrainConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError("; ".join(_problems(e, source))) from e
    missing = [k for k in ("model", "dataset", "output") if not getattr(cfg, k)]
    if missing:
        raise ConfigError(f"{source}: {', '.join(missing)} not given (set them in the TOML or with "
                          + ", ".join(f"--{k}" for k in missing) + ")")
    return cfg
