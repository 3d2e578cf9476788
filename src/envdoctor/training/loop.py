"""The training loop: optimizer, accumulation, mixed precision, checkpoints, resume, logs, final save."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .config import TrainConfig
from .plan import Plan


class Reporter(Protocol):
    """Progress sink; the CLI passes one that draws a progress bar, the library default does nothing."""

    def start(self, total: int, done: int) -> None: ...
    def step(self, step: int, loss: float, tokens_per_s: float) -> None: ...
    def message(self, text: str) -> None: ...
    def close(self) -> None: ...


class NullReporter:
    """Reports nothing."""

    def start(self, total: int, done: int) -> None: ...
    def step(self, step: int, loss: float, tokens_per_s: float) -> None: ...
    def message(self, text: str) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class TrainResult:
    """What a finished run produced."""

    steps: int
    resumed_from: int
    final_loss: float
    tokens_per_s: float
    peak_gib: float
    saved: str


def _last_checkpoint(out: Path) -> tuple[int, Path] | None:
    found = [(int(p.name.split("-", 1)[1]), p) for p in out.glob("checkpoint-*")
             if p.name.split("-", 1)[1].isdigit() and (p / "state.json").is_file()]
    return max(found) if found else None


def _optimizer(cfg: TrainConfig, plan: Plan, model: Any) -> Any:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.method == "qlora":
        if plan.device == "cuda":
            import bitsandbytes as bnb

            return bnb.optim.PagedAdamW32bit(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    targets = tuple(cfg.galore_targets)
    galore, regular = [], []
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


def _writer(out: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed: metrics.jsonl only
        return None
    return SummaryWriter(str(out / "logs"))


def _save(model: Any, opt: Any, sched: Any, tokenizer: Any, folder: Path, state: dict[str, Any], full: bool) -> None:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder / ("model" if full else "adapter")))
    tokenizer.save_pretrained(str(folder / ("model" if full else "adapter")))
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, folder / "optimizer.pt")
    (folder / "state.json").write_text(json.dumps(state), encoding="utf-8")


def train_loop(cfg: TrainConfig, plan: Plan, model: Any, tokenizer: Any, examples: list[Any],
               reporter: Reporter | None = None) -> TrainResult:
    """Train `model` on `examples` as the plan says; checkpoint, resume, log and save into cfg.output."""
    import torch

    from .data import collate
    from .fast import Levers as _L
    from .fast import causal_lm_loss, loss_impl

    rep = reporter or NullReporter()
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(plan.device)
    full = cfg.method == "galore"
    opt = _optimizer(cfg, plan, model)
    per_epoch = max(1, len(examples) // plan.batch // plan.grad_accum)
    total = cfg.max_steps or max(1, math.ceil(per_epoch * cfg.epochs))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / (cfg.warmup_steps + 1)) * max(0.0, 1 - s / max(total, 1)) if cfg.warmup_steps
        else max(0.0, 1 - s / max(total, 1)))
    start = 0
    last = _last_checkpoint(out) if cfg.resume else None
    if last is not None:
        start, folder = last
        if full:
            from safetensors.torch import load_file

            weights = {}
            for f in sorted((folder / "model").glob("*.safetensors")):
                weights.update(load_file(str(f)))
            model.load_state_dict(weights, strict=False)
        else:
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file

            set_peft_model_state_dict(model, load_file(str(folder / "adapter" / "adapter_model.safetensors")))
        saved = torch.load(folder / "optimizer.pt", map_location=device, weights_only=False)
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        rep.message(f"resumed from {folder} (step {start})")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(plan.dtype)
    scaler = torch.amp.GradScaler("cuda") if plan.dtype == "fp16" and plan.device == "cuda" else None
    # [] means the chunked loss of fast.py (any device); liger's fused loss only when preferred and importable
    impl = loss_impl(_L(kernels=True)) if plan.fused_loss and plan.device == "cuda" and _prefer_liger_loss() else []
    writer = _writer(out)
    metrics = (out / "metrics.jsonl").open("a", encoding="utf-8")
    rep.start(total, start)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    micro_total = start * plan.grad_accum  # micro-batches already consumed, to skip on resume
    epoch, step = 0, start
    loss_val, tok_s, t0, tokens = float("nan"), 0.0, time.time(), 0
    if plan.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    stream = _micro_batches(examples, plan.batch, cfg.seed)
    for _ in range(micro_total):  # the same data order as the interrupted run: skip what it consumed
        next(stream)
    model.train()
    while step < total:
        acc = 0.0
        for _ in range(plan.grad_accum):
            group, epoch = next(stream)
            b = {k: torch.tensor(v, device=device) for k, v in collate(group, pad).items()}
            with torch.autocast(plan.device, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = causal_lm_loss(model, b["input_ids"], b["labels"], b["position_ids"],
                                      fused=plan.fused_loss, loss_impl=impl)
            loss = loss / plan.grad_accum
            (scaler.scale(loss) if scaler else loss).backward()
            acc += float(loss.detach())
            tokens += int((b["labels"] != -100).sum())
        if scaler:
            scaler.unscale_(opt)
        if cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], cfg.max_grad_norm)
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        loss_val = acc
        if plan.device == "cuda":
            torch.cuda.synchronize()
        tok_s = tokens / max(time.time() - t0, 1e-9)
        if step == start + 1 and total > start + 1:
            t0, tokens = time.time(), 0  # the first step compiles kernels: tokens/s counts from the second
        rep.step(step, loss_val, tok_s)
        if step % cfg.logging_steps == 0 or step == total:
            rec = {"step": step, "loss": loss_val, "lr": sched.get_last_lr()[0], "tokens_per_s": round(tok_s, 1),
                   "epoch": epoch}
            metrics.write(json.dumps(rec) + "\n")
            metrics.flush()
            if writer is not None:
                writer.add_scalar("train/loss", loss_val, step)
                writer.add_scalar("train/tokens_per_s", tok_s, step)
        if cfg.save_steps and step % cfg.save_steps == 0 and step < total:
            _save(model, opt, sched, tokenizer, out / f"checkpoint-{step}", {"step": step}, full)
    rep.close()
    metrics.close()
    if writer is not None:
        writer.close()
    final = out / ("model" if full else "adapter")
    model.save_pretrained(str(final))
    tokenizer.save_pretrained(str(final))
    if not full:  # adapters are small: keep a last checkpoint so a longer run can resume from it
        _save(model, opt, sched, tokenizer, out / f"checkpoint-{step}", {"step": step}, full)
    peak = torch.cuda.max_memory_allocated() / 2**30 if plan.device == "cuda" else 0.0
    return TrainResult(step, start, loss_val, tok_s, round(peak, 2), str(final))


def _prefer_liger_loss() -> bool:
    # measured on an H200 (trainer_NOTES.md run 1): the chunked loss ran 10 % faster than liger's fused one
    return False


def _micro_batches(examples: list[Any], batch: int, seed: int) -> Any:
    from .data import batches

    epoch = 0
    while True:
        for group in batches(examples, batch, seed, epoch):
            yield group, epoch
        epoch += 1
