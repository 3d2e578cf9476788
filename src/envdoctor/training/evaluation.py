"""Eval loss: the token-weighted mean over the eval set, dropout off, each rank its share (summed over ranks)."""

from __future__ import annotations

from typing import Any

from . import dist
from .data import cpu_tensors
from .plan import Plan


def evaluate(plan: Plan, model: Any, groups: list[Any], run: Any) -> tuple[float, int]:
    """Token-weighted mean loss over the eval batches (`run`: the loop's _Run): (loss, target tokens)."""
    import torch

    total, n = 0.0, 0
    model.eval()  # no dropout
    try:
        with torch.no_grad():
            # every rank runs the same number of forwards (FSDP's gathers are collective): a rank past the end
            # repeats the last batch with weight 0
            w = run.world.world_size
            for k in range(-(-len(groups) // w)):
                i = k * w + run.world.rank
                b = {k: v.to(run.device) for k, v in cpu_tensors(groups[min(i, len(groups) - 1)], run.pad).items()}
                count = int((b["labels"][:, 1:] != -100).sum()) if i < len(groups) else 0
                with torch.autocast(plan.device, dtype=run.dtype or torch.float32, enabled=run.dtype is not None):
                    loss = run.loss_fn(b["input_ids"], b["labels"], b["position_ids"])
                total += float(loss) * count
                n += count
    finally:
        model.train()
    total, n_all = dist.all_sum([total, float(n)], run.world, run.device)
    return (total / n_all if n_all else float("nan")), int(n_all)
