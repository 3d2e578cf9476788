"""Choose dtype, batch, accumulation, checkpointing and sequence length so that a run fits the GPU."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

from .._env.gpu import GpuInfo
from ..errors import ConfigError, DoesNotFitError
from .kinds import Device, Dtype, DtypeChoice, Method, Parallel, ParallelChoice, Quantize
from .memory import Estimate, GiB, ModelShape, RunShape, estimate

CUDA_CONTEXT = int(0.6 * GiB)  # CUDA context + cuBLAS workspaces: on the GPU, never in max_memory_allocated
# What the caching allocator reserves over the allocated peak, applied to the short-lived part of the estimate
# (activations, logits, gradients; weights and optimizer state are allocated once). The issue measured
# 1.2-1.8x reserved/allocated on the plain path (262k-vocabulary logits: large short-lived blocks); with the fused
# loss the H200 runs in benchmarks/trainer_NOTES.md stayed at 1.01-1.1x (default allocator). A plan must fit
# with this factor applied.
RESERVE_FACTOR = {"fused": 1.25, "plain": 1.5}
# Left free on every declared card on top of the reserve (issue 16: a plan must never OOM the card it was made
# for; the estimator is calibrated to -4 % ... +8 % on the measured paths, this covers the low side).
CARD_MARGIN = 0.04


@dataclass(frozen=True)
class Plan:
    """What the trainer will do, and why it fits."""

    method: Method
    device: Device
    dtype: Dtype  # compute (autocast) dtype
    param_dtype: Dtype  # dtype of the trained weights (GaLore) or the non-quantised base
    quantize: Quantize
    batch: int
    grad_accum: int
    seq: int
    checkpointing: bool
    checkpoint_layers: int | None
    fused_loss: bool
    fused_kernels: bool
    estimate: Estimate
    budget: int  # usable bytes on the GPU; 0 on CPU
    reserve_factor: float
    notes: tuple[str, ...] = ()
    world_size: int = 1  # data-parallel processes; the effective batch is batch x grad_accum x world_size
    loss_on: str = ""  # what carries loss (the data's masking), said in the plan
    parallel: Parallel = "none"  # ddp or fsdp under torchrun; none for one process
    run: RunShape | None = None  # what was estimated (benchmarks/calibrate_plans.py varies it and re-estimates)

    @property
    def planned_bytes(self) -> int:
        """What the plan needs on the GPU: the estimate with the allocator reserve and the CUDA context."""
        return planned(self.estimate, self.reserve_factor)


def graphs_allowed() -> bool:
    """CUDA graphs (and their counter-based dropout) unless ENVDOCTOR_GRAPHS=0, an A/B switch."""
    return os.environ.get("ENVDOCTOR_GRAPHS", "1") != "0"


def varlen_planned(device: Device) -> bool:
    """Whether packed documents are planned through flash attention's varlen kernel (training/varlen.py): on CUDA,
    unless ENVDOCTOR_VARLEN=0 (an A/B switch). Off it, packed rows reach SDPA with an explicit block-diagonal mask.
    runner.levers_for turns the lever on and runner.plan_run estimates by this one rule."""
    return device == "cuda" and os.environ.get("ENVDOCTOR_VARLEN", "1") != "0"


# what flash attention's varlen kernel takes (varlen.attention hands anything else to SDPA with its mask)
FLASH_HEAD_DIM_MAX = 256
FLASH_HEAD_DIM_MULTIPLE = 8
FLASH_DTYPES = ("bf16", "fp16")


def flash_takes_head_dim(d: int) -> bool:
    """Whether the varlen kernel takes a head size of `d`."""
    return d <= FLASH_HEAD_DIM_MAX and d % FLASH_HEAD_DIM_MULTIPLE == 0


def varlen_gaps(cfg_dict: dict[str, Any] | None, head_dim: int, compute: str) -> list[str]:
    """What of the model's attention varlen.attention hands back to SDPA with its mask (its per-call fallbacks, read
    off the config: attention dropout, a sliding window, soft-capped scores, a head size the kernel lacks, fp32);
    empty when the varlen kernel takes every layer."""
    c = (cfg_dict or {}).get("text_config") or cfg_dict or {}
    gaps = []
    if float(c.get("attention_dropout") or 0) > 0:
        gaps.append("attention dropout")
    if c.get("sliding_window") and c.get("use_sliding_window", True) is not False:  # Qwen2 keeps it but turns it off
        gaps.append("sliding-window attention")
    if c.get("attn_logit_softcapping"):
        gaps.append("soft-capped attention scores")
    if not flash_takes_head_dim(head_dim):
        gaps.append(f"head size {head_dim}")
    if compute not in FLASH_DTYPES:
        gaps.append(f"{compute} compute")
    return gaps


def choose_dtype(gpu: GpuInfo, requested: DtypeChoice = "auto") -> Dtype:
    """bf16 on compute capability >= 8.0, fp16 on older CUDA GPUs (a T4), fp32 on CPU."""
    if requested != "auto":
        if requested == "bf16" and gpu.available and gpu.cc is not None and gpu.cc < 8.0:
            raise ConfigError(f"dtype bf16: {gpu.name} (compute capability {gpu.cc}) has no bf16; use fp16")
        return requested
    if not gpu.available or gpu.kind != "cuda":
        return "fp32"
    return "bf16" if (gpu.cc or 0) >= 8.0 else "fp16"


def planned(est: Estimate, factor: float) -> int:
    """Bytes the plan must find on the GPU: static part, the rest times the reserve, paged state, CUDA context."""
    return int(est.static + (est.total - est.static) * factor + est.paged) + CUDA_CONTEXT


def _fits(run: RunShape, shape: ModelShape, factor: float, budget: int) -> tuple[bool, Estimate]:
    est = estimate(shape, run)
    return planned(est, factor) <= budget, est


def resident_allowed(run: RunShape, fast: bool, parallel: Parallel) -> bool:
    """Whether the plan may keep the NF4 weights dequantised in bf16 besides the codes (lean.apply_lean): QLoRA on
    the fast path, one copy of the weights per GPU (not FSDP), and no checkpointing (a plan short of memory)."""
    return run.method == "qlora" and fast and parallel != "fsdp" and not run.checkpointing


def with_run(plan: Plan, shape: ModelShape, **changes: object) -> Plan:
    """The plan with its RunShape changed (batch, grad_accum, checkpointing, ...) and estimated again."""
    if plan.run is None:
        raise ValueError("with_run: the plan has no RunShape")
    r = replace(plan.run, **changes)  # type: ignore[arg-type]
    return replace(plan, batch=r.batch, grad_accum=r.grad_accum, seq=r.seq, checkpointing=r.checkpointing,
                   checkpoint_layers=r.checkpoint_layers, fused_loss=r.fused_loss, fused_kernels=r.fused_kernels,
                   estimate=estimate(shape, r), run=r)


def accumulation(effective_batch: int, batch: int, world_size: int = 1) -> int:
    """Micro-batches per optimizer step so that batch x accumulation x world_size reaches the effective batch."""
    return max(1, -(-effective_batch // (batch * world_size)))


def gpu_budget(gpu: GpuInfo, max_memory_gib: float | None = None) -> tuple[int, str]:
    """(usable bytes, what they are): the card less CARD_MARGIN, or --max-memory-gib when that is smaller."""
    card = int(gpu.memory_total_bytes * (1 - CARD_MARGIN))
    if max_memory_gib is not None and max_memory_gib * GiB < card:
        return int(max_memory_gib * GiB), f"--max-memory-gib {max_memory_gib:g}"
    return card, f"{gpu.name or 'the GPU'} ({gpu.memory_total_bytes / GiB:.1f} GiB, {CARD_MARGIN:.0%} kept free)"


def make_plan(shape: ModelShape, gpu: GpuInfo, run: RunShape, *, effective_batch: int, dtype: DtypeChoice = "auto",
              fixed_batch: int | None = None, fixed_checkpointing: bool | None = None,
              fixed_seq: bool = False, fast: bool = True, kernels: bool | None = None,
              max_memory_gib: float | None = None, world_size: int = 1, parallel: ParallelChoice = "auto") -> Plan:
    """The fastest plan that fits: fewest checkpointed layers first, then the largest batch, then shorter sequences.

    With several processes: DDP (a whole model per GPU), or FSDP when asked or when nothing fits one GPU
    (`auto`). Raises DoesNotFitError when nothing fits the card (or `max_memory_gib`, per GPU).
    """
    if world_size > 1 and parallel != "fsdp":
        try:
            return _make_plan(shape, gpu, run, effective_batch, dtype, fixed_batch, fixed_checkpointing, fixed_seq,
                              fast, kernels, max_memory_gib, world_size, "ddp")
        except DoesNotFitError:
            if parallel == "ddp" or run.method == "galore" or not (gpu.available and gpu.kind == "cuda"):
                raise
        plan = _make_plan(shape, gpu, run, effective_batch, dtype, fixed_batch, fixed_checkpointing, fixed_seq,
                          fast, kernels, max_memory_gib, world_size, "fsdp")
        return replace(plan, notes=(*plan.notes, f"FSDP: the model does not fit one GPU; weights sharded over "
                                                 f"{world_size}"))
    return _make_plan(shape, gpu, run, effective_batch, dtype, fixed_batch, fixed_checkpointing, fixed_seq, fast,
                      kernels, max_memory_gib, world_size, "fsdp" if world_size > 1 else "none")


def _make_plan(shape: ModelShape, gpu: GpuInfo, run: RunShape, effective_batch: int, dtype: DtypeChoice,
               fixed_batch: int | None, fixed_checkpointing: bool | None, fixed_seq: bool, fast: bool,
               kernels: bool | None, max_memory_gib: float | None, world_size: int, parallel: Parallel) -> Plan:
    if parallel == "fsdp" and run.method == "galore":
        raise ConfigError("parallel = fsdp: GaLore projects whole gradients (an SVD per matrix), not shards; "
                          "use ddp or one GPU")
    cdtype = choose_dtype(gpu, dtype)
    cuda = gpu.available and gpu.kind == "cuda"
    method: Method = run.method if cuda or run.method != "qlora" else "lora"
    param_dtype: Dtype = cdtype if cdtype == "bf16" or method == "qlora" else "fp32"  # fp16 masters are unstable
    # counter-based LoRA dropout comes with CUDA graphs: one process, bf16, the fused loss (runner.levers_for)
    counter = run.counter_dropout and method == "qlora" and cuda and cdtype == "bf16" and fast and world_size == 1
    run = replace(run, method=method, fused_loss=fast, fused_kernels=(fast if kernels is None else kernels) and cuda,
                  param_bytes=2 if param_dtype in ("bf16", "fp16") else 4,
                  shards=world_size if parallel == "fsdp" else 1, counter_dropout=counter)
    notes: list[str] = []
    if method == "lora" and run.method != "qlora":
        notes.append("no CUDA GPU: LoRA on a full-precision base instead of NF4 (QLoRA needs CUDA)")
    factor = RESERVE_FACTOR["fused" if fast else "plain"]
    per_rank = max(1, -(-effective_batch // world_size))

    def done(r: RunShape, est: Estimate, budget: int) -> Plan:
        return Plan(r.method, "cuda" if cuda else "cpu", cdtype, param_dtype, "nf4" if r.method == "qlora" else "none",
                    r.batch, r.grad_accum, r.seq, r.checkpointing, r.checkpoint_layers,
                    r.fused_loss, r.fused_kernels, est, budget, factor, tuple(notes), world_size, parallel=parallel,
                    run=r)

    if not cuda:
        batch = fixed_batch or min(per_rank, 4)
        ck = bool(fixed_checkpointing)
        r = replace(run, batch=batch, checkpointing=ck, checkpoint_layers=None,
                    grad_accum=accumulation(effective_batch, batch, world_size))
        return done(r, estimate(shape, r), 0)

    budget, what = gpu_budget(gpu, max_memory_gib)
    batches = [fixed_batch] if fixed_batch else [b for b in range(per_rank, 0, -1) if per_rank % b == 0]
    if fixed_checkpointing is False:
        levels: list[int | None] = [0]
    elif fixed_checkpointing is True:
        levels = [None]
    else:
        step = max(1, shape.layers // 8)  # layers checkpointed: none, then more and more, then all
        levels = [0, *range(step, shape.layers, step), None]
    seq = run.seq
    while True:
        for level in levels:
            for b in batches:
                r = replace(run, batch=b, seq=seq, checkpointing=level != 0,
                            checkpoint_layers=None if level in (None, 0) else level,
                            grad_accum=accumulation(effective_batch, b, world_size))
                ok, est = _fits(r, shape, factor, budget)
                if ok:
                    if seq != run.seq:
                        notes.append(f"sequence cut from {run.seq} to {seq} tokens to fit {budget / GiB:.1f} GiB")
                    if resident_allowed(r, fast, parallel):
                        kept = replace(r, resident_weights=True)
                        ok, more = _fits(kept, shape, factor, budget)
                        if ok:
                            notes.append(f"NF4 weights also kept dequantised in {cdtype} "
                                         f"(+{(more.total - est.total) / GiB:.1f} GiB of memory the plan has spare): "
                                         "no dequantisation in the step")
                            r, est = kept, more
                    return done(r, est, budget)
        if fixed_seq or seq <= 256:
            b = batches[-1]
            r = replace(run, batch=b, seq=seq, checkpointing=True, checkpoint_layers=None,
                        grad_accum=accumulation(effective_batch, b, world_size))
            est = estimate(shape, r)
            raise DoesNotFitError(
                f"{run.method} of {shape.name} does not fit {what}: even batch {r.batch}, sequence {seq}, full "
                f"checkpointing needs ~{planned(est, factor) / GiB:.1f} GiB ({est.total / GiB:.1f} GiB allocated, "
                f"x{factor} reserve on activations, CUDA context) of {budget / GiB:.1f} GiB. Use a smaller model, "
                "a lower rank, a shorter --seq-len, a larger --max-memory-gib or a larger GPU.")
        seq //= 2
