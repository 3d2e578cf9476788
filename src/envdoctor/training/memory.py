"""Peak GPU memory of a QLoRA or GaLore training step, from the model's config alone (no torch).

The estimate is the sum of named parts (weights, trainable state, saved activations, logits, transients), each
a count of tensors times their bytes. The per-token coefficients were calibrated against
`torch.cuda.max_memory_allocated` on an H200 (see benchmarks/trainer_NOTES.md); what the allocator reserves
on top (fragmentation) is the planner's business, not the estimator's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .kinds import Method

GiB = 2**30
ALL_LINEAR = "all-linear"  # peft's shorthand for LoRA targets: every linear layer but the output head
NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)  # 4-bit codes + 8-bit absmax per 64 + fp32 per 256 absmax blocks
PAGED_MIN_NUMEL = 100_000  # bitsandbytes pages optimizer state only for tensors at least this large

# Tensors kept for backward per token, in bytes per element of the named width (bf16 = 2). Counted from what
# autograd saves (a frozen NF4 linear keeps no input: bitsandbytes saves only the quantised weight) and checked
# on an H200 (benchmarks/trainer_NOTES.md, run 1: 181 KB measured vs 185 KB counted per token and layer).
# RMSNorm: HF keeps an fp32 copy of its input (4); liger keeps the bf16 input (2).
NORM_BYTES = {"hf": 4.0, "fused": 2.0}
# SwiGLU/GeGLU MLP: HF keeps gate, act(gate), up (3 tensors); liger keeps gate and up.
MLP_BYTES = {"hf": 6.0, "fused": 4.0}
# bf16 logits, their fp32 copy, the fp32 log-softmax and its gradient around the loss, per vocabulary entry
# (fitted: 11.2-11.7 from the GaLore runs at 1024/2048/4096 tokens, run 3 of trainer_NOTES.md)
LOGIT_BYTES = 11.5
# GaLore's optimizer step needs room beyond the gradients: fitted at 1.3x the largest gradient (the embedding)
GALORE_STEP_FACTOR = 1.3
LOSS_CHUNK_BYTES = 6.0  # the fused loss: one chunk of bf16 logits + its fp32 copy


def loss_chunk(vocab: int) -> int:
    """Tokens per chunk of the fused loss: about 64 M logits at a time (384 MiB at 6 bytes each), at least 128."""
    return max(128, min(4096, 2 ** ((2**26 // max(vocab, 1)).bit_length() - 1)))


@dataclass(frozen=True)
class ModelShape:
    """The sizes of a decoder-only transformer that decide its memory."""

    name: str
    vocab: int
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    tied: bool = False
    norms_per_layer: int = 2
    qk_norm: bool = False  # RMSNorm on queries and keys (Gemma 3, Qwen 3)

    @property
    def attn_width(self) -> int:
        """Width of the queries (and of the attention output)."""
        return self.heads * self.head_dim

    @property
    def kv_width(self) -> int:
        """Width of the keys and values (grouped-query attention)."""
        return self.kv_heads * self.head_dim

    def targets(self, names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        """LoRA or GaLore target names as the estimate counts them: ALL_LINEAR is every projection of a layer."""
        return tuple(self.linear_shapes()) if list(names) == [ALL_LINEAR] else tuple(names)

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each projection of one layer, by the usual HF module names."""
        h, a, kv, i = self.hidden, self.attn_width, self.kv_width, self.intermediate
        return {"q_proj": (h, a), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (a, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    @property
    def linear_params(self) -> int:
        """Parameters of every decoder projection (what NF4 quantises)."""
        return self.layers * sum(i * o for i, o in self.linear_shapes().values())

    @property
    def embedding_params(self) -> int:
        """Embedding and head parameters (one matrix when tied)."""
        return self.vocab * self.hidden * (1 if self.tied else 2)

    @property
    def total_params(self) -> int:
        """Projections, embeddings and norms."""
        return self.linear_params + self.embedding_params + self.layers * self.norms_per_layer * self.hidden


def shape_from_config(cfg: dict[str, Any], name: str = "model") -> ModelShape:
    """A ModelShape from a HF config.json dict (text config of multimodal models included)."""
    c = cfg.get("text_config") or cfg
    try:
        hidden = int(c["hidden_size"])
        heads = int(c["num_attention_heads"])
        shape = ModelShape(
            name=name, vocab=int(c["vocab_size"]), hidden=hidden,
            intermediate=int(c["intermediate_size"]), layers=int(c["num_hidden_layers"]), heads=heads,
            kv_heads=int(c.get("num_key_value_heads") or heads),
            head_dim=int(c.get("head_dim") or hidden // heads),
            tied=bool(cfg.get("tie_word_embeddings", c.get("tie_word_embeddings", False))),
            norms_per_layer=4 if str(c.get("model_type", "")).startswith("gemma") else 2,
            qk_norm=str(c.get("model_type", "")) in ("gemma3", "gemma3_text", "qwen3", "olmo2"),
        )
    except KeyError as e:
        raise ConfigError(f"model config {name}: missing key {e.args[0]!r} (need a decoder-only HF config.json)") from e
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model config {name}: {e}") from e
    return shape


def load_shape(ref: str) -> ModelShape:
    """A ModelShape from a known name (`llama-3.1-8b`), a config.json, or a model folder holding one."""
    if ref.lower() in KNOWN_SHAPES:
        return KNOWN_SHAPES[ref.lower()]
    p = Path(ref)
    if p.is_dir():
        p = p / "config.json"
    if not p.is_file():
        raise ConfigError(f"--model {ref}: neither a config.json/model folder nor a known shape "
                          f"({', '.join(KNOWN_SHAPES)})")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{p}: not a readable JSON config ({e})") from e
    return shape_from_config(data, name=str(p))


KNOWN_SHAPES: dict[str, ModelShape] = {
    "llama-3.1-8b": ModelShape("llama-3.1-8b", 128256, 4096, 14336, 32, 32, 8, 128),
    "llama-3.2-1b": ModelShape("llama-3.2-1b", 128256, 2048, 8192, 16, 32, 8, 64, tied=True),
    "gemma-3-1b": ModelShape("gemma-3-1b", 262144, 1152, 6912, 26, 4, 1, 256, tied=True, norms_per_layer=4,
                             qk_norm=True),
}


@dataclass(frozen=True)
class RunShape:
    """What the step does: method, batch, sequence, adapters or projections, and which levers are on."""

    method: Method  # "lora": a full-precision base (the CPU path)
    batch: int
    seq: int
    checkpointing: bool = True
    checkpoint_layers: int | None = None  # with checkpointing: only this many layers checkpointed
    lora_r: int = 64
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    lora_dropout: float = 0.1
    galore_rank: int = 128
    galore_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    fused_loss: bool = False
    fused_kernels: bool = False
    upcast_non_quantized: bool = False  # peft's prepare_model_for_kbit_training: norms/embeddings in fp32
    # an explicit (block-diagonal) mask reaches SDPA: packed rows off the varlen path (CPU, ENVDOCTOR_VARLEN=0, a
    # model varlen does not cover); HF then repeats k/v to every head. Packed rows through flash varlen: False
    packed: bool = False
    param_bytes: int = 2  # bf16/fp16 base weights (GaLore, LoRA); 4 for fp32 (CPU, or GaLore under fp16)
    grad_accum: int = 1  # micro-batches per optimizer step: >1 keeps full gradients alive across forwards
    shards: int = 1  # FSDP: weights, gradients and optimizer state split over this many GPUs
    counter_dropout: bool = False  # LoRA dropout through dropout.DropLinear (CUDA graphs): no per-adapter copies
    resident_weights: bool = False  # QLoRA: the NF4 weights also kept dequantised, 2 bytes each (lean.apply_lean)


@dataclass(frozen=True)
class Estimate:
    """Peak allocated bytes of one training step, by part; `total` is what max_memory_allocated should read."""

    parts: dict[str, int] = field(default_factory=dict)
    paged: int = 0  # optimizer state in paged (managed) memory: on the GPU, but outside torch's allocator
    static: int = 0  # of the total: weights and optimizer state, allocated once (no fragmentation)

    @property
    def total(self) -> int:
        """The sum of the parts: the peak allocated bytes."""
        return sum(self.parts.values())

    def gib(self) -> float:
        """The total in GiB."""
        return self.total / GiB


def _trainable_lora(shape: ModelShape, run: RunShape) -> tuple[int, int]:
    """(all LoRA parameters, those bitsandbytes would page) for the run's targets."""
    lin = shape.linear_shapes()
    total = paged = 0
    for t in run.lora_targets:
        if t not in lin:
            continue
        i, o = lin[t]
        for n in (run.lora_r * i, run.lora_r * o):
            total += n
            paged += n if n >= PAGED_MIN_NUMEL else 0
    return total * shape.layers, paged * shape.layers


def _activations_per_token_layer(shape: ModelShape, run: RunShape, on_gpu: bool = True) -> float:
    """Bytes kept for backward per token in one decoder layer without checkpointing."""
    k = "fused" if run.fused_kernels else "hf"
    w = 4 if run.upcast_non_quantized or run.param_bytes == 4 else 2  # width of the residual stream
    h, a, kv, i = shape.hidden, shape.attn_width, shape.kv_width, shape.intermediate
    # a trained norm weight (GaLore) makes HF's norm keep its fp32 output too
    per_norm = NORM_BYTES[k] * (w / 2 if k == "fused" else 1) + (4 if k == "hf" and run.method == "galore" else 0)
    norms = per_norm * (shape.norms_per_layer * h + (a + kv if shape.qk_norm else 0))
    kv_kept = a if run.packed else kv  # with a mask, HF repeats k/v to all heads before SDPA
    attn = w * (a + 2 * kv_kept + a) + 4 * shape.heads  # q, k, v after RoPE, attention output, log-sum-exp
    mlp = MLP_BYTES[k] * i * w / 2
    # a plain (not NF4) linear keeps its input: the normed hidden (twice), attention output, act*up
    inputs = 0 if run.method == "qlora" else w * (2 * h + a + i)
    lora = 0.0
    if run.method == "qlora" and run.counter_dropout and run.lora_dropout > 0 and on_gpu:
        # DropLinear saves A's input, not dropout(x): the layer keeps the attention output anyway; the normed
        # hiddens feeding q/k/v (and gate/up) and down's input are kept once per group, in bf16. Measured on an
        # H200 (trainer_NOTES.md, issue 17): 103 KB a token and layer for r 64 on q/k/v/o of Llama-3.1-8B
        # against 144 with nn.Dropout, which is what this gives
        groups = ((("q_proj", "k_proj", "v_proj"), h), (("gate_proj", "up_proj"), h), (("down_proj",), i))
        lora = sum(2 * width for names, width in groups if set(names) & set(run.lora_targets))
        lora += sum(w * run.lora_r for t in run.lora_targets if t in shape.linear_shapes())
    elif run.method in ("qlora", "lora"):
        lin = shape.linear_shapes()
        # each adapter keeps its own copy of its input (autocast's bf16 cast), the dropout mask (1 byte), and
        # the rank-r middle; without dropout and autocast (fp32 on a CPU) it shares the layer's input
        per_in = (2 if on_gpu else 0) + (1 if run.lora_dropout > 0 else 0) + (w if run.lora_dropout > 0 and not on_gpu else 0)
        lora = sum(per_in * lin[t][0] + w * run.lora_r for t in run.lora_targets if t in lin)
    return norms + attn + mlp + inputs + lora


def estimate(shape: ModelShape, run: RunShape) -> Estimate:
    """The peak allocated memory of one step of `run` on `shape`, by part."""
    parts, paged = _static_parts(shape, run)
    step = _step_parts(shape, run)
    if run.shards > 1:
        parts, paged, step = _sharded(shape, run, parts, paged, step)
    static = sum(parts.values())
    parts.update(step)
    return Estimate(parts=parts, paged=paged, static=static)


def _sharded(shape: ModelShape, run: RunShape, parts: dict[str, int], paged: int,
             step: dict[str, int]) -> tuple[dict[str, int], int, dict[str, int]]:
    """FSDP: each GPU keeps 1/shards of the weights, gradients and optimizer state, plus what is gathered.

    Gathered: the root's parameters (embeddings, head, final norm) for the whole step, and two decoder layers
    at a time (the one running and the one prefetched). Not calibrated on a GPU yet.
    """
    n = run.shards
    out = {f"{k} (1/{n} shard)": v // n for k, v in parts.items()}
    layer_params = shape.linear_params // shape.layers
    per_param = NF4_BYTES if run.method == "qlora" else run.param_bytes
    emb_bytes = 4 if run.upcast_non_quantized else run.param_bytes
    out["gathered: embeddings + head (root)"] = shape.embedding_params * emb_bytes * (n - 1) // n
    out["gathered: 2 decoder layers"] = int(2 * layer_params * per_param)
    grads = {"gradients", "gradients (accumulated)"}
    return out, paged // n, {k: (v // n if k in grads else v) for k, v in step.items()}


def _static_parts(shape: ModelShape, run: RunShape) -> tuple[dict[str, int], int]:
    """Weights and optimizer state, allocated once: (parts, optimizer state paged outside the allocator)."""
    parts: dict[str, int] = {}
    paged = 0
    emb_bytes = 4 if run.upcast_non_quantized else run.param_bytes
    if run.method == "qlora":
        parts["base weights (NF4, double quant)"] = int(shape.linear_params * NF4_BYTES)
        if run.resident_weights:
            parts["base weights dequantised once (bf16/fp16)"] = shape.linear_params * 2
        parts["embeddings + head"] = shape.embedding_params * emb_bytes
        n, n_paged = _trainable_lora(shape, run)
        parts["LoRA weights + grads (fp32)"] = n * 8
        parts["optimizer state (in allocator)"] = (n - n_paged) * 8
        paged = n_paged * 8
    elif run.method == "lora":
        parts["base weights"] = (shape.linear_params + shape.embedding_params) * run.param_bytes
        n, _ = _trainable_lora(shape, run)
        parts["LoRA weights + grads + AdamW (fp32)"] = n * 16
    elif run.method == "galore":
        total = shape.total_params
        parts["weights"] = total * run.param_bytes
        lin = shape.linear_shapes()
        proj = 0
        dense = total
        for t in run.galore_targets:
            if t not in lin:
                continue
            i, o = lin[t]
            r = min(run.galore_rank, i, o)
            # 8-bit exp_avg + exp_avg_sq of the projected gradient, and the projection matrix in bf16
            proj += shape.layers * (2 * r * max(i, o) + 2 * r * min(i, o))
            dense -= shape.layers * i * o
        parts["GaLore projected state + projections"] = proj
        parts["8-bit AdamW state (other params)"] = dense * 2
    else:
        raise ConfigError(f"method {run.method!r}: expected qlora, galore or lora")
    return parts, paged


def _step_parts(shape: ModelShape, run: RunShape) -> dict[str, int]:
    """What one step allocates on top: saved activations, logits, gradients in flight (the larger phase)."""
    tokens = run.batch * run.seq
    per_layer = _activations_per_token_layer(shape, run) * tokens
    width = 4 if run.upcast_non_quantized else 2
    act: dict[str, int] = {}
    if run.checkpointing:
        n_ckpt = shape.layers if run.checkpoint_layers is None else min(run.checkpoint_layers, shape.layers)
        act["saved activations"] = int(n_ckpt * shape.hidden * width * tokens + (shape.layers - n_ckpt) * per_layer)
        act["recomputed layer"] = int(per_layer) if n_ckpt else 0
    else:
        act["saved activations"] = int(shape.layers * per_layer)
    if run.fused_loss:
        chunk = min(tokens, loss_chunk(shape.vocab))
        act["logits (one chunk)"] = int(chunk * shape.vocab * LOSS_CHUNK_BYTES + tokens * shape.hidden * 2)
    else:
        act["logits + loss"] = int(tokens * shape.vocab * (LOGIT_BYTES + (2 if run.upcast_non_quantized else 0)))
    act["embedding output + grads in flight"] = int(3 * tokens * shape.hidden * width)
    if run.method == "galore" and run.param_bytes == 4:
        # fp32 weights under fp16 autocast (the T4 path): autocast caches the fp16 copy of every weight a matmul
        # casts, for the whole forward. A checkpointed layer saves nothing else of it, so its copies are extra;
        # the head's copy lives through the loss. Measured on the H200 (2026-12-01, Gemma-3-1B, T4 plans): without
        # this term the chosen plan (21 of 26 layers checkpointed) read -14 % (11.38 GiB against 13.26).
        n_ckpt = 0 if not run.checkpointing else (
            shape.layers if run.checkpoint_layers is None else min(run.checkpoint_layers, shape.layers))
        act["autocast fp16 weight copies"] = int(2 * (shape.linear_params * n_ckpt / shape.layers
                                                      + shape.embedding_params))
    if run.method == "galore":
        head = shape.vocab * shape.hidden * run.param_bytes
        act["head gradient"] = head  # made at the loss, before any other gradient
        if run.grad_accum > 1:
            # Issue 16: with accumulation every gradient of the previous micro-batches lives through the next
            # forward and backward. Gemma-3-1B, T4 plan (fp32 weights, batch 1 x 4, seq 2048, 3 layers
            # checkpointed) was estimated at 12.25 GiB without this term and peaked at 15.91 GiB; with it, 15.96.
            act["gradients (accumulated)"] = shape.total_params * run.param_bytes
        # the other phase: every gradient at the end of backward, then the optimizer step's transients
        step = {"gradients": shape.total_params * run.param_bytes, "optimizer step": int(GALORE_STEP_FACTOR * head)}
        if sum(step.values()) > sum(act.values()):
            act = step
    return act
