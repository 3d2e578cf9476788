"""Render the trainer's memory plan and a run's result as text or JSON (strings only; the CLI prints them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..training.memory import GiB
from . import versioned_json

if TYPE_CHECKING:  # pragma: no cover
    from .._env.gpu import GpuInfo
    from ..training.loop import TrainResult
    from ..training.memory import Estimate, ModelShape
    from ..training.plan import Plan

SCHEMA_VERSION = 1


def render_estimate(est: Estimate) -> str:
    """The estimate's parts, largest first."""
    width = max(len(k) for k in est.parts)
    rows = [f"  {k:<{width}}  {v / GiB:8.2f} GiB" for k, v in sorted(est.parts.items(), key=lambda kv: -kv[1])]
    rows.append(f"  {'total (peak allocated)':<{width}}  {est.total / GiB:8.2f} GiB")
    if est.paged:
        rows.append(f"  {'+ paged optimizer state':<{width}}  {est.paged / GiB:8.2f} GiB (outside the allocator)")
    return "\n".join(rows)


def render_plan(plan: Plan) -> str:
    """The plan as a few human lines."""
    ck = "off" if not plan.checkpointing else (
        "all layers" if plan.checkpoint_layers is None else f"{plan.checkpoint_layers} layers")
    lines = [
        f"plan: {plan.method} on {plan.device}, compute {plan.dtype}, weights "
        f"{'NF4 (double quant)' if plan.quantize == 'nf4' else plan.param_dtype}",
        f"  batch {plan.batch} x accumulation {plan.grad_accum} (effective {plan.batch * plan.grad_accum}), "
        f"sequence {plan.seq}, gradient checkpointing {ck}",
        f"  fast path: fused loss {'on' if plan.fused_loss else 'off'}, "
        f"fused kernels {'on' if plan.fused_kernels else 'off'}",
        f"  estimated peak allocated {plan.estimate.total / GiB:.2f} GiB"
        + (f"; x{plan.reserve_factor} allocator reserve on activations + paged optimizer + CUDA context = "
           f"{plan.planned_bytes / GiB:.2f} GiB of {plan.budget / GiB:.2f} GiB" if plan.budget else ""),
    ]
    if plan.world_size > 1:
        how = "FSDP, weights sharded" if plan.parallel == "fsdp" else "DDP"
        lines.append(f"  data parallel ({how}): {plan.world_size} processes, batch {plan.batch} x accumulation "
                     f"{plan.grad_accum} on each (effective {plan.batch * plan.grad_accum * plan.world_size})")
    if plan.loss_on:
        lines.append(f"  loss on: {plan.loss_on}")
    lines += [f"  note: {n}" for n in plan.notes]
    return "\n".join(lines)


def render_memory_text(shape: ModelShape, gpu: GpuInfo, plan: Plan) -> str:
    """`plan-memory`: the GPU, the estimate by part, then the plan."""
    head = f"{shape.name} on {gpu.name} ({gpu.memory_gib:.0f} GiB, compute capability {gpu.cc})"
    return f"{head}\n{render_estimate(plan.estimate)}\n{render_plan(plan)}\n"


def render_memory_json(shape: ModelShape, gpu: GpuInfo, plan: Plan) -> str:
    """`plan-memory --format json`: the plan and its estimate in GiB, with a schema version."""
    data: dict[str, Any] = {
        "model": shape.name, "gpu": gpu.name, "method": plan.method,
        "dtype": plan.dtype, "batch": plan.batch, "grad_accum": plan.grad_accum, "seq": plan.seq,
        "checkpointing": plan.checkpointing, "checkpoint_layers": plan.checkpoint_layers,
        "fused_loss": plan.fused_loss, "fused_kernels": plan.fused_kernels,
        "estimate_gib": round(plan.estimate.total / GiB, 3), "planned_gib": round(plan.planned_bytes / GiB, 3),
        "budget_gib": round(plan.budget / GiB, 3), "world_size": plan.world_size, "parallel": plan.parallel,
        "parts_gib": {k: round(v / GiB, 3) for k, v in plan.estimate.parts.items()},
    }
    return versioned_json(SCHEMA_VERSION, data)


def render_result_json(result: TrainResult) -> str:
    """A finished run as one JSON line (the last line `envdoctor train` prints), sorted keys, a schema version.

    tokens_per_s is the steady state (seen tokens over all ranks per second of step time); the first step
    and the stalls (data loading, checkpoint saves, evaluation) are in stalls_s, not folded in.
    """
    data: dict[str, Any] = {
        "steps": result.steps, "resumed_from": result.resumed_from,
        "final_loss": result.final_loss, "tokens_per_s": round(result.tokens_per_s, 1), "peak_gib": result.peak_gib,
        "saved": result.saved, "trained_tokens": result.trained_tokens, "seen_tokens": result.seen_tokens,
        "world_size": result.world_size, "stalls_s": dict(sorted(result.stalls_s.items())),
    }
    if result.eval_loss is not None:
        data["eval_loss"] = result.eval_loss
    return versioned_json(SCHEMA_VERSION, data, indent=None)
