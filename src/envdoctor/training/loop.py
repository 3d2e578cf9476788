"""The training loop: accumulation, mixed precision, data parallelism, eval, checkpoints, resume, final save.

Throughput is the steady state: the first step (kernel selection, allocator warm-up) and the stalls between steps
(checkpoint saves, evaluation) are timed and reported on their own, never folded into tokens/s. Data loading is
part of the step: the host collates one micro-batch ahead, while the GPU runs the one before it, so what is left
of it is step time; its seconds are still reported (stalls_s["data"]).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from . import dist
from .checkpoints import last_checkpoint, load, load_sharded, save, save_sharded
from .config import TrainConfig
from .data import cpu_tensors
from .evaluation import evaluate
from .logs import Log, NullLog
from .optim import optimizer, scheduler
from .plan import Plan

GRAPH_LOSS_CHUNK = 128  # tokens per chunk of the fused loss when the step is a CUDA graph


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
    """What a finished run produced; token counts and tokens/s are over all ranks."""

    steps: int
    resumed_from: int
    final_loss: float
    tokens_per_s: float  # steady state: seen tokens / step time (data included), without the first step, eval, saves
    peak_gib: float  # the largest max_memory_allocated of any rank
    saved: str
    trained_tokens: int = 0  # tokens that carried loss
    seen_tokens: int = 0  # tokens the model read (padding excluded)
    eval_loss: float | None = None
    world_size: int = 1
    stalls_s: dict[str, float] = field(default_factory=dict)  # first_step, data (inside the steps), checkpoint, eval


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
    world: dist.World
    step_fn: Any  # the loss module (DDP-wrapped when distributed): forward(input_ids, labels, position_ids)
    loss_fn: Any  # the same module unwrapped (eval: no gradient sync)
    fsdp: bool = False  # sharded: saving and loading are collective
    graph: Any = None  # a graphs.StepGraph when the step is replayed as a CUDA graph
    max_doc: int | None = None  # varlen attention: each micro-batch carries cu_seqlens, documents at most this long
    slots: int | None = None  # cu_seqlens' fixed length under a graph (the most documents a micro-batch holds)


def train_loop(cfg: TrainConfig, plan: Plan, model: Any, tokenizer: Any, examples: list[Any],
               reporter: Reporter | None = None, eval_examples: list[Any] | None = None,
               world: dist.World | None = None, seeds: Any = None) -> TrainResult:
    """Train `model` on `examples` as the plan says; checkpoint, resume, evaluate, log and save into cfg.output.

    `seeds` (a graphs.DropoutSeeds, its dropouts already counter-based) turns on CUDA graphs of the step.
    """
    rep = reporter or NullReporter()
    run = _setup(cfg, plan, model, tokenizer, examples, rep, world or dist.World(), seeds)
    log = Log(run.out) if run.world.main else NullLog()
    rep.start(run.total, run.start)
    try:
        fit = _fit(cfg, plan, model, tokenizer, examples, eval_examples or [], run, rep, log)
    finally:
        rep.close()
        log.close()
    return _finish(plan, model, tokenizer, run, fit)


def _setup(cfg: TrainConfig, plan: Plan, model: Any, tokenizer: Any, examples: list[Any], rep: Reporter,
           world: dist.World, seeds: Any = None) -> _Run:
    """The output folder, optimizer, schedule, precision and DDP; resumed from the last checkpoint when asked."""
    import torch

    out = Path(cfg.output)
    if world.main:
        out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda", world.local_rank) if plan.device == "cuda" else torch.device("cpu")
    full = cfg.method == "galore"
    fsdp = plan.parallel == "fsdp" and world.distributed
    graphs = seeds is not None  # the runner gives seeds only where a graph can run (runner._execute)
    from .varlen import active, doc_bound, slots_for

    docs = active(model)  # varlen attention: every micro-batch says where its documents start
    max_doc = doc_bound([e.position_ids for e in examples]) if docs else None
    # inside a graph a launch costs nothing: short of memory (checkpointing) the fused loss takes small chunks
    # (0.1 GiB of logits, not 0.38); with memory to spare, the default's larger matmuls are faster
    loss_fn = dist.loss_module(model, plan.fused_loss, GRAPH_LOSS_CHUNK if graphs and plan.checkpointing else None,
                               max_doc)
    step_fn = dist.wrap(loss_fn, world, plan.device == "cuda", fsdp)
    opt = optimizer(cfg, plan, model)  # after wrapping: fully_shard replaces the parameters with sharded ones
    per_epoch = max(1, len(examples) // (plan.batch * plan.grad_accum * world.world_size))
    total = cfg.max_steps or max(1, math.ceil(per_epoch * cfg.epochs))
    sched = scheduler(opt, cfg.warmup_steps, total)
    start = 0
    last = last_checkpoint(out) if cfg.resume and out.is_dir() else None
    if last is not None:
        start, folder = last
        if fsdp:
            load_sharded(model, opt, sched, folder, device, world)
        else:
            load(model, opt, sched, folder, device, full)
        rep.message(f"resumed from {folder} (step {start})")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(plan.dtype)
    scaler = torch.amp.GradScaler("cuda") if plan.dtype == "fp16" and plan.device == "cuda" else None
    # the pad id only fills the right end of a row: labels (IGNORE_INDEX there) and positions never come from it,
    # so pad == eos costs nothing here (HF's DataCollatorForLanguageModeling would mask every EOS label)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    graph = None
    if graphs:
        from .graphs import StepGraph

        graph = StepGraph(step_fn, [p for p in model.parameters() if p.requires_grad], torch.bfloat16, seeds,
                          1.0 / plan.grad_accum, accumulate=plan.grad_accum > 1)
    slots = (slots_for([e.position_ids for e in examples], plan.batch, plan.seq, max_doc)
             if max_doc is not None and graph is not None else None)
    return _Run(out, opt, sched, scaler, device, dtype, total, start, full, pad, world, step_fn, loss_fn, fsdp, graph,
                max_doc, slots)


@dataclass
class _Fit:
    """What fit measured: counts over all ranks, seconds on rank 0."""

    step: int = 0
    loss: float = float("nan")
    eval_loss: float | None = None
    seen: int = 0
    trained: int = 0
    steady_tokens: int = 0
    steady_s: float = 0.0
    stalls: dict[str, float] = field(default_factory=lambda: {"first_step": 0.0, "data": 0.0, "checkpoint": 0.0,
                                                               "eval": 0.0})

    def tokens_per_s(self) -> float:
        """Steady-state throughput (the first step's when there was no other)."""
        if self.steady_s > 0:
            return self.steady_tokens / self.steady_s
        first = self.stalls["first_step"]
        return self.seen / first if first > 0 else 0.0


def _fit(cfg: TrainConfig, plan: Plan, model: Any, tokenizer: Any, examples: list[Any], eval_examples: list[Any],
         run: _Run, rep: Reporter, log: Log) -> _Fit:
    """Optimizer steps from run.start to run.total, logged, evaluated and checkpointed.

    A step's time runs from the previous step's result to its own, less any eval or save in between: the host's
    collation (behind the GPU's work but still the host's time), the all-reduce and the logging count as step time.
    With a captured graph the next step is queued before this one's loss is read (_ahead_allowed), so the GPU goes
    from one step to the next without waiting for the host's bookkeeping in between; never past a step that an
    eval or a checkpoint must see finished, or the last.
    """
    import torch

    f = _Fit(step=run.start)
    if plan.device == "cuda":
        torch.cuda.reset_peak_memory_stats(run.device)
    stream = dist.shard(_micro_batches(examples, plan.batch, cfg.seed), run.world)
    for _ in range(run.start * plan.grad_accum):  # the same data order as the interrupted run: skip what it consumed
        next(stream)
    feed = _Feed(stream, plan, run, (run.total - run.start) * plan.grad_accum)
    model.train()
    clock = time.perf_counter()
    queued: _Queued | None = None
    while f.step < run.total:
        q = queued or _queue(cfg, plan, model, feed, run)  # and the next step's first micro-batch collated
        queued = None
        if _ahead_allowed(run) and not _pause_after(cfg, f.step + 1, run.total, bool(eval_examples)):
            queued = _queue(cfg, plan, model, feed, run)  # the next step behind this one: the GPU never waits
        loss = _wait(q)
        seen, trained, epoch = q.seen, q.trained, q.epoch
        f.step += 1
        loss_sum, seen_g, trained_g = dist.all_sum([loss, seen, trained], run.world, run.device)
        f.loss, f.seen, f.trained = loss_sum / run.world.world_size, f.seen + int(seen_g), f.trained + int(trained_g)
        f.stalls["data"] = feed.data_s
        now = time.perf_counter()
        dt, clock = now - clock, now
        if f.step == run.start + 1:
            f.stalls["first_step"] += dt  # kernels selected, allocator warmed: not the steady state
        else:
            f.steady_s += dt
            f.steady_tokens += int(seen_g)
        if run.graph is not None and f.step == run.start + 1 and run.graph.outcome is not None:
            rep.message(run.graph.outcome.note)
        rep.step(f.step, f.loss, f.tokens_per_s())
        if f.step % cfg.logging_steps == 0 or f.step == run.total:
            log.write(f.step, f.loss, q.lr, f.tokens_per_s(), epoch, f.trained)
        if eval_examples and _eval_due(cfg, f.step, run.total):
            t = time.perf_counter()
            groups = [eval_examples[i:i + plan.batch] for i in range(0, len(eval_examples), plan.batch)]
            f.eval_loss, n = evaluate(plan, model, groups, run)
            log.write_eval(f.step, f.eval_loss, n)
            rep.message(f"step {f.step}: eval loss {f.eval_loss:.4f} over {n:,} tokens")
            spent = time.perf_counter() - t
            f.stalls["eval"] += spent
            clock += spent  # not the next step's time
        if _save_due(cfg, f.step, run.total):
            t = time.perf_counter()
            _checkpoint(model, tokenizer, run, f.step)
            spent = time.perf_counter() - t
            f.stalls["checkpoint"] += spent
            clock += spent
    return f


@dataclass(frozen=True)
class _Queued:
    """One optimizer step whose work is queued on the device, its loss not yet read."""

    loss: Any  # the step's loss on the device
    seen: int
    trained: int
    epoch: int
    lr: float  # the schedule's rate after this step (what the log shows for it)
    host: Any = None  # CUDA: the loss copied into pinned memory once the step is done, and the event of that
    done: Any = None


def _queue(cfg: TrainConfig, plan: Plan, model: Any, feed: _Feed, run: _Run) -> _Queued:
    """Forward, backward and optimizer step queued (on CUDA nothing here waits for the GPU)."""
    import torch

    loss_t, seen, trained, epoch = _accumulate(plan, feed, run)
    _optimizer_step(cfg, model, run)
    host = done = None
    if plan.device == "cuda":  # read later without a device-wide sync: the next step may be queued behind it
        host = torch.empty((), dtype=loss_t.dtype, pin_memory=True)
        host.copy_(loss_t.detach(), non_blocking=True)
        done = torch.cuda.Event()
        done.record()
    return _Queued(loss_t, seen, trained, epoch, run.sched.get_last_lr()[0], host, done)


def _wait(q: _Queued) -> float:
    """The step's loss on the host: the one place a step waits for the GPU, and only for that step's work (its
    optimizer step included), not for a step queued behind it."""
    if q.done is None:
        return float(q.loss)
    q.done.synchronize()
    return float(q.host)


def _ahead_allowed(run: _Run) -> bool:
    """Whether the next step may be queued before this step's loss is read: with a captured CUDA graph (one
    process, its inputs copied from pinned memory, so queuing does not wait for the GPU). Eager steps copy their
    inputs from pageable memory, which waits anyway, and DDP/FSDP steps talk to other ranks."""
    return run.graph is not None and run.graph.graph is not None and run.world.world_size == 1


def _eval_due(cfg: TrainConfig, step: int, total: int) -> bool:
    return bool(cfg.eval_steps and step % cfg.eval_steps == 0) or step == total


def _save_due(cfg: TrainConfig, step: int, total: int) -> bool:
    return bool(cfg.save_steps and step % cfg.save_steps == 0 and step < total)


def _pause_after(cfg: TrainConfig, step: int, total: int, evaluates: bool) -> bool:
    """Whether `step` must be finished before the next one is queued: the last step, or one followed by an eval
    or a checkpoint (they must see this step's weights, not the next one's)."""
    return step >= total or (evaluates and _eval_due(cfg, step, total)) or _save_due(cfg, step, total)


def _checkpoint(model: Any, tokenizer: Any, run: _Run, step: int) -> None:
    """checkpoint-N/: written once (rank 0; under DDP every rank holds the same weights), or gathered (FSDP)."""
    folder = run.out / f"checkpoint-{step}"
    if run.fsdp:
        save_sharded(model, run.opt, run.sched, tokenizer, folder, {"step": step}, run.world)
        return
    if run.world.main:
        save(model, run.opt, run.sched, tokenizer, folder, {"step": step}, run.full)
    dist.barrier(run.world)


@dataclass(frozen=True)
class _MicroBatch:
    """One micro-batch collated on the host, ready to go to the device; its token counts read off the CPU tensors."""

    tensors: dict[str, Any]  # CPU int64 (pinned under a graph): input_ids, labels, position_ids, cu_seqlens (varlen)
    seen: int  # tokens the model reads (padding excluded)
    trained: int  # tokens that carry loss
    epoch: int


def _prepare(group: list[Any], epoch: int, plan: Plan, run: _Run) -> _MicroBatch:
    """The host's whole share of one micro-batch, so that it can run while the GPU is busy with the one before."""
    from .varlen import KEY, cu_seqlens

    # a graph replays one shape: every micro-batch padded to the plan's length (pads carry no loss)
    b = cpu_tensors(group, run.pad, plan.seq if run.graph is not None else None)
    if run.max_doc is not None:
        b[KEY] = cu_seqlens(b["position_ids"], run.slots, run.max_doc)
    if run.graph is not None:  # pinned, so the copy into the graph's inputs does not wait for the GPU
        b = {k: v.pin_memory() for k, v in b.items()}
    return _MicroBatch(b, sum(len(e.input_ids) for e in group), int((b["labels"][:, 1:] != -100).sum()), epoch)


class _Feed:
    """The micro-batch stream, collated at most one ahead: `ahead()` prepares the next micro-batch while the GPU
    works, `take()` hands it over (or collates it there and then when none was prepared).

    `left` is how many micro-batches the run still consumes: nothing is drawn from the stream past it, so the
    prefetch never reads a micro-batch the run would not train on.
    """

    def __init__(self, stream: Any, plan: Plan, run: _Run, left: int) -> None:
        self._stream, self._plan, self._run, self._left = stream, plan, run, left
        self._next: _MicroBatch | None = None
        self.data_s = 0.0  # host seconds spent collating, prefetches included

    def ahead(self) -> None:
        """Collate the next micro-batch now, unless one is waiting or the run consumes no more."""
        if self._next is None and self._left > 0:
            self._next = self._draw()

    def take(self) -> _MicroBatch:
        """The next micro-batch: the prepared one, else collated now."""
        mb = self._next if self._next is not None else self._draw()
        self._next = None
        return mb

    def _draw(self) -> _MicroBatch:
        if self._left <= 0:
            raise RuntimeError("the run consumes no more micro-batches")
        t = time.perf_counter()
        group, epoch = next(self._stream)
        self._left -= 1
        mb = _prepare(group, epoch, self._plan, self._run)
        self.data_s += time.perf_counter() - t
        return mb


def _accumulate(plan: Plan, feed: _Feed, run: _Run) -> tuple[Any, int, int, int]:
    """Forward and backward over grad_accum micro-batches: (loss on the device, seen tokens, trained tokens, epoch
    of the step's last micro-batch).

    Nothing here waits for the GPU: token counts come from the CPU tensors. Each micro-batch's forward and backward
    (a graph replay, or eager; both only queued on CUDA) is launched before the next micro-batch is collated, the
    next step's first one included, so the host's collation overlaps the GPU's work instead of following it.
    """
    import contextlib

    import torch

    from .varlen import KEY

    acc: Any = torch.zeros((), device=run.device)
    seen, trained, epoch = 0, 0, 0
    for k in range(plan.grad_accum):
        mb = feed.take()
        seen, trained, epoch = seen + mb.seen, trained + mb.trained, mb.epoch
        if run.graph is not None:
            acc += run.graph({name: v.to(run.device, non_blocking=True) for name, v in mb.tensors.items()})
            feed.ahead()
            continue
        # a copy from pageable memory waits for the GPU's queue (the micro-batch before, whose wait the collation
        # of this one already overlapped)
        b = {name: v.to(run.device) for name, v in mb.tensors.items()}
        # DDP all-reduces on the last micro-batch only (https://pytorch.org/docs/stable/notes/ddp.html)
        last = k == plan.grad_accum - 1
        if hasattr(run.step_fn, "set_requires_gradient_sync"):  # FSDP2: reduce-scatter on the last one only
            run.step_fn.set_requires_gradient_sync(last)
        sync = contextlib.nullcontext() if last or not hasattr(run.step_fn, "no_sync") else run.step_fn.no_sync()
        with sync:
            with torch.autocast(plan.device, dtype=run.dtype or torch.float32, enabled=run.dtype is not None):
                loss = run.step_fn(b["input_ids"], b["labels"], b["position_ids"], b.get(KEY))
            loss = loss / plan.grad_accum
            (run.scaler.scale(loss) if run.scaler else loss).backward()
        acc += loss.detach()
        feed.ahead()
    return acc, seen, trained, epoch


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
    if run.graph is None or run.graph.graph is None:
        run.opt.zero_grad(set_to_none=True)
    elif run.graph.accumulate:  # the captured backward adds into fixed buffers: zero them in place
        run.opt.zero_grad(set_to_none=False)
    # else the next replay overwrites the gradients where they are: never free them (the graph writes there)


def _finish(plan: Plan, model: Any, tokenizer: Any, run: _Run, f: _Fit) -> TrainResult:
    """The final save on rank 0 (and, for adapters, a last checkpoint) and the run's result."""
    import torch

    final = run.out / ("model" if run.full else "adapter")
    t = time.perf_counter()
    weights = dist.full_state_dict(model) if run.fsdp else None  # collective
    if run.world.main:
        model.save_pretrained(str(final), **({"state_dict": weights} if weights is not None else {}))
        tokenizer.save_pretrained(str(final))
    dist.barrier(run.world)
    if not run.full:  # adapters are small: keep a last checkpoint so a longer run can resume from it
        _checkpoint(model, tokenizer, run, f.step)
    f.stalls["checkpoint"] += time.perf_counter() - t
    peak = torch.cuda.max_memory_allocated(run.device) / 2**30 if plan.device == "cuda" else 0.0
    peak = dist.all_max(peak, run.world, run.device)
    return TrainResult(f.step, run.start, f.loss, f.tokens_per_s(), round(peak, 2), str(final), f.trained, f.seen,
                       f.eval_loss, run.world.world_size, {k: round(v, 3) for k, v in f.stalls.items()})


def _micro_batches(examples: list[Any], batch: int, seed: int) -> Any:
    from .data import batches

    epoch = 0
    while True:
        for group in batches(examples, batch, seed, epoch):
            yield group, epoch
        epoch += 1
