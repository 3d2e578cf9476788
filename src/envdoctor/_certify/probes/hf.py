"""Tier 2, device-independent: LlamaConfig takes the Llama-3.1 rope dict, and the matrix's training keywords construct."""

from __future__ import annotations

from typing import Any

from ..registry import Outcome, ProbeContext, register_probe

# config.json of meta-llama/Llama-3.1-8B(-Instruct): the dict that transformers < 4.43 rejects
LLAMA31_ROPE = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8192, "rope_type": "llama3"}


def tiny_llama_config(rope: dict[str, Any] | None = None, **overrides: Any) -> Any:
    """A tiny random Llama config (2 layers, hidden 64) with the Llama-3.1 rope dict by default."""
    from transformers import LlamaConfig

    kw: dict[str, Any] = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=131072,
                              rope_theta=500000.0, rope_scaling=dict(rope or LLAMA31_ROPE), tie_word_embeddings=False)
    kw.update(overrides)
    return LlamaConfig(**kw)


@register_probe("llama31-rope", 2, gpu="optional", timeout=240.0)
def llama31_rope(ctx: ProbeContext) -> Outcome:
    """LlamaConfig accepts the Llama-3.1 rope_scaling dict and a tiny model runs a forward pass with it."""
    import torch
    from transformers import LlamaForCausalLM

    rope = dict(ctx.params.get("rope_scaling") or LLAMA31_ROPE)
    cfg = tiny_llama_config(rope)  # transformers 4.41 raises ValueError here ("two fields, type and factor")
    torch.manual_seed(0)
    model: Any = LlamaForCausalLM(cfg)
    model = model.to(ctx.device).eval()
    rotary = getattr(model.model, "rotary_emb", None)
    rope_type = getattr(rotary, "rope_type", None)
    if rotary is not None and rope_type not in (None, rope.get("rope_type")):
        return Outcome.failed(f"the model uses rope_type {rope_type!r}, not {rope.get('rope_type')!r}")
    ids = torch.randint(0, cfg.vocab_size, (1, 32), device=ctx.device)
    with torch.no_grad():
        logits = model(ids).logits
    if not torch.isfinite(logits).all():
        return Outcome.failed("a forward pass with the llama3 rope produced non-finite logits")
    return Outcome.passed(f"LlamaConfig takes rope_type {rope.get('rope_type')!r} (factor {rope.get('factor')}); "
                          f"forward pass on {ctx.device} is finite", rope_type=rope_type)


def _training_kwargs(ctx: ProbeContext, workdir: str) -> dict[str, Any]:
    cuda = ctx.device == "cuda"
    cc = ctx.gpu.get("compute_capability") or "0.0"
    bf16 = cuda and bool(ctx.matrix.get("bf16")) and float(cc) >= float(ctx.matrix["bf16"].get("min_compute_capability", 8.0))
    kw: dict[str, Any] = dict(
        output_dir=workdir, per_device_train_batch_size=1, gradient_accumulation_steps=4, learning_rate=2e-4,
        max_steps=2, logging_steps=1, save_strategy="no", eval_strategy="no", report_to="none",
        gradient_checkpointing=True, optim="paged_adamw_8bit" if cuda else "adamw_torch",
    )
    if bf16:
        kw["bf16"] = True
    elif cuda:
        kw["fp16"] = True
    return kw


_COMPAT = {"TrainingArguments": "training_arguments", "SFTConfig": "sft_config"}
_PRECISION = ("fp16", "bf16", "tf32", "fp16_full_eval", "bf16_full_eval")


def _class(dotted: str) -> Any:
    import importlib

    module, _, attr = dotted.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def _construct(cls: Any, kw: dict[str, Any]) -> tuple[Any, str]:
    """Construct `cls(**kw)`; on TypeError, through envdoctor.compat when it has an adapter for the class."""
    try:
        return cls(**kw), ""
    except TypeError as e:
        fn_name = _COMPAT.get(cls.__name__)
        try:
            from envdoctor import compat
        except ImportError:
            raise e from None
        fn = getattr(compat, fn_name, None) if fn_name else None
        if fn is None:
            raise
        return fn(**kw), str(e)


def _requests(ctx: ProbeContext) -> list[tuple[str, dict[str, Any]]]:
    """(class, keywords) pairs: the matrix's params {class, keywords}, or training_args/sft_config, else defaults."""
    p = ctx.params
    out: list[tuple[str, dict[str, Any]]] = []
    if "class" in p:
        out.append((str(p["class"]), dict(p.get("keywords") or {})))
    if "training_args" in p:
        out.append(("transformers.TrainingArguments", dict(p["training_args"])))
    if "sft_config" in p:
        out.append(("trl.SFTConfig", dict(p["sft_config"])))
    if not out:
        out.append(("transformers.TrainingArguments", {}))
        packages = {k.lower() for k in ctx.matrix.get("packages", {})}
        if "trl" in packages or not packages:
            out.append(("trl.SFTConfig", {"max_length": 512, "packing": False, "dataset_text_field": "text"}))
    return out


@register_probe("training-args", 2, gpu="optional", timeout=240.0)
def training_args(ctx: ProbeContext) -> Outcome:
    """The matrix's TrainingArguments / SFTConfig keywords construct for real (params: class + keywords)."""
    from transformers import TrainingArguments

    base = _training_kwargs(ctx, ctx.workdir)
    if ctx.device != "cuda":  # `use_cpu` replaced `no_cuda` in transformers 4.35
        fields = getattr(TrainingArguments, "__dataclass_fields__", {})
        base["use_cpu" if "use_cpu" in fields else "no_cuda"] = True
    done: list[str] = []
    notes: list[str] = []
    for dotted, given in _requests(ctx):
        kw = {**base, **given, "output_dir": ctx.workdir}  # a probe writes only to its own folder
        if ctx.device != "cuda":
            dropped = sorted(k for k in _PRECISION if kw.pop(k, None))
            if dropped:
                notes.append(f"{', '.join(dropped)} dropped on the CPU")
        try:
            cls = _class(dotted)
            obj, via_compat = _construct(cls, kw)
        except (TypeError, ValueError, ImportError, AttributeError) as e:
            return Outcome.failed(f"{dotted.rpartition('.')[2]}(...): {type(e).__name__}: {e}",
                                  keywords=sorted(kw), given=sorted(given))
        done.append(f"{type(obj).__name__}({len(kw)} keywords)")
        if via_compat:
            notes.append(f"{type(obj).__name__} needed envdoctor.compat: {via_compat}")
    reason = ", ".join(done) + (f"; {'; '.join(notes)}" if notes else "")
    return Outcome.passed(reason, notes=notes)
