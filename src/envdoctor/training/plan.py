"""Choose dtype, batch, accumulation, checkpointing and sequence length so that a run fits the GPU."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .._env.gpu import GpuInfo
from ..errors import ConfigError
from .kinds import Device, Dtype, DtypeChoice, Method, Quantize
from .memory import Estimate, GiB, ModelShape, RunShape, estimate

CUDA_CONTEXT = int(0.6 * GiB)  # CUDA context + cuBLAS workspaces: on the GPU, never in max_memory_allocated
# What the caching allocator reserves over the allocated peak, applied to the short-lived part of the estimate
# (activations, logits, gradients; weights and optimizer state are allocated once). The issue measured
# 1.2-1.8x reserved/allocated on the plain path (262k-vocabulary logits: large short-lived blocks); with the fused
# loss the H200 runs in benchmarks/trainer_NOTES.md stayed at 1.01-1.1x (default allocator). A plan must fit
# with this factor applied.
RESERVE_FACTOR = {"fused": 1.25, "plain": 1.5}


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

    @property
    def planned_bytes(self) -> int:
        """What the plan needs on the GPU: the estimate with the allocator reserve and the CUDA context."""
        return planned(self.estimate, self.reserve_factor)


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


def make_plan(shape: ModelShape, gpu: GpuInfo, run: RunShape, *, effective_batch: int, dtype: DtypeChoice = "auto",
              fixed_batch: int | None = None, fixed_checkpointing: bool | None = None,
              fixed_seq: bool = False, fast: bool = True, kernels: bool | None = None) -> Plan:
    """The fastest plan that fits: fewest checkpointed layers first, then the largest batch, then shorter sequences."""
    cdtype = choose_dtype(gpu, dtype)
    cuda = gpu.available and gpu.kind == "cuda"
    method: Method = run.method if cuda or run.method != "qlora" else "lora"
    param_dtype: Dtype = cdtype if cdtype == "bf16" or method == "qlora" else "fp32"  # fp16 masters are unstable
    run = replace(run, method=method, fused_loss=fast, fused_kernels=(fast if kernels is None else kernels) and cuda,
                  param_bytes=2 if param_dtype in ("bf16", "fp16") else 4)
    notes: list[str] = []
    if method == "lora" and run.method != "qlora":
        notes.append("no CUDA GPU: LoRA on a full-precision base instead of NF4 (QLoRA needs CUDA)")
    factor = RESERVE_FACTOR["fused" if fast else "plain"]

    def done(r: RunShape, est: Estimate, budget: int) -> Plan:
        return Plan(r.method, "cuda" if cuda else "cpu", cdtype, param_dtype, "nf4" if r.method == "qlora" else "none",
                    r.batch, max(1, -(-effective_batch // r.batch)), r.seq, r.checkpointing, r.checkpoint_layers,
                    r.fused_loss, r.fused_kernels, est, budget, factor, tuple(notes))

    if not cuda:
        batch = fixed_batch or min(effective_batch, 4)
        ck = bool(fixed_checkpointing)
        r = replace(run, batch=batch, checkpointing=ck, checkpoint_layers=None)
        return done(r, estimate(shape, r), 0)

    budget = gpu.memory_total_bytes
    batches = [fixed_batch] if fixed_batch else [b for b in range(effective_batch, 0, -1) if effective_batch % b == 0]
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
                            checkpoint_layers=None if level in (None, 0) else level)
                ok, est = _fits(r, shape, factor, budget)
                if ok:
                    if seq != run.seq:
                        notes.append(f"sequence cut from {run.seq} to {seq} tokens to fit {budget / GiB:.1f} GiB")
                    return done(r, est, budget)
        if fixed_seq or seq <= 256:
            r = replace(run, batch=batches[-1], seq=seq, checkpointing=True, checkpoint_layers=None)
            est = estimate(shape, r)
            raise ConfigError(
                f"{run.method} of {shape.name} does not fit {gpu.name or 'the GPU'} ({budget / GiB:.1f} GiB): "
                f"even batch {r.batch}, sequence {seq}, full checkpointing needs ~{est.total / GiB:.1f} GiB "
                f"allocated (x{factor} reserve). Use a smaller model, a lower rank, or a larger GPU.")
        seq //= 2
