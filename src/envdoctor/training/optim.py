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
            return paged_adamw(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
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


_STEP_PARTS = ("check_overrides", "to_gpu", "init_state", "prefetch_state", "update_step")  # + `initialized`


def paged_adamw(params: list[Any], **kw: Any) -> Any:
    """bitsandbytes' PagedAdamW32bit, its per-parameter update kernels unchanged, with one device sync per step.

    bitsandbytes 0.50's Optimizer8bit.step calls torch.cuda.synchronize() after every parameter's update
    (bitsandbytes/optim/optimizer.py, `sync_gpu(p)` in the loop): with LoRA on q/k/v/o of 32 layers that is 256
    round trips a step, each waiting for one small kernel, ~15 ms of an idle GPU at batch 1. The kernels run in
    stream order without them; the one sync at the end (bitsandbytes' own, for paged states) stays. Where this
    bitsandbytes lacks the step's parts, its own step runs.
    """
    import bitsandbytes as bnb
    import torch

    base = bnb.optim.PagedAdamW32bit
    if not all(hasattr(base, a) for a in _STEP_PARTS):
        return base(params, **kw)

    class PagedAdamW32bit(base):  # type: ignore[misc, valid-type]
        @torch.no_grad()
        def step(self, closure: Any = None) -> Any:
            loss = None
            if closure is not None:
                with torch.enable_grad():
                    loss = closure()
            if not getattr(self, "initialized", False):
                self.check_overrides()
                self.to_gpu()
                self.initialized = True
            p = None
            for gindex, group in enumerate(self.param_groups):
                for pindex, p in enumerate(group["params"]):
                    if p.grad is None:
                        continue
                    if len(self.state[p]) == 0:
                        self.init_state(group, p, gindex, pindex)
                    self.prefetch_state(p)
                    self.update_step(group, p, gindex, pindex)
            if p is not None and p.is_cuda:
                torch.cuda.synchronize(p.device)
            return loss

    opt = PagedAdamW32bit(params, **kw)
    return opt if hasattr(opt, "initialized") else base(params, **kw)


def scheduler(opt: Any, warmup: int, total: int) -> Any:
    """Linear warmup over `warmup` steps (none when 0), then linear decay to 0 at `total`."""
    import torch

    def factor(s: int) -> float:
        decay = max(0.0, 1 - s / max(total, 1))
        return min(1.0, (s + 1) / (warmup + 1)) * decay if warmup else decay

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


