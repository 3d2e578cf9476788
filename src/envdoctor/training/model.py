"""Load the base model (NF4 on CUDA, plain on CPU), add LoRA, and put it in training mode with the levers on."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .fast import Levers, apply_kernels, compile_layers, set_checkpointing
from .kinds import Device, Dtype, Quantize

TORCH_DTYPES: dict[Dtype, str] = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def torch_dtype(name: Dtype) -> Any:
    """The torch dtype for 'bf16' | 'fp16' | 'fp32'."""
    import torch

    return getattr(torch, TORCH_DTYPES[name])


def load_base(model_ref: str, *, quantize: Quantize, dtype: Dtype, device: Device, attn: str = "sdpa",
              device_index: int = 0, quant_storage: Dtype | None = None) -> Any:
    """The pretrained causal LM: NF4 with double quantisation when `quantize == 'nf4'`, else in `dtype`.

    `device_index` is this rank's GPU (LOCAL_RANK): under DDP each process holds the whole NF4 base on its own
    device. `quant_storage` packs the NF4 codes in that dtype, which FSDP needs to shard them alongside the
    other weights (https://huggingface.co/docs/bitsandbytes/main/en/fsdp_qlora).
    """
    from transformers import AutoModelForCausalLM

    from .. import compat

    kw: dict[str, Any] = {"dtype": torch_dtype(dtype), "attn_implementation": attn}
    if quantize == "nf4":
        from transformers import BitsAndBytesConfig

        kw["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch_dtype(dtype),
            **({"bnb_4bit_quant_storage": torch_dtype(quant_storage)} if quant_storage else {}))
        kw["device_map"] = {"": device_index}
    try:
        # compat renames dtype= to torch_dtype= for transformers < 4.56 (where dtype= was silently ignored)
        model = compat.call(AutoModelForCausalLM.from_pretrained, model_ref, **kw)
    except OSError as e:
        raise ConfigError(f"model {model_ref!r}: cannot be loaded ({e})") from e
    if quantize != "nf4":
        model.to(f"cuda:{device_index}" if device == "cuda" else device)
    model.config.use_cache = False
    return model


def freeze_base(model: Any, levers: Levers) -> None:
    """Freeze every base weight; without keep_bf16, upcast norms/embeddings to fp32 as peft's prepare does."""
    import torch

    for p in model.parameters():
        p.requires_grad_(False)
    if not levers.keep_bf16:
        for p in model.parameters():
            if p.dtype in (torch.float16, torch.bfloat16):
                p.data = p.data.float()


def add_lora(model: Any, r: int, alpha: int, dropout: float, targets: list[str]) -> Any:
    """Wrap the model with LoRA adapters (fp32 weights; the step runs them under autocast). `targets` [ALL_LINEAR]
    is peft's own "all-linear": every linear layer but the output head."""
    from peft import LoraConfig, get_peft_model

    from .memory import ALL_LINEAR

    every = targets == [ALL_LINEAR]
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [] if every else [t for t in targets if t not in present]
    if missing:
        raise ConfigError(f"lora_targets: {', '.join(missing)} not found in the model "
                          f"(it has e.g. {', '.join(sorted(n for n in present if n.endswith('proj'))[:8])}; "
                          f"or {ALL_LINEAR})")
    cfg = LoraConfig(r=r, lora_alpha=alpha, target_modules=ALL_LINEAR if every else list(targets),
                     lora_dropout=dropout, bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, cfg)


def model_on_cuda(model: Any) -> bool:
    """Whether the model's weights live on a CUDA device."""
    return any(p.is_cuda for p in model.parameters())


def prepare(model: Any, *, checkpointing: bool, checkpoint_layers: int | None, levers: Levers) -> list[str]:
    """Checkpointing, fused kernels and training mode; returns one note per lever actually applied."""
    notes: list[str] = []
    if levers.kernels:
        ok, why = apply_kernels(model)
        notes.append(why if ok else f"fused kernels off: {why}")
    n = set_checkpointing(model, checkpointing, checkpoint_layers, preserve_rng_state=not levers.graphs)
    if checkpointing:
        notes.append(f"gradient checkpointing on {n} layers" if n >= 0 else "gradient checkpointing on")
    if levers.compile:  # dynamo traces bitsandbytes' ops, not the lean path's direct calls: one or the other
        ok, why = compile_layers(model)
        notes.append(why)
    elif levers.lean:
        from .lean import apply_lean

        ok, why = apply_lean(model, levers.dequant_blocks, levers.fused_lora, levers.resident,
                              levers.shared_input)
        if ok or model_on_cuda(model):
            notes.append(why)
    if levers.varlen:
        from .varlen import use_varlen

        notes.append(use_varlen(model).note)
    # from_pretrained returns eval mode, where checkpointing and dropout silently do nothing
    model.train()
    return notes


def graph_seeds(model: Any, levers: Levers) -> tuple[Any, str]:
    """For CUDA graphs: the dropout counter, with every LoRA dropout made counter-based; (None, why) when not."""
    if not levers.graphs:
        return None, ""
    if levers.compile or not levers.lean or not levers.fused_loss:
        return None, "CUDA graphs off: they need the lean NF4 path and the fused loss"
    if not model_on_cuda(model):
        return None, "CUDA graphs off: the model is not on a CUDA device"
    try:
        import triton  # noqa: F401
    except Exception as e:
        return None, f"CUDA graphs off: triton is not importable ({type(e).__name__})"
    from .dropout import DropoutSeeds, use_hash_dropout

    device = next(p.device for p in model.parameters() if p.is_cuda)
    seeds = DropoutSeeds(device)
    ok, why = use_hash_dropout(model, seeds)
    return (seeds, why) if ok else (None, f"CUDA graphs off: {why}")
