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

    def start(self, total: int, done: int) -> None:
        """The run has `total` optimizer steps, `done` of them already (resumed)."""

    def step(self, step: int, loss: float, tokens_per_s: float) -> None:
        """One optimizer step finished."""

    def message(self, text: str) -> None:
        """A line for the user (the plan, a resume, a lever turned off)."""

    def close(self) -> None:
        """The run ended."""


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


def _scheduler(opt: Any, warmup: int, total: int) -> Any:
    """Linear warmup over `warmup` steps (none when 0), then linear decay to 0 at `total`."""
    import torch

    def factor(s: int) -> float:
        decay = max(0.0, 1 - s / max(total, 1))
        return min(1.0, (s + 1) / (warmup + 1)) * decay if warmup else decay

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


class _Log:
    """metrics.jsonl, and TensorBoard when it is installed."""

    def __init__(self, out: Path) -> None:
        self.writer = _writer(out)
        self.metrics = (out / "metrics.jsonl").open("a", encoding="utf-8")

    def write(self, step: int, loss: float, lr: float, tokens_per_s: float, epoch: int) -> None:
        rec = {"step": step, "loss": loss, "lr": lr, "tokens_per_s": round(tokens_per_s, 1), "epoch": epoch}
        self.metrics.write(json.dumps(rec) + "\n")
        self.metrics.flush()
        if self.writer is not None:
            self.writer.add_scalar("train/loss", loss, step)
            self.writer.add_scalar("train/tokens_per_s", tokens_per_s, step)

    def close(self) -> None:
        self.metrics.close()
        if self.writer is not None:
            self.writer.close()


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


def _load(model: Any, opt: Any, sched: Any, folder: Path, device: Any, full: bool) -> None:
    """Weights (the whole model, or the adapter), optimizer and scheduler from a checkpoint folder."""
    import torch
    from safetensors.torch import load_file

    if full:
        weights = {}
        for f in sorted((folder / "model").glob("*.safetensors")):
            weights.update(load_file(str(f)))
        model.load_state_dict(weights, strict=False)
    else:
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(str(folder / "adapter" / "adapter_model.safetensors")))
    saved = torch.load(folder / "optimizer.pt", map_location=device, weights_only=False)
    opt.load_state_dict(saved["optimizer"])
    sched.load_state_dict(saved["scheduler"])


@dataclass(frozen=True)
class _Run:
    """What setup prepares for fit: optimizer and schedule, the step range, device, precision, padding."""

    out: Path
    opt: Any
    sched: Any
    scaler: Any  # a GradScaler for fp16 on CUDA, else None
    device: Any
    dtype: Any  # the autocast dtype; None: no autocast (fp32)
    total: int
    start: int  # the step resumed from; 0 for a fresh run
    full: bool  # GaLore trains and saves the whole model; QLoRA only the adapter
    pad: int


def train_loop(cfg: TrainConfig, plan: Plan, model: Any, tokenizer: Any, examples: list[Any],
               reporter: Reporter | None = None) -> TrainResult:
    """Train `model` on `examples` as the plan says; checkpoint, resume, log and save into cfg.output."""
    rep = reporter or NullReporter()
    run = _setup(cfg, plan, model, tokenizer, len(examples), rep)
    log = _Log(run.out)
    rep.start(run.total, run.start)
    try:
        step, loss, tok_s = _fit(cfg, plan, model, tokenizer, examples, run, rep, log)
    finally:
        rep.close()
        log.close()
    return _finish(plan, model, tokenizer, run, step, loss, tok_s)


def _setup(cfg: TrainConfig, plan: Plan, model: Any, tokenizer: Any, n_examples: int, rep: Reporter) -> _Run:
    """The output folder, optimizer, schedule and precision; resumed from the last checkpoint when asked."""
    import torch

    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(plan.device)
    full = cfg.method == "galore"
    opt = _optimizer(cfg, plan, model)
    per_epoch = max(1, n_examples // plan.batch // plan.grad_accum)
    total = cfg.max_steps or max(1, math.ceil(per_epoch * cfg.epochs))
    sched = _scheduler(opt, cfg.warmup_steps, total)
    start = 0
    last = _last_checkpoint(out) if cfg.resume else None
    if last is not None:
        start, folder = last
        _load(model, opt, sched, folder, device, full)
        rep.message(f"resumed from {folder} (step {start})")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(plan.dtype)
    scaler = torch.amp.GradScaler("cuda") if plan.dtype == "fp16" and plan.device == "cuda" else None
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    return _Run(out, opt, sched, scaler, device, dtype, total, start, full, pad)


def _fit(cfg: TrainConfig, plan: Plan, model: Any, tokenizer: Any, examples: list[Any], run: _Run,
         rep: Reporter, log: _Log) -> tuple[int, float, float]:
    """Optimizer steps from run.start to run.total, logged and checkpointed; returns (step, loss, tokens/s)."""
    import torch

    step, loss, tok_s, t0, tokens = run.start, float("nan"), 0.0, time.time(), 0
    if plan.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    stream = _micro_batches(examples, plan.batch, cfg.seed)
    for _ in range(run.start * plan.grad_accum):  # the same data order as the interrupted run: skip what it consumed
        next(stream)
    model.train()
    while step < run.total:
        loss, n, epoch = _accumulate(plan, model, stream, run)
        tokens += n
        _optimizer_step(cfg, model, run)
        step += 1
        if plan.device == "cuda":
            torch.cuda.synchronize()
        tok_s = tokens / max(time.time() - t0, 1e-9)
        if step == run.start + 1 and run.total > run.start + 1:
            t0, tokens = time.time(), 0  # the first step compiles kernels: tokens/s counts from the second
        rep.step(step, loss, tok_s)
        if step % cfg.logging_steps == 0 or step == run.total:
            log.write(step, loss, run.sched.get_last_lr()[0], tok_s, epoch)
        if cfg.save_steps and step % cfg.save_steps == 0 and step < run.total:
            _save(model, run.opt, run.sched, tokenizer, run.out / f"checkpoint-{step}", {"step": step}, run.full)
    return step, loss, tok_s


def _accumulate(plan: Plan, model: Any, stream: Any, run: _Run) -> tuple[float, int, int]:
    """Forward and backward over grad_accum micro-batches; returns (the step's loss, target tokens, epoch)."""
    import torch

    from .data import collate
    from .fast import causal_lm_loss

    acc, tokens, epoch = 0.0, 0, 0
    for _ in range(plan.grad_accum):
        group, epoch = next(stream)
        b = {k: torch.tensor(v, device=run.device) for k, v in collate(group, run.pad).items()}
        with torch.autocast(plan.device, dtype=run.dtype or torch.float32, enabled=run.dtype is not None):
            loss = causal_lm_loss(model, b["input_ids"], b["labels"], b["position_ids"], fused=plan.fused_loss)
        loss = loss / plan.grad_accum
        (run.scaler.scale(loss) if run.scaler else loss).backward()
        acc += float(loss.detach())
        tokens += int((b["labels"] != -100).sum())
    return acc, tokens, epoch


def _optimizer_step(cfg: TrainConfig, model: Any, run: _Run) -> None:
    """Unscale (fp16), clip, step the optimizer and the schedule, clear the gradients."""
    import torch

    if run.scaler:
        run.scaler.unscale_(run.opt)
    if cfg.max_grad_norm:
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], cfg.max_grad_norm)
    if run.scaler:
        run.scaler.step(run.opt)
        run.scaler.update()
    else:
        run.opt.step()
    run.sched.step()
    run.opt.zero_grad(set_to_none=True)


def _finish(plan: Plan, model: Any, tokenizer: Any, run: _Run, step: int, loss: float, tok_s: float) -> TrainResult:
    """The final save (and, for adapters, a last checkpoint) and the run's result."""
    import torch

    final = run.out / ("model" if run.full else "adapter")
    model.save_pretrained(str(final))
    tokenizer.save_pretrained(str(final))
    if not run.full:  # adapters are small: keep a last checkpoint so a longer run can resume from it
        _save(model, run.opt, run.sched, tokenizer, run.out / f"checkpoint-{step}", {"step": step}, run.full)
    peak = torch.cuda.max_memory_allocated() / 2**30 if plan.device == "cuda" else 0.0
    return TrainResult(step, run.start, loss, tok_s, round(peak, 2), str(final))


def _micro_batches(examples: list[Any], batch: int, seed: int) -> Any:
    from .data import batches

    epoch = 0
    while True:
        for group in batches(examples, batch, seed, epoch):
            yield group, epoch
        epoch += 1
