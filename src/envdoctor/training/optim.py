"""The optimizers (paged AdamW for adapters, GaLoreAdamW8bit for full weights) and the learning-rate schedule."""

from __future__ import annotations

from typing import Any

from .config import TrainConfig
from .plan import Plan


def optimizer(cfg: TrainConfig, plan: Plan, model: Any) -> Any:
    """Paged AdamW 32-bit (QLoRA on CUDA), AdamW (CPU), GaLoreAdamW8bit (GaLore on CUDA) or GaLoreAdamW (CPU)."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.method == "qlora":
        if plan.device == "cuda":
            import bitsandbytes as bnb

            return bnb.optim.PagedAdamW32bit(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    targets = tuple(cfg.galore_targets)
    galore: list[Any] = []
    regular: list[Any] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        module = name.rsplit(".", 2)[-2] if name.count(".") >= 1 else name
        (galore if p.dim() == 2 and module in targets else regular).append(p)
    groups = [{"params": regular},
              {"params": galore, "rank": cfg.galore_rank, "update_proj_gap": cfg.galore_update_proj_gap,
               "scale": cfg.galore_scale, "proj_type": "std"}]
    if plan.device == "cuda":
        from galore_torch import GaLoreAdamW8bit

        return GaLoreAdamW8bit(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    from galore_torch import GaLoreAdamW  # the 8-bit optimizer needs CUDA

    return GaLoreAdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def scheduler(opt: Any, warmup: int, total: int) -> Any:
    """Linear warmup over `warmup` steps (none when 0), then linear decay to 0 at `total`."""
    import torch

    def factor(s: int) -> float:
        decay = max(0.0, 1 - s / max(total, 1))
        return min(1.0, (s + 1) / (warmup + 1)) * decay if warmup else decay

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


