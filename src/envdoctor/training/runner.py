"""One training run end to end: gate (certification), plan (memory), then the heavy imports, load and train."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from .._env.gpu import GpuInfo, declared, detect
from .._render.train import render_plan
from ..errors import ConfigError
from .config import TrainConfig
from .kinds import Device, Outcome
from .loop import NullReporter, Reporter, TrainResult
from .memory import ModelShape, RunShape, shape_from_config
from .plan import Plan, make_plan


def gate(cfg: TrainConfig) -> Any:
    """The certification guard for the run's matrix and this GPU; raises NotCertifiedError, imports nothing heavy."""
    from .._certify.guard import guard

    return guard(matrix=cfg.matrix, tier=2, device=None)


def gpu_for(cfg: TrainConfig) -> GpuInfo:
    """The declared GPU (--gpu) or the detected one."""
    return declared(cfg.gpu) if cfg.gpu else detect()


def model_config(ref: str) -> dict[str, Any]:
    """The model's config.json: read from the folder, else through transformers (hub id, cache)."""
    p = Path(ref)
    if p.is_dir():
        f = p / "config.json"
        try:
            return dict(json.loads(f.read_text(encoding="utf-8")))
        except (OSError, ValueError) as e:
            raise ConfigError(f"model {ref}: no readable config.json ({e})") from e
    try:
        from transformers import AutoConfig

        return dict(AutoConfig.from_pretrained(ref).to_dict())
    except Exception as e:  # OSError (not found, offline), ValueError (unknown model type)
        raise ConfigError(f"model {ref!r}: neither a local folder nor a loadable hub id ({e})") from e


def fast_path_probe(device: Device) -> Outcome:
    """Whether the fused kernels can run here: liger-kernel (and its triton) import, on a CUDA device."""
    if device != "cuda":
        return Outcome(False, "fused kernels need CUDA")
    try:
        import liger_kernel.transformers  # noqa: F401
    except Exception as e:
        return Outcome(False, f"liger-kernel is not importable ({type(e).__name__}: {e}); pip install 'envdoctor[fast]'")
    return Outcome(True, "liger-kernel imports")


def plan_run(cfg: TrainConfig, shape: ModelShape, gpu: GpuInfo, cfg_dict: dict[str, Any] | None = None) -> Plan:
    """The run's plan: the config's fixed choices, the rest chosen to fit the GPU."""
    cuda = gpu.available and gpu.kind == "cuda"
    text = (cfg_dict or {}).get("text_config") or cfg_dict or {}
    softcap = bool(text.get("final_logit_softcapping"))
    fast = cfg.fast != "off" and not softcap
    notes = []
    if softcap and cfg.fast != "off":
        notes.append("fused loss off: the model soft-caps its logits")
    kernels_ok, why = fast_path_probe("cuda" if cuda else "cpu")
    run = RunShape(cfg.method, cfg.batch_size or 1, cfg.seq_len, lora_r=cfg.lora_r,
                   lora_targets=tuple(cfg.lora_targets), lora_dropout=cfg.lora_dropout, galore_rank=cfg.galore_rank,
                   galore_targets=tuple(cfg.galore_targets), packed=cfg.packing)
    if fast and cuda and not kernels_ok:
        if cfg.fast == "on":
            raise ConfigError(f"fast = on, but {why}")
        notes.append(f"fused kernels off: {why}")
    plan = make_plan(shape, gpu, run, effective_batch=cfg.effective_batch, dtype=cfg.dtype,
                     fixed_batch=cfg.batch_size, fixed_checkpointing=cfg.gradient_checkpointing, fast=fast,
                     kernels=fast and kernels_ok)
    return replace(plan, notes=plan.notes + tuple(notes)) if notes else plan


def train(cfg: TrainConfig, reporter: Reporter | None = None, *, skip_gate: bool = False) -> TrainResult:
    """Gate, plan, load, train; nothing is written before the gate passes."""
    rep = reporter or NullReporter()
    if not skip_gate:
        gate(cfg)
    if not Path(cfg.dataset).is_file():
        raise ConfigError(f"dataset {cfg.dataset}: no such file")
    gpu = gpu_for(cfg)
    cfg_dict = model_config(cfg.model)
    shape = shape_from_config(cfg_dict, name=cfg.model)
    plan = plan_run(cfg, shape, gpu, cfg_dict)
    rep.message(render_plan(plan))
    return _execute(cfg, plan, rep)


def _execute(cfg: TrainConfig, plan: Plan, rep: Reporter) -> TrainResult:
    import torch

    from .data import read_jsonl, texts_from, tokenize
    from .fast import Levers, fused_loss_supported
    from .loop import train_loop
    from .model import add_lora, freeze_base, load_base, prepare

    torch.manual_seed(cfg.seed)
    if plan.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"the plan is for a CUDA GPU ({cfg.gpu or 'detected'}), but torch {torch.__version__} "
                          "sees none here; drop --gpu or install a CUDA build of torch")
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(cfg.model)
    except Exception as e:
        raise ConfigError(f"model {cfg.model}: no usable tokenizer ({e})") from e
    if tok.pad_token_id is None and tok.eos_token_id is not None:
        tok.pad_token = tok.eos_token
    examples = tokenize(texts_from(read_jsonl(cfg.dataset), tok, cfg.dataset), tok, plan.seq, cfg.packing)
    if not examples:
        raise ConfigError(f"dataset {cfg.dataset}: no example has two tokens or more")
    levers = Levers(fused_loss=plan.fused_loss, kernels=plan.fused_kernels, keep_bf16=True,
                    checkpoint_layers=plan.checkpoint_layers, lean=plan.fused_loss)
    if cfg.method == "qlora":
        model = load_base(cfg.model, quantize=plan.quantize, dtype=plan.dtype if plan.quantize == "nf4" else plan.param_dtype,
                          device=plan.device)
        freeze_base(model, levers)
        model = add_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, list(cfg.lora_targets))
    else:
        model = load_base(cfg.model, quantize="none", dtype=plan.param_dtype, device=plan.device)
        model.requires_grad_(True)
    ok, why = fused_loss_supported(model)
    if plan.fused_loss and not ok:
        plan = replace(plan, fused_loss=False)
        rep.message(f"fused loss off: {why}")
    for note in prepare(model, checkpointing=plan.checkpointing, checkpoint_layers=plan.checkpoint_layers,
                        levers=levers):
        rep.message(note)
    return train_loop(cfg, plan, model, tok, examples, rep)
