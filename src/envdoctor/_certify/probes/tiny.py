"""Tier 3: two optimizer steps of QLoRA (or GaLore) on a tiny random model of the matrix's family, with a finite loss.

The family (`params.family`: llama, qwen2, qwen3, gemma3, mistral, phi3) picks the config and architecture
class from transformers (`family.py`), so a Qwen matrix certifies a Qwen.

On the GPU, QLoRA loads the tiny model in 4-bit NF4 through BitsAndBytesConfig, as a real run does. On the CPU
(`--device cpu`, where the matrix allows it) bitsandbytes' 4-bit path needs CUDA, so it is LoRA in fp32 and
the result says so.
"""

from __future__ import annotations

import math
import time
from typing import Any, TypeVar

from pydantic import Field, StrictInt

from ..params import ProbeParams
from ..registry import Outcome, ProbeContext, register_probe
from .family import FAMILIES, Family, model_class, tiny_config


class TinyParams(ProbeParams):
    """Params of the tiny training probes."""

    family: Family = Field("llama", description="The model family whose tiny model trains: " + ", ".join(FAMILIES))
    steps: StrictInt = Field(2, ge=1, le=20, description="Optimizer steps.")


class GaloreParams(TinyParams):
    """Params of tiny-galore."""

    rank: StrictInt = Field(8, ge=1, le=64, description="GaLore's projection rank.")


def _batch(vocab: int, device: str) -> Any:
    import torch

    g = torch.Generator().manual_seed(0)
    return torch.randint(0, vocab, (2, 64), generator=g).to(device)


def _steps(model: Any, opt: Any, ids: Any, steps: int) -> list[float]:
    losses = []
    model.train()
    for _ in range(steps):
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(out.loss.detach().float().cpu()))
    return losses


def _finish(label: str, losses: list[float], details: dict[str, Any], failure: str | None = None) -> Outcome:
    """The probe's verdict: a non-finite loss (or another failure) fails, else the loss went from a to b."""
    if not all(math.isfinite(x) for x in losses):
        return Outcome.failed(f"{label}: non-finite loss {losses}", **details)
    if failure is not None:
        return Outcome.failed(f"{label}: {failure}", **details)
    return Outcome.passed(f"{label}: {len(losses)} steps, loss {losses[0]:.3f} -> {losses[-1]:.3f}", **details)


def _peak(ctx: ProbeContext) -> dict[str, Any]:
    if ctx.device != "cuda":
        return {}
    import torch

    return {"peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1)}


_P = TypeVar("_P", bound=TinyParams)


def _begin(ctx: ProbeContext, kind: type[_P]) -> tuple[_P, float, Any, Any]:
    """The probe's params, its clock start (torch seeded), the family's tiny config and its class.

    `allow_cpu = false` never reaches here: certify skips the probe on the CPU before running it (certify.py).
    """
    import torch

    params = kind.model_validate(ctx.params)
    start = time.monotonic()
    torch.manual_seed(0)
    return params, start, tiny_config(params.family), model_class(params.family)


@register_probe("tiny-qlora", 3, gpu="optional", timeout=420.0, params=TinyParams)
def tiny_qlora(ctx: ProbeContext) -> Outcome:
    """Two QLoRA steps (4-bit NF4 base + LoRA, paged 8-bit AdamW) on a tiny random model of the matrix's family."""
    p, start, cfg, cls = _begin(ctx, TinyParams)
    import torch
    from peft import LoraConfig, get_peft_model

    steps = p.steps
    if ctx.device == "cuda":
        import bitsandbytes as bnb
        from peft import prepare_model_for_kbit_training
        from transformers import BitsAndBytesConfig

        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        cls(cfg).save_pretrained(ctx.workdir)  # from_pretrained is the path that quantizes
        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype,
                                   bnb_4bit_use_double_quant=True)
        from envdoctor import (
            compat,  # torch_dtype/dtype for the installed transformers, from the drift matrix
        )

        model: Any = compat.call(cls.from_pretrained, ctx.workdir, quantization_config=quant,
                                 device_map={"": 0}, dtype=dtype)
        n4 = sum(1 for m in model.modules() if isinstance(m, bnb.nn.Linear4bit))
        if n4 == 0:
            return Outcome.failed("from_pretrained with load_in_4bit produced no 4-bit layers")
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
        mode = f"{cls.__name__} QLoRA: {n4} NF4 layers, compute {str(dtype).replace('torch.', '')}, paged 8-bit AdamW"
    else:
        model = cls(cfg)
        mode = f"{cls.__name__} LoRA in fp32 on CPU (bitsandbytes 4-bit needs CUDA)"
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                      target_modules=list(FAMILIES[p.family].lora_targets))
    model = get_peft_model(model, lora)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if ctx.device == "cuda":
        import bitsandbytes as bnb

        opt: Any = bnb.optim.PagedAdamW8bit(trainable, lr=1e-3)
    else:
        opt = torch.optim.AdamW(trainable, lr=1e-3)
    before = [p.detach().clone() for p in trainable]
    losses = _steps(model, opt, _batch(cfg.vocab_size, ctx.device), steps)
    moved = any(not torch.equal(b, p.detach()) for b, p in zip(before, trainable, strict=True))
    took = round(time.monotonic() - start, 2)
    details = {"losses": losses, "mode": mode, "family": p.family, "architecture": cls.__name__,
               "model_type": cfg.model_type, "trainable_params": sum(p.numel() for p in trainable),
               "seconds": took, **_peak(ctx)}
    return _finish(mode, losses, details, None if moved else "the LoRA weights did not change")


@register_probe("tiny-galore", 3, gpu="optional", timeout=420.0, params=GaloreParams)
def tiny_galore(ctx: ProbeContext) -> Outcome:
    """Two GaLore steps (GaLoreAdamW8bit on the GPU, GaLoreAdamW on the CPU) on a tiny random model of the family."""
    params, start, cfg, cls = _begin(ctx, GaloreParams)
    steps = params.steps
    model: Any = cls(cfg)
    model = model.to(ctx.device)
    galore: list[Any] = []
    rest: list[Any] = []
    for name, p in model.named_parameters():
        (galore if p.dim() == 2 and any(k in name for k in ("self_attn", "mlp")) else rest).append(p)
    rank = params.rank
    groups = [{"params": rest},
              {"params": galore, "rank": rank, "update_proj_gap": 1, "scale": 0.25, "proj_type": "std"}]
    import galore_torch

    opt_name = "GaLoreAdamW8bit" if ctx.device == "cuda" else "GaLoreAdamW"
    opt = getattr(galore_torch, opt_name)(groups, lr=1e-3)
    losses = _steps(model, opt, _batch(cfg.vocab_size, ctx.device), steps)
    details = {"losses": losses, "optimizer": opt_name, "family": params.family, "architecture": cls.__name__, "galore_tensors": len(galore),
               "seconds": round(time.monotonic() - start, 2), **_peak(ctx)}
    return _finish(f"{cls.__name__} {opt_name} rank {rank}", losses, details)
