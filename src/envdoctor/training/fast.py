"""The trainer's fast path: chunked linear + cross-entropy, fused kernels, selective checkpointing.

Imported only by the training loop and the benchmark (it imports torch). Each lever is a function that
reports what it did, so the plan can show it and the benchmark can measure it on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .kinds import Outcome
from .loss_rows import IGNORE_INDEX, rows_for
from .memory import loss_chunk


@dataclass(frozen=True)
class Levers:
    """Which fast-path levers are on; `describe()` is what the plan prints."""

    fused_loss: bool = True       # chunked/fused lm_head + cross-entropy: no fp32 logits of the vocabulary
    kernels: bool = True          # liger-kernel RMSNorm, RoPE, SwiGLU when it imports
    keep_bf16: bool = True        # no fp32 upcast of norms/embeddings (prepare_model_for_kbit_training does that)
    checkpoint_layers: int | None = None  # None: every layer when checkpointing is on; k: only the first k
    compile: bool = False         # torch.compile each decoder layer (CUDA + triton only); excludes `lean`
    lean: bool = True             # lean NF4 + LoRA forwards (training/lean.py): less host work per matmul
    graphs: bool = False          # CUDA graphs of forward + backward (training/graphs.py): needs lean + fused loss
    varlen: bool = False          # packed documents through flash attention's varlen kernel (training/varlen.py)
    dequant_blocks: int = 1       # lean: large NF4 weights dequantised in this many row blocks (less memory)
    fused_lora: bool = True       # lean: a LoRA linear and its base in one autograd step (training/lora_fused.py)
    resident: bool = False        # lean: NF4 weights dequantised once and kept (bf16/fp16; memory to spare)
    shared_input: bool = True     # lean + fused_lora: q/k/v and gate/up in one autograd step each (one input grad)

    def describe(self) -> str:
        """The levers that are on, e.g. 'fused-loss, liger-kernels, bf16-residual, lean-nf4'."""
        on = [name for name, v in (("fused-loss", self.fused_loss), ("liger-kernels", self.kernels),
                                   ("bf16-residual", self.keep_bf16), ("compiled-layers", self.compile),
                                   ("lean-nf4", self.lean and not self.compile),
                                   ("fused-lora", self.lean and not self.compile and self.fused_lora),
                                   ("kept-weights", self.lean and not self.compile and self.resident),
                                   ("shared-input", self.lean and not self.compile and self.fused_lora
                                    and self.shared_input),
                                   ("cuda-graphs", self.graphs), ("varlen-attn", self.varlen)) if v]
        if self.checkpoint_layers is not None:
            on.append(f"checkpoint {self.checkpoint_layers} layers")
        return ", ".join(on) or "off"



class _ChunkedLinearCE(torch.autograd.Function):
    """Mean cross-entropy of (hidden @ weight.T) against labels, one chunk of tokens at a time.

    The gradient for `hidden` (and `weight`, if it trains) is computed during the forward pass, so the logits
    are never stored: at most one chunk of logits lives at a time. Each chunk's loss and logits' gradient come
    from loss_rows: on CUDA for bf16/fp16 one Triton kernel writes the gradient over the chunk's logits (no fp32
    copy); elsewhere the torch reference, through one fp32 copy of the chunk. 1 / n is a device tensor and
    nothing reads a device value on the host, so the whole loss can be captured in a CUDA graph.
    """

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor,
                chunk: int, scale: float) -> torch.Tensor:
        n_valid = (labels != IGNORE_INDEX).sum().clamp(min=1)
        need_h = hidden.requires_grad
        need_w = weight.requires_grad
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros_like(weight) if need_w else None
        acc = torch.promote_types(weight.dtype, torch.float32)  # fp32 for bf16/fp16 weights, fp64 stays fp64
        inv_n = n_valid.to(acc).reciprocal()  # on the device: no host sync (CUDA graphs)
        total = torch.zeros((), dtype=acc, device=hidden.device)
        for start in range(0, hidden.shape[0], chunk):
            h = hidden[start:start + chunk]
            logits = h @ weight.t()
            part, g = rows_for(logits)(logits, labels[start:start + chunk], scale, inv_n, need_h or need_w)
            total += part
            del logits
            if g is not None:
                g = g.to(weight.dtype)  # already so, unless autocast made the logits of an fp32 head bf16
                if grad_h is not None:
                    torch.matmul(g, weight, out=grad_h[start:start + chunk])
                if grad_w is not None:
                    grad_w.addmm_(g.t(), h)
                del g
        ctx.save_for_backward(*(t for t in (grad_h, grad_w) if t is not None))
        ctx.has = (need_h, need_w)
        ctx.dtypes = (hidden.dtype, weight.dtype)
        return total / n_valid

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        saved = list(ctx.saved_tensors)
        need_h, need_w = ctx.has
        gh = saved.pop(0) * grad_out.to(ctx.dtypes[0]) if need_h else None
        gw = (saved.pop(0) * grad_out).to(ctx.dtypes[1]) if need_w else None
        return gh, gw, None, None, None


def chunked_linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor,
                                 chunk: int | None = None, scale: float = 1.0) -> torch.Tensor:
    """Mean token cross-entropy of a linear head without materialising the full logits."""
    return _ChunkedLinearCE.apply(hidden, weight, labels, chunk or loss_chunk(weight.shape[0]), scale)


def _liger_loss() -> Any | None:
    try:
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss
    except Exception:  # not installed, or its triton does not match this torch
        return None
    return LigerFusedLinearCrossEntropyLoss(ignore_index=IGNORE_INDEX, reduction="mean")


def shift_labels(labels: torch.Tensor) -> torch.Tensor:
    """Next-token targets: position t predicts token t+1; the last position predicts nothing."""
    pad = torch.full_like(labels[:, :1], IGNORE_INDEX)
    return torch.cat([labels[:, 1:], pad], dim=1)


def causal_lm_loss(model: Any, input_ids: torch.Tensor, labels: torch.Tensor,
                   position_ids: torch.Tensor | None = None, fused: bool = True,
                   loss_impl: list[Any] | None = None, chunk: int | None = None,
                   cu_seqlens: torch.Tensor | None = None, max_len: int | None = None) -> torch.Tensor:
    """The mean next-token loss of a (PEFT-wrapped) causal LM; `fused` avoids materialising the logits.

    `cu_seqlens` (varlen.cu_seqlens) tells a varlen attention where the packed documents start, `max_len` how
    long the longest can be (None: the row)."""
    docs: dict[str, Any] = {}
    if cu_seqlens is not None:  # transformers' flash-attention keywords
        t = max_len or input_ids.shape[1]
        docs = {"cu_seq_lens_q": cu_seqlens, "cu_seq_lens_k": cu_seqlens, "max_length_q": t, "max_length_k": t}
    if not fused:
        return model(input_ids=input_ids, labels=labels, position_ids=position_ids, use_cache=False, **docs).loss
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = base.get_decoder()
    head = base.get_output_embeddings()
    out = decoder(input_ids=input_ids, position_ids=position_ids, use_cache=False, **docs)
    hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
    flat = hidden.reshape(-1, hidden.shape[-1])
    targets = shift_labels(labels).reshape(-1)
    weight = head.weight
    if flat.dtype != weight.dtype:
        flat = flat.to(weight.dtype)
    impl = loss_impl[0] if loss_impl else None
    if impl is not None and flat.is_cuda:
        return impl(weight, flat, targets)
    return chunked_linear_cross_entropy(flat, weight, targets, chunk)


def fused_loss_supported(model: Any) -> Outcome:
    """Whether the fused loss computes the same function as the model's own head (no softcapping, no bias)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    cfg = getattr(base, "config", None)
    text_cfg = cfg.get_text_config() if cfg is not None and hasattr(cfg, "get_text_config") else cfg
    if getattr(text_cfg, "final_logit_softcapping", None):
        return Outcome(False, "the model soft-caps its logits")
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    if head is None or getattr(head, "bias", None) is not None:
        return Outcome(False, "the model's head is not a plain bias-free linear layer")
    if not hasattr(base, "get_decoder"):
        return Outcome(False, "the model exposes no decoder")
    return Outcome(True, "")


def apply_kernels(model: Any) -> Outcome:
    """Patch the model's RMSNorm, RoPE and SwiGLU with liger-kernel's fused Triton kernels, when it imports."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    model_type = getattr(getattr(base, "config", None), "model_type", "")
    try:
        import liger_kernel.transformers as lk
    except Exception as e:
        return Outcome(False, f"liger-kernel is not importable ({type(e).__name__}: {e})")
    fn = getattr(lk, f"apply_liger_kernel_to_{model_type}", None)
    if fn is None:
        return Outcome(False, f"liger-kernel has no kernels for model type {model_type!r}")
    try:
        fn(rope=True, rms_norm=True, swiglu=True, cross_entropy=False,
           fused_linear_cross_entropy=False, model=base)
    except TypeError:  # gemma-style patchers name the MLP kernel geglu
        fn(rope=True, rms_norm=True, cross_entropy=False, fused_linear_cross_entropy=False, model=base)
    except Exception as e:
        return Outcome(False, f"liger-kernel could not patch {model_type!r} ({type(e).__name__}: {e})")
    return Outcome(True, f"liger-kernel fused kernels on {model_type}")


def decoder_blocks(model: Any) -> list[Any]:
    """The model's decoder layers (the modules HF checkpoints one by one), in order."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return [m for m in base.modules() if hasattr(m, "gradient_checkpointing")
            and m.__class__.__name__.endswith(("DecoderLayer", "Block"))]


def compile_layers(model: Any) -> Outcome:
    """torch.compile every decoder layer in place: one graph shared by all layers, the NF4 matmul included.

    bitsandbytes >= 0.45 registers its 4-bit ops with torch.library, so dynamo traces the whole layer (LoRA
    branch, norms, RoPE, SwiGLU) without a graph break; parameters are graph inputs, so the 32 layers share one
    compiled graph (two with selective checkpointing). Compilation happens lazily at the first step.
    """
    blocks = decoder_blocks(model)
    if not blocks:
        return Outcome(False, "compiled layers off: no decoder layers found")
    # checkpointed and plain layers, train and no-grad: a few variants of one graph, never one per layer
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 16)
    for b in blocks:
        b.compile()
    return Outcome(True, f"torch.compile on {len(blocks)} decoder layers")


def set_checkpointing(model: Any, enabled: bool, layers: int | None = None, preserve_rng_state: bool = True) -> int:
    """Turn on non-reentrant gradient checkpointing for all layers, or only the first `layers`; returns how many.

    `preserve_rng_state=False` when the layers draw no random numbers from the RNG state (counter-based dropout,
    graphs.py): the state cannot be saved inside a CUDA graph capture.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not enabled:
        if any(getattr(m, "gradient_checkpointing", False) is True for m in base.modules()):
            base.gradient_checkpointing_disable()
        return 0
    base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False,
                                                                      "preserve_rng_state": preserve_rng_state})
    blocks = decoder_blocks(base)
    if layers is None or not blocks:
        return len(blocks) or -1
    for i, block in enumerate(blocks):
        block.gradient_checkpointing = i < layers
    return min(layers, len(blocks))


def loss_impl(levers: Levers) -> list[Any]:
    """The loss kernel to use: liger's fused linear cross-entropy on CUDA if it imports, else the chunked one."""
    impl = _liger_loss() if levers.kernels else None
    return [impl] if impl is not None else []
